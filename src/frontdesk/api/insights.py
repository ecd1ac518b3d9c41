"""The insights API (admins and reviewers): topics, top questions, pain points and low CSAT
from the latest snapshot, recomputing it, and reviewing knowledge gaps (accept into the
knowledge base, or dismiss). Every GET is also a CSV download (``format=csv``).

The snapshot is computed by ``refresh_insights`` (this API's refresh, the CLI, or a scheduled
job); a GET never reads the messages."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from frontdesk.analytics import insights
from frontdesk.api.console import Reviewer
from frontdesk.api.csv_export import csv_response
from frontdesk.api.routes import FrontdeskDep

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

Format = Annotated[Literal["json", "csv"], Query(description="json, or csv for a spreadsheet.")]
Table = Literal["topics", "top_questions", "pain_points", "low_csat_articles", "low_csat_flows"]
GapStatus = Literal["open", "accepted", "dismissed", "all"]

# The columns of each CSV download, in order.
COLUMNS: dict[str, tuple[str, ...]] = {
    "topics": (
        "id",
        "label",
        "question",
        "size",
        "share",
        "conversations",
        "average_sentiment",
        "negative_share",
        "handoff_rate",
        "low_confidence_share",
        "intent",
        "examples",
    ),
    "top_questions": ("question", "count", "share", "low_confidence_share", "topic", "variants"),
    "pain_points": (
        "topic",
        "label",
        "question",
        "size",
        "pain",
        "impact",
        "negative_share",
        "handoff_rate",
        "average_sentiment",
        "low_confidence_share",
    ),
    "low_csat_articles": ("article", "title", "ratings", "average", "low", "low_share"),
    "low_csat_flows": ("flow", "ratings", "average", "low", "low_share"),
    "gaps": (
        "id",
        "status",
        "count",
        "question",
        "suggested_answer",
        "examples",
        "first_seen",
        "last_seen",
        "article_id",
    ),
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Refresh(_Body):
    start: date | None = None
    end: date | None = None


class Accept(_Body):
    question: str | None = Field(default=None, max_length=insights.MAX_QUESTION_CHARS)
    answer: str = Field(max_length=insights.MAX_ANSWER_CHARS)
    save_test: bool = False


def _rows(payload: dict[str, Any], table: str) -> list[dict[str, Any]]:
    if table.startswith("low_csat_"):
        rows: list[dict[str, Any]] = payload["low_csat"][table.removeprefix("low_csat_")]
        return rows
    found: list[dict[str, Any]] = payload[table]
    return found


@router.get("/insights")
async def read_insights(
    user: Reviewer,
    fd: FrontdeskDep,
    start: Annotated[date | None, Query(description="The snapshot's first day.")] = None,
    end: Annotated[date | None, Query(description="The snapshot's last day.")] = None,
    format: Format = "json",
    table: Annotated[Table, Query(description="The table a CSV download holds.")] = "topics",
) -> Any:
    """The latest insights snapshot (of exactly this range when ``start``/``end`` are given):
    topics, top questions, pain points and low CSAT by article and flow."""
    payload = await insights.latest_insights(fd, start, end)
    if payload is None:
        span = f" for {start or '…'} to {end or '…'}" if start or end else ""
        raise insights.InsightsError(
            "no_insights",
            f"no insights computed{span} yet: POST /api/analytics/insights/refresh "
            "(or run `frontdesk insights refresh`)",
            404,
        )
    if format == "csv":
        return csv_response(
            _rows(payload, table),
            COLUMNS[table],
            f"insights-{table}-{payload['start']}-{payload['end']}",
        )
    return payload


@router.post("/insights/refresh")
async def refresh(user: Reviewer, fd: FrontdeskDep, body: Refresh | None = None) -> Any:
    """Compute the insights now (default: the last 28 days) and return the new snapshot. The
    knowledge gaps are updated too."""
    given = body or Refresh()
    return await insights.refresh_insights(fd, given.start, given.end)


@router.get("/gaps")
async def gaps(
    user: Reviewer,
    fd: FrontdeskDep,
    status: Annotated[GapStatus, Query(description="Which gaps; all: every one.")] = "open",
    format: Format = "json",
) -> Any:
    """Knowledge gaps: groups of questions the bot could not answer, most asked first, each
    with a suggested FAQ entry."""
    found = await insights.list_gaps(fd, None if status == "all" else status)
    if format == "csv":
        return csv_response(found, COLUMNS["gaps"], f"knowledge-gaps-{status}")
    return {"gaps": found}


@router.post("/gaps/{gap_id}/accept")
async def accept(gap_id: int, body: Accept, user: Reviewer, fd: FrontdeskDep) -> Any:
    """Put the gap into the knowledge base with this answer (and question, if edited): the bot
    answers it at once, citing it. ``save_test`` also adds a conversation test for it to
    ``DATA_DIR/tests/knowledge-gaps.yaml``."""
    path = insights.default_tests_path(fd) if body.save_test else None
    found = await insights.accept_gap(
        fd, gap_id, body.answer, question=body.question, user_id=user.id, save_test=path
    )
    return {"gap": found}


@router.post("/gaps/{gap_id}/dismiss")
async def dismiss(gap_id: int, user: Reviewer, fd: FrontdeskDep) -> Any:
    """Dismiss the gap; the same questions coming again keep it dismissed."""
    return {"gap": await insights.dismiss_gap(fd, gap_id, user_id=user.id)}
