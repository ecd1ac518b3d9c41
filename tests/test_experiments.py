"""A/B experiments: definitions, the stable split, variants served for real, the comparison
with intervals and verdicts, stopping, and promotion through the release gate."""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select
from tests.conftest import DEMO, Login, open_conversation, say

from frontdesk.actions.experiments import do_promote, do_start_experiment, do_stop_experiment
from frontdesk.adapters.store.tables import AnalyticsCountRow
from frontdesk.analytics import experiments as stats
from frontdesk.analytics.rollup import run_rollup
from frontdesk.company.experiments import (
    ExperimentError,
    ExperimentSpec,
    assign,
    build_variant,
    parse_experiment,
)
from frontdesk.config import Settings
from frontdesk.demo import DEMO_INTENTS
from frontdesk.service import Frontdesk

WARM = "Sorry, I didn't catch that one. Could you put it another way?"
DEFINITION: dict[str, Any] = {
    "name": "warm-fallback",
    "description": "Does a warmer fallback keep customers with the bot?",
    "variants": {"control": {}, "warm": {"guidelines": {"texts": {"fallback": WARM}}}},
    "weights": {"control": 1, "warm": 1},
}


def test_definitions_are_validated() -> None:
    spec = parse_experiment(yaml.safe_dump(DEFINITION), "warm.yaml")
    assert spec.split() == {"control": 1.0, "warm": 1.0}
    bad = [
        ({**DEFINITION, "control": "nope"}, "not one of the variants"),
        ({**DEFINITION, "variants": {"control": {"flows": "x"}, "b": {}}}, "leave its variant"),
        ({**DEFINITION, "weights": {"other": 1}}, "unknown variants"),
        ({**DEFINITION, "weights": {"control": 0, "warm": 0}}, "add up to zero"),
        ({**DEFINITION, "name": "Bad Name"}, "name"),
        ({**DEFINITION, "variants": {"control": {}}}, "at least 2"),
    ]
    for definition, problem in bad:
        with pytest.raises(ExperimentError, match=problem):
            parse_experiment(yaml.safe_dump(definition), "bad.yaml")


def test_a_variant_is_checked_as_the_service_would_run_it() -> None:
    broken = ExperimentSpec.model_validate(
        {
            "name": "x",
            "variants": {
                "control": {},
                "strict": {"guidelines": {"escalation": {"low_confidence_turns": 0}}},
            },
        }
    )
    with pytest.raises(ExperimentError, match=r"(?s)variant 'strict'.*low_confidence_turns"):
        build_variant(DEMO, broken, "strict")
    outside = ExperimentSpec.model_validate(
        {"name": "x", "variants": {"control": {}, "away": {"flows": "../../"}}}
    )
    with pytest.raises(ExperimentError, match="inside the company folder"):
        build_variant(DEMO, outside, "away")
    fine = ExperimentSpec.model_validate(DEFINITION)
    assert build_variant(DEMO, fine, "warm").guidelines.texts.fallback == WARM
    # The rest of the live guidelines is kept.
    assert build_variant(DEMO, fine, "warm").guidelines.assistant_name == "Nora"


def test_the_split_is_stable_and_follows_the_weights() -> None:
    spec = ExperimentSpec.model_validate({**DEFINITION, "weights": {"control": 3, "warm": 1}})
    ids = [f"conversation-{n}" for n in range(8000)]
    first = [assign(spec, i) for i in ids]
    assert first == [assign(spec, i) for i in ids]
    share = Counter(first)["warm"] / len(ids)
    assert share == pytest.approx(0.25, abs=0.02)


def _counts(control: dict[str, float], variant: dict[str, float]) -> Any:
    return {"control": control, "warm": variant}


def test_the_comparison_says_better_worse_or_not_yet_known() -> None:
    control = {"conversations": 400, "bot_resolved": 200, "handoffs": 60, "conversions": 12}
    variant = {"conversations": 400, "bot_resolved": 260, "handoffs": 100, "conversions": 13}
    said, diff = stats.verdict(control, variant, "bot_resolved", True)
    assert said == "better" and diff is not None and diff[0] == pytest.approx(0.15)
    assert stats.verdict(control, variant, "handoffs", False)[0] == "worse"
    assert stats.verdict(control, variant, "conversions", True)[0] == "not yet known"
    few = {"conversations": 10, "bot_resolved": 9}
    assert stats.verdict(few, {"conversations": 10, "bot_resolved": 1}, "bot_resolved", True)[
        0
    ] == ("not yet known")
    # CSAT from sums and squares: 40 ratings of 4 and 5 against 40 of 2 and 3.
    high = {"conversations": 100, "csat_n": 40, "csat_sum": 180, "csat_sq": 20 * 16 + 20 * 25}
    low = {"conversations": 100, "csat_n": 40, "csat_sum": 100, "csat_sq": 20 * 4 + 20 * 9}
    said, diff = stats.verdict(low, high, None, True)
    assert said == "better" and diff is not None and diff[0] == pytest.approx(2.0)
    low_ci = stats.wilson(50, 100)
    assert low_ci is not None and low_ci[0] < 0.5 < low_ci[1]


