"""Starting, reading, stopping and promoting A/B experiments.

At most one experiment runs at a time (two would change the same conversations in ways that
cannot be told apart). Starting validates every variant as the service would run it. Stopping
returns every conversation to the live setup; promoting a winner sends it through the release
gate like any other change: the variant's guidelines, flows and model version are installed
only if the suite passes and no tracked metric regresses.
"""

from __future__ import annotations

import shutil
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.store import people
from frontdesk.adapters.store.tables import ExperimentRow
from frontdesk.analytics.experiments import compare
from frontdesk.analytics.kpis import today_in
from frontdesk.company.experiments import (
    ExperimentError,
    ExperimentSpec,
    build_variant,
    variant_guidelines_text,
)
from frontdesk.core.types import utcnow
from frontdesk.service import Frontdesk


def _public(row: ExperimentRow) -> dict[str, Any]:
    spec = ExperimentSpec.model_validate(row.definition)
    return {
        "name": row.name,
        "description": spec.description,
        "status": row.status,
        "control": spec.control,
        "variants": list(spec.variants),
        "weights": spec.split(),
        "started_at": row.started_at.isoformat(),
        "stopped_at": None if row.stopped_at is None else row.stopped_at.isoformat(),
        "winner": row.winner,
        "promotion": row.promotion,
    }


async def do_start_experiment(
    fd: Frontdesk, definition: dict[str, Any], user_id: str | None = None
) -> dict[str, Any]:
    try:
        spec = ExperimentSpec.model_validate(definition)
    except ValueError as error:
        raise ExperimentError(f"the experiment is not valid: {error}") from error
    for name in spec.variants:
        setup = build_variant(fd.settings.company_dir, spec, name)
        version = setup.intent_model_version
        if version is not None:
            if not fd.settings.intent_model:
                raise ExperimentError(
                    f"variant {name!r} sets intent_model_version, but the service runs no "
                    "intent model (FRONTDESK_INTENT_MODEL)"
                )
            if version not in fd.registry.versions("intents", fd.settings.intent_model):
                raise ExperimentError(
                    f"variant {name!r}: intents model {fd.settings.intent_model!r} has no "
                    f"version {version}"
                )

    def work(session: Session) -> dict[str, Any]:
        running = session.execute(
            select(ExperimentRow.name).where(ExperimentRow.status == "running")
        ).scalar_one_or_none()
        if running is not None:
            raise ExperimentError(f"the experiment {running!r} is running: stop it first", 409)
        if session.get(ExperimentRow, spec.name) is not None:
            raise ExperimentError(
                f"an experiment named {spec.name!r} exists: choose a new name", 409
            )
        row = ExperimentRow(
            name=spec.name,
            definition=spec.model_dump(mode="json"),
            status="running",
            started_at=utcnow(),
            stopped_at=None,
            winner=None,
            promotion=None,
        )
        session.add(row)
        if user_id is not None:
            people.audit(session, user_id, "experiment_started", None, {"experiment": spec.name})
        return _public(row)

    started = await fd.db.run(work)
    await fd.load_experiment()
    return started


async def do_list_experiments(fd: Frontdesk) -> list[dict[str, Any]]:
    """Every experiment, newest first, each with its variants compared."""
    zone = fd.guidelines.working_hours.timezone
    today = today_in(zone)

    def work(session: Session) -> list[dict[str, Any]]:
        rows = session.execute(
            select(ExperimentRow).order_by(ExperimentRow.started_at.desc())
        ).scalars()
        found = []
        for row in rows:
            public = _public(row)
            start = today_in(zone, row.started_at)
            end = today_in(zone, row.stopped_at) if row.stopped_at else today
            public["comparison"] = compare(
                session, row.name, public["control"], public["variants"], start, max(start, end)
            )
            found.append(public)
        return found

    listed: list[dict[str, Any]] = await fd.db.run(work)
    return listed


async def do_stop_experiment(
    fd: Frontdesk, name: str, winner: str | None, user_id: str | None = None
) -> dict[str, Any]:
    """Stop the experiment (its conversations go back to the live setup) and note the
    winner, if one is named."""

    def work(session: Session) -> dict[str, Any]:
        row = session.get(ExperimentRow, name)
        if row is None:
            raise ExperimentError(f"no experiment named {name!r}", 404)
        if row.status != "running":
            raise ExperimentError(f"the experiment {name!r} is stopped already", 409)
        spec = ExperimentSpec.model_validate(row.definition)
        if winner is not None and winner not in spec.variants:
            raise ExperimentError(f"{winner!r} is not a variant of {name!r}")
        row.status = "stopped"
        row.stopped_at = utcnow()
        row.winner = winner
        if user_id is not None:
            people.audit(
                session, user_id, "experiment_stopped", None, {"experiment": name, "winner": winner}
            )
        return _public(row)

    stopped = await fd.db.run(work)
    await fd.load_experiment()
    return stopped


async def do_promote(fd: Frontdesk, name: str, user_id: str | None = None) -> dict[str, Any]:
    """Send a stopped experiment's winner through the release gate; the outcome is kept with
    the experiment. The control as winner changes nothing."""
    from frontdesk.testing.release import run_release

    row = await fd.db.run(lambda s: s.get(ExperimentRow, name))
    if row is None:
        raise ExperimentError(f"no experiment named {name!r}", 404)
    if row.status != "stopped" or row.winner is None:
        raise ExperimentError("stop the experiment with a winner before promoting it", 409)
    spec = ExperimentSpec.model_validate(row.definition)
    variant = spec.variants[row.winner]
    company = fd.settings.company_dir
    if variant.changes_nothing:
        outcome: dict[str, Any] = {"accepted": True, "reasons": [], "installed": [], "report": None}
    else:
        if company is None:
            raise ExperimentError("promotion needs the company folder")
        candidate = fd.settings.data_dir / "experiments" / name / "candidate"
        shutil.rmtree(candidate, ignore_errors=True)
        candidate.mkdir(parents=True)
        if variant.guidelines:
            text = variant_guidelines_text(company, variant)
            (candidate / "guidelines.yaml").write_text(text, encoding="utf-8")
        if variant.flows is not None:
            shutil.copytree(company / variant.flows / "flows", candidate / "flows")
        has_files = variant.guidelines or variant.flows is not None
        verdict = await run_release(
            fd.settings,
            candidate if has_files else None,
            model_version=variant.intent_model_version,
        )
        outcome = verdict.public()

    def record(session: Session) -> dict[str, Any]:
        found = session.get(ExperimentRow, name)
        assert found is not None
        found.promotion = {**outcome, "at": utcnow().isoformat()}
        if user_id is not None:
            people.audit(
                session,
                user_id,
                "experiment_promoted",
                None,
                {"experiment": name, "accepted": outcome["accepted"]},
            )
        return _public(found)

    return await fd.db.run(record)
