"""The KPI API behind the dashboard (admins and reviewers): KPIs against targets, time series,
breakdowns, alerts, and running the rollup now (admins). Every table is also a CSV download
(``format=csv``). The numbers come from the rollup's count tables, never from the messages."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, FastAPI, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.actions.experiments import (
    do_list_experiments,
    do_promote,
    do_start_experiment,
    do_stop_experiment,
)
from frontdesk.adapters.store.tables import UserRow
from frontdesk.analytics import kpis as kpi_queries
from frontdesk.analytics.alerts import check_alerts
from frontdesk.analytics.rollup import run_rollup
from frontdesk.api.console import Admin, Reviewer
from frontdesk.api.csv_export import csv_response
from frontdesk.api.errors import error_body
from frontdesk.api.routes import FrontdeskDep
from frontdesk.company.experiments import ExperimentError
from frontdesk.service import Frontdesk

router = APIRouter(prefix="/api/analytics", tags=["analytics"])

Format = Literal["json", "csv"]
StartQ = Annotated[date | None, Query(description="First day (YYYY-MM-DD), company timezone.")]
EndQ = Annotated[date | None, Query(description="Last day, included. Default: today.")]
FormatQ = Annotated[Format, Query(description="json, or csv for a spreadsheet.")]


def install(app: FastAPI) -> None:
    @app.exception_handler(ExperimentError)
    async def _experiment_error(_request: Request, exc: ExperimentError) -> JSONResponse:
        return JSONResponse(error_body("experiment", str(exc)), status_code=exc.status)


def _range(fd: Frontdesk, start: date | None, end: date | None) -> tuple[date, date]:
    return kpi_queries.date_range(fd.guidelines.working_hours.timezone, start, end)


def _name(kind: str, first: date, last: date) -> str:
    return f"{kind}-{first.isoformat()}-{last.isoformat()}"


@router.get("/kpis")
async def kpis(
    user: Reviewer,
    fd: FrontdeskDep,
    start: StartQ = None,
    end: EndQ = None,
    format: FormatQ = "json",
) -> Any:
    """Every KPI of the conversations opened in the range, each tracked one against its
    target, and the alerts raised in it."""
    first, last = _range(fd, start, end)
    targets = fd.guidelines.kpi_targets
    found = await fd.db.run(lambda s: kpi_queries.kpis(s, first, last, targets))
    if format == "csv":
        rows = [
            {"kpi": key, "value": value}
            for key, value in found.items()
            if not isinstance(value, dict | list)
        ]
        rows += [
            {"kpi": f"csat_{score}", "value": count}
            for score, count in found["csat_distribution"].items()
        ]
        rows += [
            {"kpi": f"handoff_reason:{r['reason']}", "value": r["count"]}
            for r in found["handoff_reasons"]
        ]
        targets_by_kpi = {
            kpi_queries.VALUE_KEY.get(t["kpi"], t["kpi"]): t for t in found["targets"]
        }
        for row in rows:
            target = targets_by_kpi.get(row["kpi"])
            if target is not None:
                row.update(target=target["target"], status=target["status"])
        return csv_response(rows, ["kpi", "value", "target", "status"], _name("kpis", first, last))
    return found


@router.get("/timeseries")
async def timeseries(
    user: Reviewer,
    fd: FrontdeskDep,
    start: StartQ = None,
    end: EndQ = None,
    grain: Literal["day", "week"] = "day",
    format: FormatQ = "json",
) -> Any:
    """The KPIs per day or per week (weeks start on Monday)."""
    first, last = _range(fd, start, end)
    found = await fd.db.run(lambda s: kpi_queries.timeseries(s, first, last, grain))
    if format == "csv":
        return csv_response(
            found["rows"],
            ["period", *kpi_queries.SERIES_KEYS],
            _name(f"timeseries-{grain}", first, last),
        )
    return found


@router.get("/breakdown")
async def breakdown(
    user: Reviewer,
    fd: FrontdeskDep,
    by: Literal["channel", "intent", "flow", "agent", "handoff_reason"],
    start: StartQ = None,
    end: EndQ = None,
    format: FormatQ = "json",
) -> Any:
    """The KPIs per channel, intent, flow or agent; handoffs per reason."""
    first, last = _range(fd, start, end)

    def read(session: Session) -> dict[str, Any]:
        found = kpi_queries.breakdown(session, first, last, by)
        if by == "agent":
            names = _agent_names(session)
            for row in found["rows"]:
                row["name"] = names.get(row["value"], row["value"])
        return found

    found = await fd.db.run(read)
    if format == "csv":
        columns = (
            ["value", "handoffs"]
            if by == "handoff_reason"
            else [
                "value",
                *(["name"] if by == "agent" else []),
                "conversations",
                "bot_resolution_rate",
                "handoff_rate",
                "csat_average",
                "csat_count",
                "conversion_rate",
                "first_response_seconds_p50",
            ]
        )
        return csv_response(found["rows"], columns, _name(f"breakdown-{by}", first, last))
    return found


def _agent_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(UserRow.id, UserRow.name)).tuples().all())


@router.get("/alerts")
async def alerts(
    user: Reviewer,
    fd: FrontdeskDep,
    start: StartQ = None,
    end: EndQ = None,
    format: FormatQ = "json",
) -> Any:
    """The KPI alerts whose window overlaps the range, newest first."""
    first, last = _range(fd, start, end)
    found = await fd.db.run(lambda s: kpi_queries.recent_alerts(s, first, last, limit=500))
    if format == "csv":
        columns = [
            "raised_at",
            "kpi",
            "label",
            "value",
            "target",
            "direction",
            "window_start",
            "window_end",
            "conversations",
        ]
        return csv_response(found, columns, _name("alerts", first, last))
    return {"alerts": found}


@router.post("/rollup")
async def rollup_now(user: Admin, fd: FrontdeskDep) -> dict[str, Any]:
    """Roll every new event up now (the service also does it on a schedule), then check the
    KPI targets."""
    report = await run_rollup(fd, lag_seconds=0)
    raised = await check_alerts(fd)
    return {**report.public(), "alerts_raised": len(raised)}


# --- A/B experiments -----------------------------------------------------------------------


class StopBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    winner: str | None = Field(default=None, description="The variant that won, if any.")
    promote: bool = Field(
        default=False, description="Send the winner through the release gate (in the background)."
    )


@router.get("/experiments")
async def experiments(user: Reviewer, fd: FrontdeskDep, format: FormatQ = "json") -> Any:
    """Every experiment, newest first, its variants compared with the control: each KPI with
    its 95% interval, each difference with its interval and a verdict (better, worse, not yet
    known)."""
    found = await do_list_experiments(fd)
    if format == "csv":
        rows = []
        for experiment in found:
            comparison = experiment["comparison"]
            verdicts = {
                (c["variant"], m["metric"]): m
                for c in comparison["comparisons"]
                for m in c["metrics"]
            }
            for variant, side in comparison["variants"].items():
                for metric in (
                    "bot_resolution_rate",
                    "handoff_rate",
                    "conversion_rate",
                    "csat_average",
                ):
                    cell = side[metric]
                    against = verdicts.get((variant, metric), {})
                    rows.append(
                        {
                            "experiment": experiment["name"],
                            "variant": variant,
                            "metric": metric,
                            "value": cell["value"],
                            "low": cell["low"],
                            "high": cell["high"],
                            "n": cell["n"],
                            "difference": against.get("difference"),
                            "verdict": against.get("verdict", "control"),
                        }
                    )
        columns = [
            "experiment",
            "variant",
            "metric",
            "value",
            "low",
            "high",
            "n",
            "difference",
            "verdict",
        ]
        return csv_response(rows, columns, "experiments")
    return {"experiments": found}


@router.post("/experiments", status_code=201)
async def start_experiment(definition: dict[str, Any], user: Admin, fd: FrontdeskDep) -> Any:
    """Start an experiment (the same fields as an experiment file, as JSON). 409 while another
    one runs."""
    return await do_start_experiment(fd, definition, user.id)


@router.post("/experiments/{name}/stop")
async def stop_experiment(
    name: str, user: Admin, fd: FrontdeskDep, tasks: BackgroundTasks, body: StopBody | None = None
) -> Any:
    """Stop an experiment, naming its winner; with ``promote`` the winner goes through the
    release gate in the background (its outcome appears as ``promotion``)."""
    wanted = body or StopBody()
    if wanted.promote and wanted.winner is None:
        raise ExperimentError("name the winner to promote it")
    stopped = await do_stop_experiment(fd, name, wanted.winner, user.id)
    if wanted.promote:
        tasks.add_task(_promote, fd, name, user.id)
        stopped["promotion"] = {"status": "running"}
    return stopped


async def _promote(fd: Frontdesk, name: str, user_id: str) -> None:
    try:
        await do_promote(fd, name, user_id)
    except Exception as error:  # recorded with the experiment, shown on the dashboard
        from frontdesk.adapters.store.tables import ExperimentRow

        failure = f"promotion failed: {error}"

        def record(session: Session) -> None:
            row = session.get(ExperimentRow, name)
            if row is not None:
                row.promotion = {"accepted": False, "reasons": [failure]}

        await fd.db.run(record)
