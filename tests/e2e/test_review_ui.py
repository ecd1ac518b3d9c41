"""The console's review form in a real browser: a reviewer corrects a bot reply and, with
"Also save as a regression test" ticked, the correction is saved as a conversation test too;
the confirmation names the test file, which exists and asks the corrected question."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from tests.e2e.conftest import ADMIN, NewPage, needs_chromium

pytestmark = [pytest.mark.e2e, needs_chromium]


def test_that_a_reviewer_saves_a_correction_as_a_regression_test(
    new_page: NewPage, server: str, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server, timeout=60) as client:  # a reply the bot is unsure of
        cid = client.post("/api/conversations", json={"channel": "web"}).json()["id"]
        sent = client.post(
            f"/api/conversations/{cid}/messages", json={"text": "Can I pay with bitcoin?"}
        )
        assert sent.status_code == 200, sent.text

    page = new_page("/console")
    page.get_by_test_id("login-form").wait_for(state="visible")
    page.get_by_test_id("login-email").fill(ADMIN[0])
    page.get_by_test_id("login-password").fill(ADMIN[1])
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("tab-reviews").click()
    item = page.get_by_test_id("review-item").filter(has_text="bitcoin")
    item.wait_for(timeout=15_000)

    save_test = item.get_by_test_id("review-save-test")
    assert save_test.is_disabled()  # only a correction can become a test
    item.get_by_test_id("rate-wrong").click()
    correction = item.get_by_test_id("review-correction")
    correction.fill("We take cards and PayPal, not cryptocurrencies.")
    assert save_test.is_enabled()
    save_test.check()
    correction.fill("")
    assert save_test.is_disabled() and not save_test.is_checked()
    correction.fill("We take cards and PayPal, not cryptocurrencies.")
    save_test.check()
    item.get_by_test_id("review-submit").click()

    confirmation = page.get_by_test_id("console-notice").filter(has_text="Regression test saved to")
    confirmation.wait_for(timeout=15_000)
    text = confirmation.inner_text()
    assert "Approved answer" in text
    expected = tmp_path / "data" / "tests" / "reviews.yaml"
    assert str(expected) in text
    saved = expected.read_text(encoding="utf-8")
    assert "Can I pay with bitcoin?" in saved and "We take cards and PayPal" in saved
    assert item.count() == 0
