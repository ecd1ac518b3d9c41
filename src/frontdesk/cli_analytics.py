"""``frontdesk analytics``: roll the events up into the KPI counts, and read the KPIs."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from frontdesk.cli_common import CompanyOpt, DataDirOpt, _settings, _with_service
from frontdesk.cli_learning import ProgressBar, console, error, say

analytics_app = typer.Typer(
    help="KPIs: roll events up into counts, read the KPIs against their targets.",
    no_args_is_help=True,
)


def _pending(session: Any) -> int:
    from sqlalchemy import func, select

    from frontdesk.adapters.store.tables import AnalyticsCursorRow, EventRow
    from frontdesk.analytics.rollup import CURSOR

    cursor = session.get(AnalyticsCursorRow, CURSOR)
    after = cursor.last_event_id if cursor is not None else 0
    return int(session.execute(select(func.count()).where(EventRow.id > after)).scalar_one())


@analytics_app.command("rollup")
def rollup(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Events per transaction.")
    ] = 50_000,
    alerts: Annotated[
        bool, typer.Option("--alerts/--no-alerts", help="Check the KPI targets afterwards.")
    ] = True,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Roll every new event up into the KPI counts (resumable: an interrupted run loses
    nothing and counts nothing twice), then check the KPI targets."""
    from frontdesk.analytics.alerts import check_alerts, describe
    from frontdesk.analytics.rollup import run_rollup
    from frontdesk.cli import CompanyFileError

    settings = _settings(company, data_dir)

    async def work(fd: Any) -> tuple[Any, list[dict[str, Any]]]:
        total = await fd.db.run(_pending)
        done = 0
        with ProgressBar() as bar:

            def step(read: int) -> None:
                nonlocal done
                done += read
                bar("rolling up events", min(done, total), total)

            report = await run_rollup(fd, batch_size=batch_size, lag_seconds=0, progress=step)
        raised = await check_alerts(fd) if alerts else []
        return report, raised

    try:
        report, raised = asyncio.run(_with_service(settings, work))
    except CompanyFileError as exc:
        error(exc)
        raise typer.Exit(1) from exc
    console.print(
        f"rolled up {report.events} events of {report.conversations} conversations in "
        f"{report.batches} batches (cursor at event {report.cursor})"
    )
    for alert in raised:
        say("alert:", "yellow", describe(alert))


