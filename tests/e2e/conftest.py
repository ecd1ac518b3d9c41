"""Browser fixtures: a real server on a loopback port with the demo store, and Debian's
Chromium driven by Playwright. Pages fail their test if they reach outside the service."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import uvicorn
from tests.conftest import DEMO, SharedEmbedder, copy_template

from frontdesk.api.app import create_app
from frontdesk.config import Settings
from frontdesk.service import Frontdesk

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
# Each browser test module sets pytestmark = [pytest.mark.e2e, needs_chromium].
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)"
)
SHOTS = os.environ.get("FRONTDESK_SCREENSHOTS")


AGENT = ("ann@example.com", "correct horse battery")
ADMIN = ("ada@example.com", "correct horse battery")


async def _accounts(fd: Frontdesk) -> None:
    """The console accounts the browser tests log in with."""
    from frontdesk.actions.accounts import do_add_user

    await fd.start(load_knowledge=False)
    try:
        await do_add_user(fd, AGENT[0], "Ann", "agent", AGENT[1])
        await do_add_user(fd, ADMIN[0], "Ada", "admin", ADMIN[1])
    finally:
        await fd.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_server(
    sqlite_template: Path,
    tmp_path: Path,
    embedder: SharedEmbedder,
    seed: Callable[[Frontdesk], Awaitable[None]] | None = None,
) -> Iterator[str]:
    """A real server on a copy of the template database, with the console accounts (and
    whatever ``seed`` stores before it starts); yields its URL, stops it afterwards."""
    data = tmp_path / "data"
    copy_template(sqlite_template, data)
    # The template's store data is keyed under the tests' secret key, sealed with its key file.
    settings = Settings(data_dir=data, company_dir=DEMO, secret_key="test-secret")
    fd = Frontdesk(settings, embedder=embedder)
    asyncio.run(_accounts(fd))
    if seed is not None:
        asyncio.run(seed(fd))
    app = create_app(frontdesk=fd)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path, shared_embedder: SharedEmbedder) -> Iterator[str]:
    yield from run_server(sqlite_template, tmp_path, shared_embedder)


@pytest.fixture
def browser(server: str) -> Iterator[playwright.Browser]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


NewPage = Callable[[str], "playwright.Page"]


@pytest.fixture
def new_page(browser: playwright.Browser, server: str) -> Iterator[NewPage]:
    """Pages in separate browser contexts (separate cookies: a customer, an agent)."""
    outside: list[str] = []

    def make(path: str = "/") -> playwright.Page:
        context = browser.new_context(viewport={"width": 1100, "height": 760})
        tab = context.new_page()
        tab.on(
            "request",
            lambda request: (
                outside.append(request.url)
                if not request.url.startswith((server, "ws://127.0.0.1", "data:", "about:"))
                else None
            ),
        )
        tab.goto(server + path)
        return tab

    yield make
    assert outside == [], f"a page reached outside the service: {outside}"


@pytest.fixture
def page(new_page: NewPage) -> playwright.Page:
    return new_page("/")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: FRONTDESK_SCREENSHOTS if set, else test-artifacts/ in the
    checkout, kept after the run."""
    folder = Path(SHOTS) if SHOTS else Path(__file__).resolve().parents[2] / "test-artifacts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder
