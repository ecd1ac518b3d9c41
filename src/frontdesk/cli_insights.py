"""``frontdesk insights``: compute the customer insights now, and review the knowledge gaps
(list, accept into the knowledge base, dismiss)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from frontdesk.cli_common import CompanyOpt, DataDirOpt, _settings, _with_service
from frontdesk.cli_learning import error

insights_app = typer.Typer(
    help="Customer insights: topics, top questions, pain points, low CSAT, knowledge gaps.",
    no_args_is_help=True,
)
gaps_app = typer.Typer(
    help="Knowledge gaps: questions the bot could not answer.", no_args_is_help=True
)
insights_app.add_typer(gaps_app, name="gaps")

StartOpt = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="First day (default: 27 days before the end)."),
]
EndOpt = Annotated[
    datetime | None,
    typer.Option(formats=["%Y-%m-%d"], help="Last day, included (default: today)."),
]


def _run(company: Path | None, data_dir: Path | None, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work`` on a started service; a mistake is one red line and exit status 1."""
    from frontdesk.analytics.insights import InsightsError
    from frontdesk.cli import CompanyFileError

    settings = _settings(company, data_dir)
    try:
        return asyncio.run(_with_service(settings, work))
    except (InsightsError, *CompanyFileError) as exc:
        error(exc)
        raise typer.Exit(1) from exc


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def summary(payload: dict[str, Any]) -> list[str]:
    """The snapshot in a few readable lines."""
    lines = [
        f"insights for {payload['start']} to {payload['end']}: {payload['questions']} questions "
        f"in {payload['conversations']} conversations ({payload['messages']} customer messages"
        f"{', the most recent only' if payload['capped'] else ''}), "
        f"computed in {payload['seconds']:.1f} s"
    ]
    if payload["topics"]:
        lines.append("topics:")
        for topic in payload["topics"][:10]:
            lines.append(
                f"  {_percent(topic['share']):>4}  {topic['label']}  e.g. {topic['question']!r}"
                f"  (handoffs {_percent(topic['handoff_rate'])}, sentiment "
                f"{topic['average_sentiment']:+.2f})"
            )
    if payload["top_questions"]:
        lines.append("top questions:")
        for question in payload["top_questions"][:10]:
            lines.append(f"  {question['count']:>4}  {question['question']}")
    if payload["pain_points"]:
        lines.append("pain points:")
        for pain in payload["pain_points"][:5]:
            lines.append(
                f"  {pain['label']}: {pain['size']} messages, "
                f"{_percent(pain['negative_share'])} negative, "
                f"{_percent(pain['handoff_rate'])} handed over"
            )
    low = payload["low_csat"]
    for kind, key in (("articles", "article"), ("flows", "flow")):
        rated = [r for r in low[kind] if r["low"]]
        if rated:
            lines.append(f"low CSAT by {key}:")
            for row in rated[:5]:
                lines.append(
                    f"  {row.get('title') or row[key]}: {row['ratings']} ratings, average "
                    f"{row['average']:.1f}, {_percent(row['low_share'])} low"
                )
    gaps = payload.get("gaps", {})
    lines.append(
        f"knowledge gaps: {gaps.get('open', 0)} open ({gaps.get('created', 0)} new, "
        f"{gaps.get('updated', 0)} updated): `frontdesk insights gaps list`"
    )
    return lines


@insights_app.command("refresh")
def refresh(
    start: StartOpt = None,
    end: EndOpt = None,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Compute the insights of a date range now and update the knowledge gaps.

    Days are in the company's timezone. The API serves the newest result."""
    from frontdesk.analytics.insights import refresh_insights

    payload = _run(
        company,
        data_dir,
        lambda fd: refresh_insights(
            fd, start.date() if start else None, end.date() if end else None
        ),
    )
    for line in summary(payload):
        print(line)


@gaps_app.command("list")
def gaps_list(
    status: Annotated[
        str, typer.Option("--status", help="open, accepted, dismissed or all.")
    ] = "open",
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List the knowledge gaps, most asked first."""
    from frontdesk.analytics.insights import list_gaps

    found = _run(company, data_dir, lambda fd: list_gaps(fd, None if status == "all" else status))
    if not found:
        print(f"no {'' if status == 'all' else status + ' '}knowledge gaps")
        return
    for gap in found:
        print(f"#{gap['id']:<4} {gap['status']:9} {gap['count']:>4}x  {gap['question']}")
        if gap["suggested_answer"]:
            print(f"      suggested: {gap['suggested_answer']}")
        if gap["article_id"]:
            print(f"      in the knowledge base as {gap['article_id']}")


@gaps_app.command("accept")
def gaps_accept(
    gap_id: Annotated[int, typer.Argument(help="The gap's id (see `gaps list`).")],
    answer: Annotated[str, typer.Option("--answer", help="The answer the bot will give.")],
    question: Annotated[
        str | None, typer.Option("--question", help="The question, edited (default: as shown).")
    ] = None,
    save_test: Annotated[
        Path | None,
        typer.Option("--save-test", help="Add a conversation test for it to this YAML file."),
    ] = None,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Put a gap into the knowledge base: the bot answers it from now on, citing it.

    A running service picks the entry up within FRONTDESK_KNOWLEDGE_REFRESH_SECONDS."""
    from frontdesk.analytics.insights import accept_gap

    gap = _run(
        company,
        data_dir,
        lambda fd: accept_gap(fd, gap_id, answer, question=question, save_test=save_test),
    )
    print(f"accepted gap {gap['id']}: {gap['question']!r} is now {gap['article_id']}")
    if gap.get("test_file"):
        print(f"test added to {gap['test_file']}")


@gaps_app.command("dismiss")
def gaps_dismiss(
    gap_id: Annotated[int, typer.Argument(help="The gap's id (see `gaps list`).")],
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Dismiss a gap: it stays dismissed when the same questions come again."""
    from frontdesk.analytics.insights import dismiss_gap

    gap = _run(company, data_dir, lambda fd: dismiss_gap(fd, gap_id))
    print(f"dismissed gap {gap['id']}: {gap['question']!r}")
