"""The release gate: a candidate is installed only if its suite passes and no tracked metric
regresses; a refused one changes nothing and comes with its report."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select
from tests.conftest import DEMO
from typer.testing import CliRunner

from frontdesk.adapters.store.tables import ArticleRow
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.demo import DEMO_INTENTS
from frontdesk.service import Frontdesk
from frontdesk.testing.release import ReleaseError, judge, run_release

GIFT_WRAP = """# Gift wrapping

We gift-wrap any order for $4.99. Choose gift wrapping at checkout; the packing slip then
shows no prices. Gift wrapping cannot be added after an order ships.
"""
GIFT_WRAP_TEST = """conversations:
  - name: gift wrapping is answered from the new article
    turns:
      - say: do you offer gift wrapping?
        expect:
          action: answer
          citation: gift-wrapping
          reply_contains: ["$4.99"]
"""


@pytest.fixture
def live(tmp_path: Path, demo_intents: Path) -> Settings:
    """A live company (the demo store with three of its knowledge tests, without the intent
    test set, to keep each evaluation short) and its data folder, with the demo intent model
    active."""
    company = tmp_path / "live"
    shutil.copytree(DEMO, company, ignore=shutil.ignore_patterns("tests", "test.csv"))
    (company / "tests").mkdir()
    suite = yaml.safe_load((DEMO / "tests" / "knowledge.yaml").read_text(encoding="utf-8"))
    suite["conversations"] = suite["conversations"][:3]
    (company / "tests" / "knowledge.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    data = tmp_path / "data"
    shutil.copytree(demo_intents, data / "models")
    return Settings(
        company_dir=company,
        data_dir=data,
        intent_model=DEMO_INTENTS,
        secret_key="test-secret",
        analytics_rollup_seconds=0,
    )


def candidate_knowledge(tmp_path: Path, live: Settings) -> Path:
    assert live.company_dir is not None
    folder = tmp_path / "candidate"
    shutil.copytree(live.company_dir / "knowledge", folder / "knowledge")
    shutil.copytree(live.company_dir / "tests", folder / "tests")
    return folder


async def articles(settings: Settings) -> set[str]:
    fd = Frontdesk(settings)
    await fd.start(load_knowledge=False)
    try:
        found = await fd.db.run(lambda s: set(s.execute(select(ArticleRow.id)).scalars()))
    finally:
        await fd.close()
    return found


def test_an_accepted_candidate_is_installed_and_ingested(tmp_path: Path, live: Settings) -> None:
    candidate = candidate_knowledge(tmp_path, live)
    (candidate / "knowledge" / "gift-wrapping.md").write_text(GIFT_WRAP, encoding="utf-8")
    (candidate / "tests" / "gift-wrapping.yaml").write_text(GIFT_WRAP_TEST, encoding="utf-8")

    verdict = asyncio.run(run_release(live, candidate))

    assert verdict.accepted, verdict.reasons
    assert verdict.installed == ["knowledge", "tests"]
    assert live.company_dir is not None
    assert (live.company_dir / "knowledge" / "gift-wrapping.md").exists()
    assert (live.company_dir / "tests" / "gift-wrapping.yaml").exists()
    assert "gift-wrapping" in asyncio.run(articles(live))
    log = (live.data_dir / "releases" / "releases.jsonl").read_text().splitlines()
    entry = json.loads(log[-1])
    assert entry["accepted"] and entry["applied"]
    previous = list((live.data_dir / "releases").glob("*/previous/knowledge"))
    assert previous and not (previous[0] / "gift-wrapping.md").exists()
    assert verdict.candidate["suite"]["conversations"] == 4


def test_a_broken_article_is_refused_with_the_report(tmp_path: Path, live: Settings) -> None:
    candidate = candidate_knowledge(tmp_path, live)
    # The exchanges article loses its rule; the suite's exchanges conversation must fail.
    article = candidate / "knowledge" / "exchanges.md"
    article.write_text(
        article.read_text(encoding="utf-8").replace(
            "Only orders with the status **delivered** can be exchanged.",
            "Orders can be exchanged.",
        ),
        encoding="utf-8",
    )
    assert live.company_dir is not None
    before = (live.company_dir / "knowledge" / "exchanges.md").read_text(encoding="utf-8")

    result = CliRunner().invoke(
        app,
        [
            "release",
            str(candidate),
            "--company",
            str(live.company_dir),
            "--data-dir",
            str(live.data_dir),
        ],
        env={"FRONTDESK_INTENT_MODEL": DEMO_INTENTS, "FRONTDESK_SECRET_KEY": "test-secret"},
    )

    assert result.exit_code == 1, result.output
    assert "release refused" in result.output
    assert "how exchanges work is answered from the help centre" in result.output
    after = (live.company_dir / "knowledge" / "exchanges.md").read_text(encoding="utf-8")
    assert after == before  # nothing installed
    pages = list((live.data_dir / "releases").glob("release-*-refused.html"))
    assert len(pages) == 1
    page = pages[0].read_text(encoding="utf-8")
    assert "Release refused" in page and "how exchanges work" in page


def test_a_retrieval_regression_is_refused(tmp_path: Path, live: Settings) -> None:
    candidate = candidate_knowledge(tmp_path, live)
    # No test and no FAQ entry cites these, but labelled questions ask about them.
    for name in (
        "accessibility",
        "finding-your-order-number",
        "sizing-guide-gear",
        "product-care-clothing",
        "privacy-and-your-data",
    ):
        (candidate / "knowledge" / f"{name}.md").unlink()

    verdict = asyncio.run(run_release(live, candidate, apply=True))

    assert not verdict.accepted
    assert any(r.startswith("retrieval hit@1 regressed") for r in verdict.reasons)
    assert live.company_dir is not None
    assert (live.company_dir / "knowledge" / "accessibility.md").exists()


def test_judge_and_bad_candidates(tmp_path: Path, live: Settings) -> None:
    base = {
        "suite": {"conversations": 2, "passed": 2, "failed": []},
        "retrieval": {"hit1": 0.9, "hit5": 1.0},
        "counterfactual": {"names_and_pronouns_changed": 0, "phrasing_rate": 0.01},
    }
    same = judge(base, base, 0.01)
    assert same == []
    slightly = {**base, "retrieval": {"hit1": 0.895, "hit5": 1.0}}
    assert judge(base, slightly, 0.01) == []
    unfair = {**base, "counterfactual": {"names_and_pronouns_changed": 1, "phrasing_rate": 0.01}}
    assert judge(base, unfair, 0.01) == [
        "name/pronoun outcome changes regressed: 0 -> 1 (tolerance 0)"
    ]
    untested = {"retrieval": {"hit1": 0.9, "hit5": 1.0}}
    assert "no conversation tests" in judge(base, untested, 0.01)[0]

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReleaseError, match="nothing to release"):
        asyncio.run(run_release(live, empty))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "guidelines.yaml").write_text("escalation:\n  low_confidence_turns: 0\n")
    with pytest.raises(ValueError, match="low_confidence_turns"):
        asyncio.run(run_release(live, broken))
    with pytest.raises(ReleaseError, match="no version 9"):
        asyncio.run(run_release(live, None, model_version=9))
