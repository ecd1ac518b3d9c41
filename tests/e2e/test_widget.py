"""The chat widget in a real browser (Debian's Chromium driven by Playwright) against a real
server on a loopback port."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import SharedEmbedder
from tests.e2e.conftest import SHOTS, needs_chromium, playwright, run_server

from frontdesk.core.ports import Vector
from frontdesk.core.types import ConversationId
from frontdesk.service import Frontdesk

pytestmark = [pytest.mark.e2e, needs_chromium]


class HeldEmbedder(SharedEmbedder):
    """The shared encoder, able to hold the next query it embeds until the test lets it go:
    the customer's message is stored and shown, and the bot's reply waits (while the test
    streams drafts of it). Also learns the server's event loop, to publish onto its bus."""

    def __init__(self, shared: SharedEmbedder) -> None:
        super().__init__(shared.inner)
        self.memo = shared.memo
        self.loop: asyncio.AbstractEventLoop | None = None
        self.armed = False
        self.holding = threading.Event()
        self.release = threading.Event()

    def hold_next(self) -> None:
        self.armed, self.holding, self.release = True, threading.Event(), threading.Event()

    async def embed_one(self, text: str) -> Vector:
        self.loop = asyncio.get_running_loop()
        if self.armed:
            self.armed = False
            self.holding.set()
            await asyncio.to_thread(self.release.wait, 30)
        return await super().embed_one(text)


class Live:
    """The running service as a test reaches it from its own thread."""

    def __init__(self, embedder: HeldEmbedder) -> None:
        self.embedder = embedder
        self.fd: Frontdesk | None = None
        self.url = ""

    async def capture(self, fd: Frontdesk) -> None:
        self.fd = fd

    def publish(self, conversation_id: str, event: dict[str, Any]) -> None:
        """``fd.bus.publish`` on the server's event loop, waiting until it is done."""
        assert self.fd is not None and self.embedder.loop is not None
        done = asyncio.run_coroutine_threadsafe(
            self.fd.bus.publish(ConversationId(conversation_id), event), self.embedder.loop
        )
        done.result(timeout=10)


@pytest.fixture
def live(shared_embedder: SharedEmbedder) -> Live:
    return Live(HeldEmbedder(shared_embedder))


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path, live: Live) -> Iterator[str]:
    for url in run_server(sqlite_template, tmp_path, live.embedder, live.capture):
        live.url = url
        yield url
        live.embedder.release.set()  # a failed test leaves no reply waiting at shutdown


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


# --- a reply streamed while a model writes it --------------------------------------------------


def _ask_and_hold(page: playwright.Page, live: Live, text: str) -> tuple[str, str]:
    """Send ``text`` with the bot's reply held back; returns the conversation's id and the id
    of the stored customer message (what the drafts reply to)."""
    page.locator('[data-testid="fd-panel"]').wait_for(state="visible")
    live.embedder.hold_next()
    page.locator('[data-testid="fd-input"]').fill(text)
    page.keyboard.press("Enter")
    playwright.expect(_bubbles(page, "customer")).to_have_attribute("data-seq", "1")
    assert live.embedder.holding.wait(15), "the reply was not held"
    cid = page.evaluate("() => window.FrontdeskWidget.conversationId()")
    stored = httpx.get(f"{live.url}/api/conversations/{cid}", timeout=10).json()["messages"]
    assert [m["role"] for m in stored] == ["customer"]
    return cid, stored[0]["id"]


def _row_index(page: playwright.Page, selector: str) -> int:
    """The position, among the chat's rows, of the row holding ``selector``."""
    index: int = page.evaluate(
        """(sel) => {
          const root = document.getElementById('frontdesk-widget').shadowRoot;
          const row = root.querySelector(sel).closest('.row');
          return Array.from(row.parentNode.children).indexOf(row);
        }""",
        selector,
    )
    return index


