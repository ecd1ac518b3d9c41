"""The handoff from both sides, in two browser contexts: a customer in the widget asks for a
person; an agent in the console sees the conversation appear, takes over and replies; the
customer sees the reply; the agent hands back and the bot answers again. Screenshots of both
sides are kept in test-artifacts/ (or FRONTDESK_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.conftest import ADMIN, AGENT, NewPage, needs_chromium, playwright

pytestmark = [pytest.mark.e2e, needs_chromium]


def _bubbles(page: playwright.Page, role: str) -> playwright.Locator:
    return page.locator(f'[data-testid="fd-message"][data-role="{role}"]')


def _send(page: playwright.Page, text: str) -> None:
    page.locator('[data-testid="fd-input"]').fill(text)
    page.keyboard.press("Enter")


def _login(page: playwright.Page, account: tuple[str, str] = AGENT) -> None:
    page.get_by_test_id("login-form").wait_for(state="visible")
    page.get_by_test_id("login-email").fill(account[0])
    page.get_by_test_id("login-password").fill(account[1])
    page.get_by_test_id("login-submit").click()
    page.get_by_test_id("console-user").wait_for(state="visible")


def test_that_an_agent_takes_over_replies_and_hands_back(new_page: NewPage, shots: Path) -> None:
    agent = new_page("/console")
    _login(agent)
    assert "Ann" in agent.get_by_test_id("console-user").inner_text()
    agent.get_by_test_id("queue-tab-waiting").click()
    assert agent.get_by_test_id("queue-item").count() == 0

    customer = new_page("/")
    customer.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    _send(customer, "I want to talk to a person please")
    _bubbles(customer, "bot").first.wait_for(timeout=15_000)
    customer.screenshot(path=str(shots / "handoff-customer-waiting.png"))

    item = agent.get_by_test_id("queue-item").first
    item.wait_for(timeout=15_000)  # appears live, through the console's socket
    assert item.get_attribute("data-status") == "waiting"
    item.click()
    view = agent.get_by_test_id("conv-view")
    view.wait_for(state="visible")
    summary = agent.get_by_test_id("handoff-summary")
    summary.wait_for(state="visible")
    assert "talk to a person" in summary.inner_text()
    if agent.get_by_test_id("take-over").is_visible():
        agent.get_by_test_id("take-over").click()
    agent.wait_for_function(
        "() => document.querySelector('[data-testid=conv-view]').dataset.assigned !== ''"
    )
    agent.get_by_test_id("reply-input").fill("Hi, this is Ann from the support team.")
    agent.get_by_test_id("reply-send").click()
    agent.get_by_test_id("conv-message").filter(has_text="this is Ann").wait_for()
    agent.screenshot(path=str(shots / "handoff-agent-console.png"))

    reply = _bubbles(customer, "agent").first
    reply.wait_for(timeout=15_000)  # live in the widget
    assert "this is Ann" in reply.inner_text()
    customer.screenshot(path=str(shots / "handoff-customer-reply.png"))

    agent.get_by_test_id("hand-back").click()
    agent.wait_for_function(
        "() => document.querySelector('[data-testid=conv-view]').dataset.mode === 'bot'"
    )
    _bubbles(customer, "system").last.wait_for(timeout=15_000)
    bots_before = _bubbles(customer, "bot").count()
    _send(customer, "How long do refunds take?")
    answer = _bubbles(customer, "bot").nth(bots_before)
    answer.wait_for(timeout=15_000)
    assert "business days" in answer.inner_text()
    customer.screenshot(path=str(shots / "handoff-customer-back-to-bot.png"))


def test_that_personal_data_shows_as_tokens_until_the_agent_holding_it_reveals_it(
    new_page: NewPage, shots: Path
) -> None:
    customer = new_page("/")
    customer.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    _send(customer, "I'm jo.lee@example.com and I want to talk to a person")
    _bubbles(customer, "bot").first.wait_for(timeout=15_000)
    # The customer sees what they typed; the console sees the token.
    assert "jo.lee@example.com" in _bubbles(customer, "customer").first.inner_text()
    agent = new_page("/console")
    _login(agent)
    agent.get_by_test_id("queue-tab-waiting").click()
    agent.get_by_test_id("queue-item").first.click()
    first = agent.get_by_test_id("conv-message").first
    first.wait_for()
    assert "<EMAIL_1>" in first.inner_text() and "jo.lee" not in first.inner_text()
    reveal = agent.get_by_test_id("reveal")
    assert reveal.is_disabled()  # not before taking the conversation over
    agent.get_by_test_id("take-over").click()
    agent.wait_for_function(
        "() => document.querySelector('[data-testid=conv-view]').dataset.assigned !== ''"
    )
    reveal.click()
    agent.get_by_test_id("conv-message").filter(has_text="jo.lee@example.com").wait_for()
    agent.screenshot(path=str(shots / "console-reveal.png"))


def test_that_customer_markup_shows_as_text_in_the_console(new_page: NewPage) -> None:
    customer = new_page("/")
    customer.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    _send(customer, '<img src=x onerror="window.__pwned=1"> hello <b>there</b>, I want a human')
    _bubbles(customer, "bot").first.wait_for(timeout=15_000)
    agent = new_page("/console")
    _login(agent)
    agent.get_by_test_id("queue-tab-waiting").click()
    agent.get_by_test_id("queue-item").first.click()
    first = agent.get_by_test_id("conv-message").first
    first.wait_for()
    assert '<img src=x onerror="window.__pwned=1">' in first.inner_text()
    assert agent.evaluate("() => window.__pwned") is None
    assert agent.locator("[data-testid=conv-view] img").count() == 0


def test_that_an_admin_sees_handoff_reasons_and_counts(new_page: NewPage, shots: Path) -> None:
    customer = new_page("/")
    customer.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    _send(customer, "My lawyer will sue you")
    _bubbles(customer, "bot").first.wait_for(timeout=15_000)
    admin = new_page("/console")
    _login(admin, ADMIN)
    admin.get_by_test_id("tab-stats").click()
    row = admin.locator('[data-testid="handoff-reason"][data-reason="sensitive:legal"]')
    row.wait_for(timeout=15_000)
    assert row.get_attribute("data-count") == "1"
    assert admin.get_by_test_id("stats-total").inner_text().strip() == "1"
    admin.get_by_test_id("audit-entry").first.wait_for()
    admin.screenshot(path=str(shots / "console-admin-stats.png"))