async def test_variants_are_served_compared_and_stopped(
    frontdesk: Frontdesk, login: Login, customer: httpx.AsyncClient
) -> None:
    rita = await login("rita@example.com")
    refused = await rita.post("/api/analytics/experiments", json=DEFINITION)
    assert refused.status_code == 403  # admins only
    ada = await login("ada@example.com")
    started = await ada.post("/api/analytics/experiments", json=DEFINITION)
    assert started.status_code == 201, started.text
    again = await ada.post("/api/analytics/experiments", json={**DEFINITION, "name": "other"})
    assert again.status_code == 409 and "is running" in again.json()["error"]["message"]
    invalid = await ada.post(
        "/api/analytics/experiments", json={**DEFINITION, "control": "missing"}
    )
    assert invalid.status_code == 422

    seen: Counter[str] = Counter()
    for _ in range(12):
        cid = await open_conversation(customer)
        reply = (await say(customer, cid, "qwzx blorp fnarg"))["replies"][0]["text"]
        variant = "warm" if reply == WARM else "control"
        if variant == "control":
            assert reply == frontdesk.guidelines.texts.fallback
        seen[variant] += 1
        # The same conversation stays in its variant.
        second = (await say(customer, cid, "vrrp zlonk"))["replies"][0]["text"]
        assert (second == WARM) == (variant == "warm") or "person" in second
    assert seen["warm"] > 0 and seen["control"] > 0

    await run_rollup(frontdesk, lag_seconds=0)
    listed = (await rita.get("/api/analytics/experiments")).json()["experiments"]
    assert listed[0]["name"] == "warm-fallback" and listed[0]["status"] == "running"
    sides = listed[0]["comparison"]["variants"]
    assert sides["warm"]["conversations"] == seen["warm"]
    assert sides["control"]["conversations"] == seen["control"]
    summary = listed[0]["comparison"]["comparisons"][0]
    assert summary["variant"] == "warm" and "not yet known" in summary["summary"]
    exported = await rita.get("/api/analytics/experiments", params={"format": "csv"})
    assert exported.headers["content-type"].startswith("text/csv")
    assert "warm-fallback,warm,bot_resolution_rate" in exported.text

    stopped = await ada.post(
        "/api/analytics/experiments/warm-fallback/stop", json={"winner": "nobody"}
    )
    assert stopped.status_code == 422
    stopped = await ada.post("/api/analytics/experiments/warm-fallback/stop", json={})
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
    assert (await ada.post("/api/analytics/experiments/warm-fallback/stop")).status_code == 409
    assert (await ada.post("/api/analytics/experiments/unknown/stop")).status_code == 404
    # Stopped: every conversation is served the live way again.
    cid = await open_conversation(customer)
    assert (await say(customer, cid, "qwzx blorp fnarg"))["replies"][0]["text"] != WARM
    counted = await frontdesk.db.run(
        lambda s: (
            s.execute(
                select(AnalyticsCountRow.value).where(AnalyticsCountRow.dimension == "variant")
            )
            .scalars()
            .all()
        )
    )
    assert {"warm-fallback:warm", "warm-fallback:control"} <= set(counted)


def test_the_winner_is_promoted_through_the_release_gate(
    tmp_path: Path, demo_intents: Path
) -> None:
    company = tmp_path / "live"
    shutil.copytree(DEMO, company, ignore=shutil.ignore_patterns("tests", "test.csv"))
    (company / "tests").mkdir()
    suite = yaml.safe_load((DEMO / "tests" / "knowledge.yaml").read_text(encoding="utf-8"))
    suite["conversations"] = suite["conversations"][:2]
    (company / "tests" / "knowledge.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    data = tmp_path / "data"
    shutil.copytree(demo_intents, data / "models")
    settings = Settings(
        company_dir=company,
        data_dir=data,
        intent_model=DEMO_INTENTS,
        secret_key="test-secret",
        analytics_rollup_seconds=0,
    )

    async def run() -> dict[str, Any]:
        fd = Frontdesk(settings)
        await fd.start(load_knowledge=False)
        try:
            await do_start_experiment(fd, DEFINITION)
            with pytest.raises(ExperimentError, match="stop the experiment"):
                await do_promote(fd, "warm-fallback")
            await do_stop_experiment(fd, "warm-fallback", "warm")
            return await do_promote(fd, "warm-fallback")
        finally:
            await fd.close()

    promoted = asyncio.run(run())
    assert promoted["promotion"]["accepted"], promoted["promotion"]
    assert promoted["promotion"]["installed"] == ["guidelines.yaml"]
    live = yaml.safe_load((company / "guidelines.yaml").read_text(encoding="utf-8"))
    assert live["texts"]["fallback"] == WARM
    assert live["assistant_name"] == "Nora"
    assert date.today().year >= 2026


async def test_a_variant_that_cannot_run_leaves_everyone_on_the_live_setup(
    frontdesk: Frontdesk,
) -> None:
    from frontdesk.adapters.store.tables import ExperimentRow
    from frontdesk.core.types import utcnow

    broken = {
        **DEFINITION,
        "variants": {"control": {}, "gone": {"flows": "no-such-folder"}},
        "weights": {},
    }

    def insert(session: Any) -> None:
        session.add(
            ExperimentRow(
                name="warm-fallback",
                definition=ExperimentSpec.model_validate(broken).model_dump(mode="json"),
                status="running",
                started_at=utcnow(),
            )
        )

    await frontdesk.db.run(insert)  # as if its folder was removed after it started
    await frontdesk.load_experiment()
    assert frontdesk.experiment is None
    assert frontdesk.profile_for({"experiment": {"name": "warm-fallback", "variant": "gone"}})
