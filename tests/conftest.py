"""Fixtures: a fresh database per test (SQLite file or PostgreSQL database), the real
sentence encoder shared by all tests, and an API client over the ASGI app."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from frontdesk.actions.accounts import do_add_user
from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
from frontdesk.api.app import create_app
from frontdesk.config import Settings
from frontdesk.core.ports import Embedder, Vector
from frontdesk.demo import demo_store_dir
from frontdesk.service import Frontdesk

POSTGRES_URL = os.environ.get("FRONTDESK_TEST_POSTGRES_URL")
DEMO = demo_store_dir()


class SharedEmbedder(Embedder):
    """The real ONNX encoder, shared across tests; remembers vectors of texts it has seen so
    that each test database does not embed the same help centre again. Counts real work."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.dimension = inner.dimension
        self.name = inner.name
        self.memo: dict[str, Vector] = {}
        self.embedded_texts = 0

    def embed(self, texts: Sequence[str]) -> Vector:
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if missing:
            self.embedded_texts += len(missing)
            for t, v in zip(missing, self.inner.embed(missing), strict=True):
                self.memo[t] = v
        return np.vstack([self.memo[t] for t in texts]) if texts else self.inner.embed([])

    async def embed_one(self, text: str) -> Vector:
        if text in self.memo:
            return self.memo[text]
        vector = await self.inner.embed_one(text)
        self.memo[text] = vector
        return vector


@pytest.fixture(scope="session")
def shared_embedder() -> Iterator[SharedEmbedder]:
    inner = OnnxEmbedder(threads=2)
    yield SharedEmbedder(inner)
    inner.close()


def _backends() -> list[Any]:
    reason = "PostgreSQL not configured: set FRONTDESK_TEST_POSTGRES_URL (make test does)"
    return [
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgres",
            id="postgres",
            marks=[pytest.mark.postgres, pytest.mark.skipif(not POSTGRES_URL, reason=reason)],
        ),
    ]


async def _prepare(settings: Settings, embedder: Embedder, ingest: bool) -> None:
    fd = Frontdesk(settings, embedder=embedder)
    await fd.start(load_knowledge=False)
    try:
        if ingest:
            await fd.ingest(DEMO / "knowledge")
    finally:
        await fd.close()


@pytest.fixture(scope="session")
def sqlite_template(
    tmp_path_factory: pytest.TempPathFactory, shared_embedder: SharedEmbedder
) -> Path:
    """A migrated SQLite database with the demo help centre ingested, copied by each test
    (with the key file next to it: ``copy_template``)."""
    folder = tmp_path_factory.mktemp("template")
    settings = Settings(data_dir=folder, company_dir=DEMO, secret_key="test-secret")
    asyncio.run(_prepare(settings, shared_embedder, ingest=True))
    return folder / "frontdesk.db"


def copy_template(template: Path, data_dir: Path) -> Path:
    """A copy of the SQLite template, with the key file its values are sealed with, in
    ``data_dir``. Returns the database's path."""
    copy_keys(template.parent, data_dir)
    shutil.copy(template, data_dir / "frontdesk.db")
    return data_dir / "frontdesk.db"


def copy_keys(source: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "keys.json", data_dir / "keys.json")


async def _pg_admin(sql: str) -> None:
    assert POSTGRES_URL
    engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


