"""The handoff from both sides, in two browser contexts: a customer in the widget asks for a
person; an agent in the console sees the conversation appear, takes over and replies; the
customer sees the reply; the agent hands back and the bot answers again. Next to a bot reply,
the console shows the guard checks that changed it and the model that wrote it. Screenshots of
both sides are kept in test-artifacts/ (or FRONTDESK_SCREENSHOTS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session
from tests.conftest import SharedEmbedder
from tests.e2e.conftest import ADMIN, AGENT, NewPage, needs_chromium, playwright, run_server

from frontdesk.adapters.store import repository as repo
from frontdesk.core.types import Mode, Role
from frontdesk.service import Frontdesk

pytestmark = [pytest.mark.e2e, needs_chromium]

# A conversation with a person (open, not waiting: the other tests expect an empty waiting
# queue) whose bot replies a model wrote: one fully, one after the model failed (the
# extractive answer went out, and the guard changed it).
WROTE = {"backend": "openai", "model": "gpt-4o-mini", "prompt_tokens": 812, "completion_tokens": 64}
FELL_BACK = {**WROTE, "completion_tokens": 0, "fallback": "timeout"}


class Running:
    """The service behind the browser, as the test thread reaches it."""

    fd: Frontdesk | None = None

    async def seed(self, fd: Frontdesk) -> None:
        self.fd = fd
        await fd.start(load_knowledge=False)
        try:
            await fd.db.run(self._model_conversation)
        finally:
            await fd.close()

    @staticmethod
    def _model_conversation(session: Session) -> None:
        cid = repo.create_conversation(session, "web").id
        asked = repo.append_message(session, cid, Role.CUSTOMER, "Do you ship to Canada?")
        repo.append_message(
            session,
            cid,
            Role.BOT,
            "Yes, we ship to Canada.",
            reply_to=asked.id,
            meta={"model": WROTE},
        )
        again = repo.append_message(session, cid, Role.CUSTOMER, "and to Mexico, model test?")
        repo.append_message(
            session,
            cid,
            Role.BOT,
            "Sorry, I'm not sure.",
            reply_to=again.id,
            meta={"model": FELL_BACK, "interventions": ["grounding"]},
        )
        repo.update_conversation(session, cid, mode=Mode.HUMAN.value)


@pytest.fixture
def running() -> Running:
    return Running()


@pytest.fixture
def server(
    sqlite_template: Path, tmp_path: Path, shared_embedder: SharedEmbedder, running: Running
) -> Iterator[str]:
    yield from run_server(sqlite_template, tmp_path, shared_embedder, running.seed)


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


def _open(agent: playwright.Page, tab: str, preview: str) -> playwright.Locator:
    _login(agent)
    agent.get_by_test_id(f"queue-tab-{tab}").click()
    agent.get_by_test_id("queue-item").filter(has_text=preview).click()
    view = agent.get_by_test_id("conv-view")
    view.wait_for(state="visible")
    return view


def test_that_the_console_shows_the_guard_check_that_changed_a_reply(
    new_page: NewPage, server: str, running: Running, shots: Path
) -> None:
    fd = running.fd
    assert fd is not None
    # "business days" is in the Refunds answer: as a forbidden phrase, the tone check fires.
    phrases = (*fd.guidelines.forbidden_phrases, "business days")
    fd.guidelines = fd.guidelines.model_copy(update={"forbidden_phrases": phrases})
    with httpx.Client(base_url=server, timeout=60) as client:
        cid = client.post("/api/conversations", json={"channel": "web"}).json()["id"]
        for text in ("How long do refunds take?", "can I talk to a person?"):
            sent = client.post(f"/api/conversations/{cid}/messages", json={"text": text})
            assert sent.status_code == 200, sent.text
        assert sent.json()["handoff"] is True

    agent = new_page("/console")
    view = _open(agent, "waiting", "talk to a person")
    badge = view.get_by_test_id("guard-badge")
    playwright.expect(badge).to_have_count(1)  # the handoff reply was not changed
    playwright.expect(badge).to_be_visible()
    playwright.expect(badge).to_contain_text("guard: tone")
    playwright.expect(badge).to_have_attribute(
        "title", "A phrase the guidelines forbid was replaced."
    )
    changed = view.locator("li.msg.bot").filter(has=agent.get_by_test_id("guard-badge"))
    playwright.expect(changed.get_by_test_id("conv-message")).to_have_attribute("data-seq", "2")
    assert view.get_by_test_id("model-badge").count() == 0  # the built-in responder wrote it
    agent.screenshot(path=str(shots / "console-guard.png"))


def test_that_the_console_names_the_model_of_a_reply_and_when_it_fell_back(
    new_page: NewPage, shots: Path
) -> None:
    agent = new_page("/console")
    view = _open(agent, "all", "model test")
    models = view.get_by_test_id("model-badge")
    playwright.expect(models).to_have_count(2)
    playwright.expect(models.first).to_have_text("model: gpt-4o-mini")
    title = models.first.get_attribute("title") or ""
    assert "gpt-4o-mini (openai)" in title and "812 prompt + 64 completion tokens" in title
    fell_back = models.nth(1)
    playwright.expect(fell_back).to_be_visible()
    playwright.expect(fell_back).to_contain_text("model unavailable: extractive answer")
    playwright.expect(fell_back).to_have_attribute("data-fallback", "timeout")
    assert "timeout" in (fell_back.get_attribute("title") or "")
    guard = view.get_by_test_id("guard-badge")
    playwright.expect(guard).to_have_count(1)
    playwright.expect(guard).to_contain_text("guard: grounding")
    assert "knowledge base" in (guard.get_attribute("title") or "")
    # Both sit with the second reply.
    second = agent.locator("li.msg.bot").nth(1)
    playwright.expect(second.get_by_test_id("guard-badge")).to_have_count(1)
    playwright.expect(second.get_by_test_id("model-badge")).to_have_attribute(
        "data-fallback", "timeout"
    )
    second.scroll_into_view_if_needed()
    agent.screenshot(path=str(shots / "console-model.png"))
