"""The satisfaction survey in the chat widget, in a real browser against a real server: a
customer who says goodbye (or ends the chat) is asked for a 1-5 rating once, in the company's
wording; the rating reaches the server, and neither a reload nor a reopened conversation asks
again. A screenshot of the rating card: widget-csat.png in test-artifacts/ (or
FRONTDESK_SCREENSHOTS=docs/images)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.conftest import needs_chromium, playwright

pytestmark = [pytest.mark.e2e, needs_chromium]


def _bubbles(page: playwright.Page, role: str) -> playwright.Locator:
    return page.locator(f'[data-testid="fd-message"][data-role="{role}"]')


def _say(page: playwright.Page, text: str) -> str:
    """Send a message and return the bot's reply to it."""
    before = _bubbles(page, "bot").count()
    page.get_by_test_id("fd-input").fill(text)
    page.keyboard.press("Enter")
    reply = _bubbles(page, "bot").nth(before)
    reply.wait_for(timeout=15_000)
    text_: str = reply.inner_text()
    return text_


def _conversation(page: playwright.Page, server: str) -> dict[str, object]:
    conversation_id = page.evaluate("() => window.FrontdeskWidget.conversationId()")
    assert conversation_id
    response = page.request.get(f"{server}/api/conversations/{conversation_id}")
    assert response.ok
    body: dict[str, object] = response.json()
    return body


def _wait_status(page: playwright.Page, status: str) -> None:
    """Wait until the server has the widget's conversation in this status."""
    page.wait_for_function(
        "([id, want]) => fetch('/api/conversations/' + id)"
        ".then(r => r.json()).then(c => c.status === want)",
        arg=[page.evaluate("() => window.FrontdeskWidget.conversationId()"), status],
    )


def _errors(page: playwright.Page) -> list[str]:
    found: list[str] = []

    def on_console(message: playwright.ConsoleMessage) -> None:
        where = (message.location or {}).get("url", "")
        # The demo page has no icon: Chromium's own /favicon.ico request may 404.
        if message.type == "error" and not where.endswith("/favicon.ico"):
            found.append(f"{message.text} ({where})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: found.append(str(e)))
    return found


def test_that_a_goodbye_asks_for_a_rating_once(
    page: playwright.Page, server: str, shots: Path
) -> None:
    errors = _errors(page)
    page.get_by_test_id("fd-panel").wait_for(state="visible")
    assert "business days" in _say(page, "How long do refunds take?")
    card = page.get_by_test_id("fd-csat")
    assert card.is_hidden()
    _say(page, "thanks, that's all, bye")

    card.wait_for(state="visible", timeout=15_000)
    config = page.request.get(f"{server}/api/widget/config").json()["csat"]
    assert config["question"] in card.inner_text()
    assert page.get_by_test_id("fd-end").is_hidden()  # resolved: nothing left to end
    labels = [
        page.get_by_test_id(f"fd-csat-score-{n}").get_attribute("aria-label") for n in range(1, 6)
    ]
    assert labels == ["1 star", "2 stars", "3 stars", "4 stars", "5 stars"]
    assert page.get_by_test_id("fd-csat-send").is_disabled()

    page.get_by_test_id("fd-csat-score-4").click()
    assert page.get_by_test_id("fd-csat-score-4").get_attribute("aria-pressed") == "true"
    page.get_by_test_id("fd-csat-comment").fill("Quick and clear answer, thank you.")
    panel = page.get_by_test_id("fd-panel")
    panel.screenshot(path=str(shots / "widget-csat.png"))

    page.get_by_test_id("fd-csat-send").click()
    thanks = page.get_by_test_id("fd-csat-thanks")
    thanks.wait_for(state="visible", timeout=10_000)
    assert thanks.inner_text().strip() == config["thanks"]
    stored = _conversation(page, server)
    assert stored["status"] == "resolved"
    assert isinstance(stored["csat"], dict)
    assert stored["csat"]["score"] == 4
    assert "Quick and clear" in str(stored["csat"]["comment"])
    panel.screenshot(path=str(shots / "widget-csat-thanks.png"))

    page.reload()
    _bubbles(page, "bot").nth(1).wait_for(timeout=15_000)
    page.wait_for_timeout(800)
    assert page.get_by_test_id("fd-csat").is_hidden()
    # Not even when localStorage is gone: the server knows it was rated.
    page.evaluate("() => localStorage.removeItem('frontdesk.csat')")
    page.reload()
    _bubbles(page, "bot").nth(1).wait_for(timeout=15_000)
    page.wait_for_timeout(800)
    assert page.get_by_test_id("fd-csat").is_hidden()
    assert page.get_by_test_id("fd-error").is_hidden()
    assert errors == []


def test_that_ending_the_chat_asks_for_a_rating_and_a_reopened_chat_does_not_ask_again(
    page: playwright.Page, server: str
) -> None:
    errors = _errors(page)
    page.get_by_test_id("fd-panel").wait_for(state="visible")
    end = page.get_by_test_id("fd-end")
    assert end.is_hidden()  # nothing to end before the first message
    _say(page, "Do you ship to Canada?")
    end.wait_for(state="visible")

    end.click()  # a confirm step first; Cancel keeps the chat
    page.get_by_test_id("fd-end-prompt").wait_for(state="visible")
    page.get_by_test_id("fd-end-cancel").click()
    assert page.get_by_test_id("fd-end-prompt").is_hidden()
    assert _conversation(page, server)["status"] != "resolved"

    end.click()
    page.get_by_test_id("fd-end-confirm").click()
    page.get_by_test_id("fd-csat").wait_for(state="visible", timeout=10_000)
    assert _conversation(page, server)["status"] == "resolved"
    assert end.is_hidden()
    page.get_by_test_id("fd-csat-score-2").click()
    page.get_by_test_id("fd-csat-send").click()
    page.get_by_test_id("fd-csat-thanks").wait_for(state="visible", timeout=10_000)
    rated = _conversation(page, server)["csat"]
    assert isinstance(rated, dict) and rated["score"] == 2 and rated["comment"] is None

    # Writing again reopens the conversation; ending it again does not ask a second time.
    _say(page, "How long do refunds take?")
    _wait_status(page, "open")
    end.wait_for(state="visible", timeout=10_000)
    end.click()
    page.get_by_test_id("fd-end-confirm").click()
    _wait_status(page, "resolved")
    page.wait_for_timeout(500)
    assert page.get_by_test_id("fd-csat-send").is_hidden()
    assert page.get_by_test_id("fd-error").is_hidden()
    assert errors == []


def test_that_an_unanswered_survey_comes_back_on_resume_and_a_skipped_one_does_not(
    page: playwright.Page,
) -> None:
    page.get_by_test_id("fd-panel").wait_for(state="visible")
    _say(page, "How long do refunds take?")
    page.get_by_test_id("fd-end").click()
    page.get_by_test_id("fd-end-confirm").click()
    card = page.get_by_test_id("fd-csat")
    card.wait_for(state="visible", timeout=10_000)
    # Resumed after a reload, a resolved conversation nobody rated yet asks (once) again.
    page.reload()
    card.wait_for(state="visible", timeout=15_000)
    assert page.get_by_test_id("fd-end").is_hidden()
    page.get_by_test_id("fd-csat-skip").click()
    assert card.is_hidden()
    page.reload()
    _bubbles(page, "bot").first.wait_for(timeout=15_000)
    page.wait_for_timeout(800)
    assert card.is_hidden()
