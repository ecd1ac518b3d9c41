"""The chat widget in a real browser (Debian's Chromium driven by Playwright) against a real
server on a loopback port."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.conftest import SHOTS, needs_chromium, playwright

pytestmark = [pytest.mark.e2e, needs_chromium]


def _bubbles(page: playwright.Page, role: str) -> playwright.Locator:
    return page.locator(f'[data-testid="fd-message"][data-role="{role}"]')


def test_that_a_customer_gets_a_cited_answer_and_keeps_it_after_a_reload(
    page: playwright.Page,
) -> None:
    page.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    page.locator('[data-testid="fd-input"]').fill("How long do refunds take?")
    page.locator('[data-testid="fd-send"]').click()
    bot = _bubbles(page, "bot").first
    bot.wait_for(timeout=15_000)
    assert "business days" in bot.inner_text()
    assert page.locator('[data-testid="fd-citation"]').first.inner_text().endswith("Refunds")
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "widget.png"))
    page.reload()
    _bubbles(page, "bot").first.wait_for(timeout=15_000)
    page.wait_for_timeout(500)
    assert _bubbles(page, "customer").count() == 1
    assert _bubbles(page, "bot").count() == 1
    seqs = page.locator('[data-testid="fd-message"]').evaluate_all(
        "nodes => nodes.map(n => n.dataset.seq)"
    )
    assert seqs == ["1", "2"]


def test_that_asking_for_a_person_shows_the_handoff(page: playwright.Page) -> None:
    page.locator('[data-testid="fd-input"]').fill("can I talk to a person?")
    page.keyboard.press("Enter")
    bot = _bubbles(page, "bot").first
    bot.wait_for(timeout=15_000)
    assert "person" in bot.inner_text()


def test_that_an_oversized_message_shows_an_error_and_keeps_the_text(
    page: playwright.Page,
) -> None:
    box = page.locator('[data-testid="fd-input"]')
    box.evaluate("(el) => { el.removeAttribute('maxlength'); }")
    box.fill("x" * 4100)
    page.locator('[data-testid="fd-send"]').click()
    error = page.locator('[data-testid="fd-error"]')
    error.wait_for(state="visible", timeout=10_000)
    assert error.inner_text().strip()
    assert len(box.input_value()) == 4100
    assert _bubbles(page, "customer").count() == 0


def _send(page: playwright.Page, text: str) -> str:
    """Type a message, send it, and return the bot's reply to it."""
    before = _bubbles(page, "bot").count()
    page.locator('[data-testid="fd-input"]').fill(text)
    page.keyboard.press("Enter")
    reply = _bubbles(page, "bot").nth(before)
    reply.wait_for(timeout=15_000)
    text_: str = reply.inner_text()
    return text_


def test_that_a_customer_verifies_checks_an_order_and_books_a_return(
    page: playwright.Page,
) -> None:
    page.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    assert "email address" in _send(page, "Where is my order?")
    listing = _send(page, "raj.sanchez2046@example.com")
    assert "found your account" in listing and "#W1067251: delivered" in listing
    assert "Order #W1067251 is delivered." in _send(page, "the first one")
    assert "Where should the refund" in _send(page, "I want to return the grill from it")
    confirm = _send(page, "back to the original payment method")
    assert "Grill" in confirm and "Shall I go ahead?" in confirm
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "flow-return.png"))
    assert "your return is booked" in _send(page, "yes")


def test_that_a_shopper_gets_a_recommendation_and_a_follow_up(page: playwright.Page) -> None:
    found = _send(page, "can you recommend a waterproof hiking boot under $250?")
    assert "Hiking Boots" in found
    assert "size 9" in _send(page, "and in size 9?")