@analytics_app.command("kpis")
def show_kpis(
    start: Annotated[
        str | None, typer.Option("--start", help="First day, YYYY-MM-DD (default: 28 days ago).")
    ] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day (default: today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The KPIs of the conversations opened in a date range, against their targets (as
    rolled up: run `frontdesk analytics rollup` first for the newest numbers)."""
    from frontdesk.analytics import kpis

    settings = _settings(company, data_dir)
    try:
        last = date.fromisoformat(end) if end else None
        first = date.fromisoformat(start) if start else None
    except ValueError as exc:
        error(f"dates are YYYY-MM-DD: {exc}")
        raise typer.Exit(2) from exc

    async def work(fd: Any) -> dict[str, Any]:
        since, to = kpis.date_range(fd.guidelines.working_hours.timezone, first, last)
        found: dict[str, Any] = await fd.db.run(
            lambda s: kpis.kpis(s, since, to, fd.guidelines.kpi_targets)
        )
        return found

    try:
        found = asyncio.run(_with_service(settings, work))
    except kpis.RangeError as exc:
        error(exc)
        raise typer.Exit(2) from exc
    if as_json:
        print(json.dumps(found, indent=2))
        return
    print(f"{found['start']} to {found['end']}: {found['conversations']} conversations")
    for target in found["targets"]:
        value = target["value"]
        shown = "no data" if value is None else f"{value:.3g}"
        mark = {"met": "met", "missed": "MISSED", "no_data": "-"}[target["status"]]
        side = "<=" if target["direction"] == "below" else ">="
        print(f"  {target['label']:<28} {shown:>10}   target {side} {target['target']:<6} {mark}")
    print(
        f"  revenue {found['revenue']:.2f}, leads {found['leads']}, "
        f"CSAT ratings {found['csat_count']}"
    )


experiments_app = typer.Typer(
    help="A/B experiments: start one from a file, compare its variants, stop it, promote the "
    "winner through the release gate.",
    no_args_is_help=True,
)


def _experiment_error(exc: Exception) -> typer.Exit:
    error(exc)
    return typer.Exit(1)


@experiments_app.command("start")
def experiments_start(
    file: Annotated[
        Path, typer.Argument(help="The experiment (YAML).", exists=True, dir_okay=False)
    ],
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Start an A/B experiment. A running service picks it up within
    FRONTDESK_ANALYTICS_ROLLUP_SECONDS; new conversations are split between its variants."""
    from frontdesk.actions.experiments import do_start_experiment
    from frontdesk.company.experiments import ExperimentError, parse_experiment

    settings = _settings(company, data_dir)
    try:
        spec = parse_experiment(file.read_text(encoding="utf-8"), str(file))
        started = asyncio.run(
            _with_service(
                settings, lambda fd: do_start_experiment(fd, spec.model_dump(mode="json"))
            )
        )
    except ExperimentError as exc:
        raise _experiment_error(exc) from exc
    split = ", ".join(f"{k} {v:g}" for k, v in started["weights"].items())
    console.print(f"experiment {started['name']} started: {split}")


@experiments_app.command("list")
def experiments_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Every experiment with its variants compared with the control (run `frontdesk
    analytics rollup` first for the newest numbers)."""
    from frontdesk.actions.experiments import do_list_experiments

    settings = _settings(company, data_dir)
    found = asyncio.run(_with_service(settings, do_list_experiments))
    if as_json:
        print(json.dumps({"experiments": found}, indent=2))
        return
    if not found:
        print("no experiments")
    for experiment in found:
        ended = f", winner {experiment['winner']}" if experiment["winner"] else ""
        print(
            f"{experiment['name']} ({experiment['status']}{ended}) since {experiment['started_at']}"
        )
        for variant, side in experiment["comparison"]["variants"].items():
            print(f"  {variant:<16} {side['conversations']:>6} conversations")
        for comparison in experiment["comparison"]["comparisons"]:
            print(f"  {comparison['summary']}")


@experiments_app.command("stop")
def experiments_stop(
    name: Annotated[str, typer.Argument(help="The experiment.")],
    winner: Annotated[str | None, typer.Option("--winner", help="The variant that won.")] = None,
    promote: Annotated[
        bool,
        typer.Option("--promote", help="Send the winner through the release gate now."),
    ] = False,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Stop an experiment (every conversation goes back to the live setup); with --promote,
    install the winner if the release gate accepts it."""
    from frontdesk.actions.experiments import do_promote, do_stop_experiment
    from frontdesk.company.experiments import ExperimentError

    if promote and winner is None:
        raise typer.BadParameter("--promote needs --winner")
    settings = _settings(company, data_dir)

    async def work(fd: Any) -> dict[str, Any]:
        stopped: dict[str, Any] = await do_stop_experiment(fd, name, winner)
        if promote:
            stopped = await do_promote(fd, name)
        return stopped

    try:
        stopped = asyncio.run(_with_service(settings, work))
    except ExperimentError as exc:
        raise _experiment_error(exc) from exc
    console.print(f"experiment {name} stopped" + (f", winner {winner}" if winner else ""))
    promotion = stopped.get("promotion")
    if promotion:
        if promotion["accepted"]:
            installed = ", ".join(promotion["installed"]) or "nothing to change"
            console.print(Text.assemble(("promoted", "green"), f": {installed}"))
        else:
            console.print(Text.assemble(("promotion refused", "red"), ":"))
            for reason in promotion["reasons"]:
                console.print(f"  - {reason}")
        if promotion.get("report"):
            console.print(f"report: {promotion['report']}")
        if not promotion["accepted"]:
            raise typer.Exit(1)


reviews_app = typer.Typer(
    help="Reviewers' corrections: save one as a regression test.", no_args_is_help=True
)


@reviews_app.command("save-test")
def reviews_save_test(
    review_id: Annotated[int, typer.Argument(help="The review (with a correction).")],
    to: Annotated[
        Path | None,
        typer.Option("--to", help="The test file (default: DATA_DIR/tests/reviews.yaml)."),
    ] = None,
    company: CompanyOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Save a reviewer's correction as a conversation test: the customer's question must get
    the approved answer. Run it with `frontdesk test` like any other test file."""
    from frontdesk.actions.reviews import ReviewError, do_save_review_test

    settings = _settings(company, data_dir)
    try:
        saved = asyncio.run(
            _with_service(settings, lambda fd: do_save_review_test(fd, review_id, to))
        )
    except ReviewError as exc:
        error(exc)
        raise typer.Exit(1) from exc
    console.print(f"saved as a regression test in {saved}")
