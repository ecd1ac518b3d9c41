"""The traffic simulator: weeks of demo-store conversations played through the real pipeline."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from tests.conftest import DEMO, SharedEmbedder, copy_template
from typer.testing import CliRunner

from frontdesk.adapters.store.tables import CsatRow, EventRow, MessageRow
from frontdesk.analytics.simulate import simulate
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.demo import DEMO_INTENTS
from frontdesk.service import Frontdesk

COUNT = 25
SEED = 3


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _now() -> datetime:
    """The simulation's "now": the latest 16:00 UTC that has passed. Which conversations land
    inside the store's working hours follows from the time of day, so a fixed time of day
    keeps the seeded simulation's outcomes (a conversion among them) the same from run to
    run; with the clock's own time of day, the 25 conversations held no conversion after
    17:00 UTC."""
    moment = datetime.now(UTC).replace(hour=16, minute=0, second=0, microsecond=0)
    return moment if moment <= datetime.now(UTC) else moment - timedelta(days=1)


async def _started(settings: Settings, embedder: SharedEmbedder, intents: Path) -> Frontdesk:
    """The service with the demo store's intent model, on the given fresh database."""
    shutil.copytree(intents, settings.data_dir / "models")
    fd = Frontdesk(settings.model_copy(update={"intent_model": DEMO_INTENTS}), embedder=embedder)
    await fd.start()
    return fd


@pytest.fixture
async def smart_frontdesk(
    settings: Settings, shared_embedder: SharedEmbedder, demo_intents: Path
) -> AsyncIterator[Frontdesk]:
    fd = await _started(settings, shared_embedder, demo_intents)
    yield fd
    await fd.close()


async def test_simulated_weeks_fill_the_dashboard(smart_frontdesk: Frontdesk) -> None:
    fd = smart_frontdesk
    before = datetime.now(UTC)
    report = await simulate(fd, COUNT, weeks=6, seed=SEED, now=_now())
    assert report.errors == 0
    assert report.conversations == COUNT

    def read(session: Session) -> tuple[list[tuple[str, dict[str, Any], datetime]], int]:
        rows = session.execute(select(EventRow.type, EventRow.payload, EventRow.created_at))
        ratings = session.execute(select(func.count()).select_from(CsatRow)).scalar_one()
        return list(rows.tuples()), int(ratings)

    events, ratings = await fd.db.run(read)
    stamps = [_aware(at) for _, _, at in events]
    assert max(stamps) - min(stamps) >= timedelta(days=14)
    assert max(stamps) <= datetime.now(UTC)
    assert min(stamps) >= before - timedelta(weeks=6, days=2)
    kinds = Counter(kind for kind, _, _ in events)
    resolved_by = Counter(
        str(payload.get("by")) for kind, payload, _ in events if kind == "conversation_resolved"
    )
    assert resolved_by["bot"] > 0 and resolved_by["agent"] > 0
    assert kinds["handoff_requested"] > 0
    assert kinds["conversion"] >= 1
    assert kinds["lead_captured"] >= 1
    assert ratings > 0 and kinds["csat_submitted"] == ratings
    assert report.handoffs == kinds["handoff_requested"]

    # What customers typed went through the pipeline's pseudonymization, like any message.
    assert report.typed_emails
    texts = await fd.db.run(
        lambda s: [t.lower() for t in s.execute(select(MessageRow.text)).scalars()]
    )
    for email in report.typed_emails:
        assert not any(email.lower() in text for text in texts), email


async def test_the_same_seed_plays_the_same_conversations(
    tmp_path: Path,
    sqlite_template: Path,
    shared_embedder: SharedEmbedder,
    demo_intents: Path,
) -> None:
    now = _now()
    outcomes = []
    for run in ("first", "second"):
        data = tmp_path / run
        data.mkdir()
        copy_template(sqlite_template, data)
        settings = Settings(data_dir=data, company_dir=DEMO, secret_key="test-secret")
        fd = await _started(settings, shared_embedder, demo_intents)
        try:
            report = await simulate(fd, 12, weeks=3, seed=11, now=now, after_jobs=False)
        finally:
            await fd.close()
        outcomes.append(report.counts())
    assert outcomes[0] == outcomes[1]
    assert outcomes[0]["conversations"] == 12


def test_demo_simulate_only_plays_and_exits(
    tmp_path: Path,
    sqlite_template: Path,
    demo_intents: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A demo folder that already holds the trained intent model and the embedded help centre.
    data = tmp_path / "demo"
    data.mkdir()
    copy_template(sqlite_template, data)
    shutil.copytree(demo_intents, data / "models")
    monkeypatch.setenv("FRONTDESK_SECRET_KEY", "test-secret")
    monkeypatch.delenv("FRONTDESK_DATABASE_URL", raising=False)
    result = CliRunner().invoke(
        app, ["demo", "--simulate", "3", "--simulate-only", "--data-dir", str(data)]
    )
    assert result.exit_code == 0, result.output
    assert "simulated 3 conversations" in result.output
    assert "CSAT given" in result.output