def test_that_a_streamed_reply_grows_piece_by_piece_and_the_stored_reply_replaces_it(
    page: playwright.Page, live: Live
) -> None:
    cid, asked = _ask_and_hold(page, live, "How long do refunds take?")
    expect = playwright.expect
    draft = page.locator('[data-testid="fd-draft"]')

    def piece(index: int, text: str) -> None:
        live.publish(cid, {"type": "draft", "reply_to": asked, "index": index, "text": text})

    piece(0, "Let me check ")
    expect(draft).to_have_text("Let me check ")
    expect(draft).to_have_attribute("aria-busy", "true")
    expect(draft).to_have_attribute("data-role", "bot")
    expect(page.locator('[data-testid="fd-typing"]')).to_be_hidden()  # the draft replaces it
    piece(2, "policy <img src=x onerror=window.__pwned=1>")  # early: waits for index 1
    piece(0, "Let me check ")  # repeated: ignored
    expect(draft).to_have_text("Let me check ")
    piece(1, "our refund ")
    expect(draft).to_have_text(
        "Let me check our refund policy <img src=x onerror=window.__pwned=1>"
    )
    piece(1, "again ")  # repeated: ignored
    piece(3, "…")
    expect(draft).to_have_text(
        "Let me check our refund policy <img src=x onerror=window.__pwned=1>…"
    )
    assert page.locator("#frontdesk-widget img").count() == 0  # text, never markup
    assert page.evaluate("() => window.__pwned") is None
    assert _bubbles(page, "bot").count() == 0
    drafted_at = _row_index(page, '[data-testid="fd-draft"]')
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "widget-draft.png"))

    live.embedder.release.set()  # the pipeline stores its own (different) reply
    expect(draft).to_have_count(0)
    expect(_bubbles(page, "bot")).to_have_count(1)
    bot = _bubbles(page, "bot").first
    expect(bot).to_contain_text("business days")
    expect(bot).not_to_contain_text("Let me check")
    expect(bot).to_have_attribute("data-seq", "2")
    assert page.locator('[data-testid="fd-citation"]').first.inner_text().endswith("Refunds")
    assert _row_index(page, '[data-testid="fd-message"][data-seq="2"]') == drafted_at

    # A piece arriving after the reply opens nothing.
    live.publish(cid, {"type": "draft", "reply_to": asked, "index": 4, "text": " late"})
    live.publish(cid, {"type": "draft", "reply_to": "unrelated", "index": 0, "text": "x"})
    expect(draft).to_have_count(1)  # (the unrelated one: proves the late frame was handled)
    assert "late" not in page.locator('[data-testid="fd-draft"]').inner_text()
    assert _bubbles(page, "bot").count() == 1


def test_that_a_draft_open_when_the_socket_drops_goes_and_the_reply_comes_on_resume(
    page: playwright.Page, live: Live
) -> None:
    # Keep a handle on the widget's sockets, to drop the connection from the page.
    page.add_init_script(
        """(() => {
          const Native = window.WebSocket;
          window.__fdSockets = [];
          window.WebSocket = class extends Native {
            constructor(...args) { super(...args); window.__fdSockets.push(this); }
          };
        })();"""
    )
    page.reload()
    cid, asked = _ask_and_hold(page, live, "How long do refunds take?")
    expect = playwright.expect
    draft = page.locator('[data-testid="fd-draft"]')
    live.publish(cid, {"type": "draft", "reply_to": asked, "index": 0, "text": "Refunds are "})
    expect(draft).to_have_text("Refunds are ")

    page.evaluate("() => window.__fdSockets.at(-1).close()")
    expect(draft).to_have_count(0)
    expect(page.locator('[data-testid="fd-typing"]')).to_be_visible()
    page.wait_for_function("() => window.__fdSockets.length === 2")  # reconnecting

    live.embedder.release.set()
    expect(_bubbles(page, "bot")).to_have_count(1, timeout=15_000)
    expect(_bubbles(page, "bot").first).to_contain_text("business days")
    expect(draft).to_have_count(0)
    seqs = page.locator('[data-testid="fd-message"]').evaluate_all(
        "nodes => nodes.map(n => n.dataset.seq)"
    )
    assert seqs == ["1", "2"]
