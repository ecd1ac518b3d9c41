"""A reviewer's correction saved as a regression test, in one action, that `frontdesk test`
then runs (with the live database's approved answers) and passes."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import httpx
import yaml
from tests.conftest import Login, open_conversation, say
from typer.testing import CliRunner

from frontdesk.cli import app as cli
from frontdesk.demo import DEMO_INTENTS
from frontdesk.service import Frontdesk
from frontdesk.testing.cli import run_tests
from frontdesk.testing.regressions import key_phrase

CORRECTION = (
    "Yes: orders over $75 ship free within the contiguous US, and Alaska and Hawaii pay a flat "
    "$12.99. Shipping to Canada costs $19.99."
)


def test_key_phrase() -> None:
    assert key_phrase("Short answer. More text.") == "Short answer"
    long = key_phrase(CORRECTION)
    assert len(long) <= 80 and CORRECTION.startswith(long)


async def test_a_correction_becomes_a_passing_regression_test(
    frontdesk: Frontdesk,
    login: Login,
    customer: httpx.AsyncClient,
    demo_intents: Path,
    backend: str,
) -> None:
    cid = await open_conversation(customer)
    question = "do you ship to alaska for free?"
    reply = (await say(customer, cid, question))["replies"][0]
    rita = await login("rita@example.com")

    plain = await rita.post(
        "/api/console/reviews",
        json={"message_id": reply["id"], "rating": "good", "save_test": True},
    )
    assert plain.status_code in (409, 422)  # nothing to test without a correction

    reviewed = await rita.post(
        "/api/console/reviews",
        json={
            "message_id": reply["id"],
            "rating": "wrong",
            "correction": CORRECTION,
            "save_test": True,
        },
    )
    assert reviewed.status_code == 201, reviewed.text
    saved = Path(reviewed.json()["regression_test"])
    assert saved == frontdesk.settings.data_dir / "tests" / "reviews.yaml"
    suite = yaml.safe_load(saved.read_text(encoding="utf-8"))
    (case,) = suite["conversations"]
    assert case["turns"][0]["say"] == question
    assert case["turns"][0]["expect"]["reply_contains"] == [key_phrase(CORRECTION)]

    # The same from the command line replaces the test rather than adding a second one.
    review_id = reviewed.json()["review"]["id"]
    if backend == "sqlite":
        result = await asyncio.to_thread(
            CliRunner().invoke,
            cli,
            [
                "reviews",
                "save-test",
                str(review_id),
                "--data-dir",
                str(frontdesk.settings.data_dir),
            ],
            env={
                "FRONTDESK_SECRET_KEY": "test-secret",
                "FRONTDESK_DATABASE_URL": frontdesk.settings.resolved_database_url,
                "FRONTDESK_COMPANY_DIR": str(frontdesk.settings.company_dir),
            },
        )
        assert result.exit_code == 0, result.output
        assert len(yaml.safe_load(saved.read_text())["conversations"]) == 1
    missing = await asyncio.to_thread(
        CliRunner().invoke,
        cli,
        ["reviews", "save-test", "999999", "--data-dir", str(frontdesk.settings.data_dir)],
        env={
            "FRONTDESK_SECRET_KEY": "test-secret",
            "FRONTDESK_DATABASE_URL": frontdesk.settings.resolved_database_url,
            "FRONTDESK_COMPANY_DIR": str(frontdesk.settings.company_dir),
        },
    )
    assert missing.exit_code == 1 and "no review with a correction" in missing.output

    # `frontdesk test` runs on scratch data with the live approved answers: it passes.
    shutil.copytree(demo_intents, frontdesk.settings.data_dir / "models", dirs_exist_ok=True)
    settings = frontdesk.settings.model_copy(update={"intent_model": DEMO_INTENTS})
    assert await run_tests(settings, [saved], None, False, None)