def _pg_url(database: str) -> str:
    assert POSTGRES_URL
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template(
    shared_embedder: SharedEmbedder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """The folder holding the template database's key file, named as the database."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured")
    name = f"fd_template_{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("pg-template") / name
    folder.mkdir()
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    settings = Settings(
        data_dir=folder,
        database_url=_pg_url(name),
        company_dir=DEMO,
        secret_key="test-secret",
    )
    asyncio.run(_prepare(settings, shared_embedder, ingest=True))
    yield folder
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=_backends())
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with the demo knowledge already ingested."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = copy_template(template, tmp_path / "data")
        yield f"sqlite+aiosqlite:///{target}"
        return
    folder: Path = request.getfixturevalue("postgres_template")
    copy_keys(folder, tmp_path / "data")
    template_name = folder.name
    name = f"fd_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    yield _pg_url(name)
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        company_dir=DEMO,
        secret_key="test-secret",
    )


@pytest.fixture
async def frontdesk(
    settings: Settings, shared_embedder: SharedEmbedder
) -> AsyncIterator[Frontdesk]:
    fd = Frontdesk(settings, embedder=shared_embedder)
    await fd.start()
    yield fd
    await fd.close()


@pytest.fixture
async def client(frontdesk: Frontdesk) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(frontdesk=frontdesk)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk.test") as c:
        yield c


async def open_conversation(client: httpx.AsyncClient) -> str:
    response = await client.post("/api/conversations", json={"channel": "web"})
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def say(
    client: httpx.AsyncClient, conversation_id: str, text: str, client_message_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if client_message_id is not None:
        body["client_message_id"] = client_message_id
    response = await client.post(f"/api/conversations/{conversation_id}/messages", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="session")
def demo_intents(tmp_path_factory: pytest.TempPathFactory, shared_embedder: SharedEmbedder) -> Path:
    """A model registry holding the demo store's intent model, trained once per run."""
    from frontdesk.demo import DEMO_INTENTS
    from frontdesk.learning.datasets import load_labelled
    from frontdesk.learning.registry import ModelRegistry
    from frontdesk.learning.workflow import train_intents

    root = tmp_path_factory.mktemp("registry") / "models"
    data = load_labelled(DEMO / "intents" / "train.csv")
    train_intents(ModelRegistry(root), shared_embedder, data, DEMO_INTENTS)
    return root


@pytest.fixture
async def smart_client(
    settings: Settings, shared_embedder: SharedEmbedder, demo_intents: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """An API client whose service also runs the demo store's intent model."""
    from frontdesk.demo import DEMO_INTENTS

    shutil.copytree(demo_intents, settings.data_dir / "models")
    smart = settings.model_copy(update={"intent_model": DEMO_INTENTS})
    fd = Frontdesk(smart, embedder=shared_embedder)
    await fd.start()
    transport = httpx.ASGITransport(app=create_app(frontdesk=fd))
    async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk.test") as c:
        yield c
    await fd.close()


# --- console users and clients (used by the console, analytics and insights tests) -----------

PASSWORD = "correct horse battery"

Login = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def app(frontdesk: Frontdesk) -> FastAPI:
    # Open around the clock, so that these tests do not depend on the day they run.
    always = {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    hours = frontdesk.guidelines.working_hours.model_copy(update={"days": always})
    frontdesk.guidelines = frontdesk.guidelines.model_copy(update={"working_hours": hours})
    for email, role in (
        ("ann@example.com", "agent"),
        ("bob@example.com", "agent"),
        ("rita@example.com", "reviewer"),
        ("ada@example.com", "admin"),
    ):
        await do_add_user(frontdesk, email, email.split("@")[0].title(), role, PASSWORD)
    return create_app(frontdesk=frontdesk)


@pytest.fixture
async def login(app: FastAPI) -> AsyncIterator[Login]:
    """A logged-in client per user (its own cookie jar), with the CSRF header set."""
    opened: list[httpx.AsyncClient] = []

    async def make(email: str) -> httpx.AsyncClient:
        c = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://frontdesk.test"
        )
        opened.append(c)
        response = await c.post("/api/console/login", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        c.headers["X-CSRF-Token"] = response.json()["csrf"]
        return c

    yield make
    for c in opened:
        await c.aclose()


@pytest.fixture
async def customer(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://frontdesk.test"
    ) as c:
        yield c


ServiceCli = Callable[..., Awaitable[Any]]


@pytest.fixture
def service_cli(
    frontdesk: Frontdesk, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> ServiceCli:
    """``await service_cli("export", "messages", ...)``: the command line, run in a thread,
    on the test's database, data folder and the demo company (its typer Result)."""
    from typer.testing import CliRunner

    from frontdesk.cli import app as cli_app

    monkeypatch.setenv("FRONTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("FRONTDESK_SECRET_KEY", "test-secret")
    monkeypatch.setenv("FRONTDESK_ANALYTICS_ROLLUP_SECONDS", "0")
    where = ["--data-dir", str(frontdesk.settings.data_dir), "--company", str(DEMO)]
    runner = CliRunner()

    async def cli(*args: str) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, [*args, *where])

    return cli
