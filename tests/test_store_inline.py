"""SQLite: the turn's transactions on the event loop's own connection (``Database.run_core``),
which never waits for SQLite's write lock and never checkpoints, and what happens when another
connection holds that lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import SharedEmbedder, open_conversation, say

from frontdesk.actions import conversations
from frontdesk.adapters import crypto
from frontdesk.adapters.store import database as database_module
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.database import Database
from frontdesk.core.types import Role
from frontdesk.service import Frontdesk


@pytest.fixture
async def db(tmp_path: Path) -> Any:
    keyring = crypto.Keyring({"k": bytes(range(32))}, "k")
    database = Database(f"sqlite:///{tmp_path / 'inline.db'}", keyring=keyring)
    await database.migrate()
    yield database
    await database.dispose()


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> threading.Thread:
    """Another process's writer, as SQLite sees it: a connection that holds the write lock."""

    def hold() -> None:
        connection = sqlite3.connect(path, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


async def test_that_a_transaction_runs_on_the_event_loop_thread(db: Database) -> None:
    threads: list[str] = []

    def work(connection: Any) -> str:
        threads.append(threading.current_thread().name)
        return repo.create_conversation(connection, "web").id

    conversation_id = await db.run_core(work)
    assert threads == [threading.current_thread().name]
    assert await db.run(lambda s: repo.get_conversation(s, conversation_id)) is not None


async def test_that_a_held_write_lock_sends_the_transaction_to_the_database_thread(
    db: Database, tmp_path: Path
) -> None:
    """The event loop's connection gives up at once (busy_timeout=0); the transaction runs
    again on the database's thread, which waits for the lock while the loop serves others."""
    conversation = await db.run_core(lambda c: repo.create_conversation(c, "web"))
    taken = threading.Event()
    holder = _hold_write_lock(tmp_path / "inline.db", 0.6, taken)
    assert await asyncio.to_thread(taken.wait, 5)
    threads: list[str] = []

    def work(connection: Any) -> int:
        threads.append(threading.current_thread().name)
        return repo.append_message(connection, conversation.id, Role.CUSTOMER, "hello").seq

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    seq = await db.run_core(work)
    waited = time.monotonic() - started
    ticker.cancel()
    holder.join()
    assert seq == 1
    assert threads[0] == threading.current_thread().name  # tried here first,
    assert threads[1].startswith("sqlite")  # then on the database's thread
    assert waited >= 0.3  # it waited for the other writer ...
    assert ticks >= 15  # ... while the event loop went on
    messages = await db.run(lambda s: repo.messages_after(s, conversation.id))
    assert [(m.seq, m.text) for m in messages] == [(1, "hello")]  # stored once


async def test_that_an_error_other_than_the_lock_is_raised_not_retried(db: Database) -> None:
    calls: list[str] = []

    def work(connection: Any) -> None:
        calls.append(threading.current_thread().name)
        connection.exec_driver_sql("SELECT * FROM no_such_table")

    with pytest.raises(Exception, match="no_such_table"):
        await db.run_core(work)
    assert len(calls) == 1


async def test_that_the_write_ahead_log_is_checkpointed_on_the_database_thread(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "CHECKPOINT_EVERY", 20)
    wal = tmp_path / "inline.db-wal"
    conversation = await db.run_core(lambda c: repo.create_conversation(c, "web"))
    for number in range(19):  # 20 commits with the conversation
        await db.run_core(
            lambda c, n=number: repo.append_message(c, conversation.id, Role.CUSTOMER, f"m{n}")
        )
    assert db._checkpoint is not None
    await db._checkpoint
    # Every page of the log is in the database file now: a reader of the file alone (no
    # log) sees all 19 messages.
    copy = tmp_path / "copy.db"
    copy.write_bytes((tmp_path / "inline.db").read_bytes())
    with sqlite3.connect(copy) as connection:
        count = connection.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation.id,)
        ).fetchone()[0]
    assert count == 19
    assert wal.exists()  # PASSIVE: the log file stays, to be reused from its start


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # SQLite's write lock
async def test_that_turns_go_on_while_another_writer_holds_the_lock(
    frontdesk: Frontdesk, client: httpx.AsyncClient
) -> None:
    conversation = await open_conversation(client)
    path = frontdesk.db.url.database
    assert path is not None
    taken = threading.Event()
    holder = _hold_write_lock(Path(path), 0.5, taken)
    assert await asyncio.to_thread(taken.wait, 5)
    health, reply = await asyncio.gather(
        client.get("/health"), say(client, conversation, "How long do refunds take?")
    )
    holder.join()
    assert health.status_code == 200
    assert reply["replies"] and reply["replies"][0]["text"]


async def test_that_the_question_is_embedded_while_the_message_is_stored(
    frontdesk: Frontdesk, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The encoder's thread has the question before the turn's first transaction starts on
    the loop's thread: the two run side by side, not one after the other."""
    shared: SharedEmbedder = frontdesk.embedder  # type: ignore[assignment]  # the tests' own
    encoder = shared.inner
    question = "Do the wool hiking socks shrink in a hot wash?"
    shared.memo.pop(question, None)  # embedded for real in each backend's run
    encoder._cache.clear()
    started = threading.Event()
    embed = encoder.embed

    def watched(texts: Any) -> Any:
        started.set()
        return embed(texts)

    monkeypatch.setattr(encoder, "embed", watched)
    receive = conversations._receive
    waited: list[bool] = []

    def store(*args: Any) -> Any:
        # Blocks the loop's thread: the encoder can start now only if it was handed the
        # question before this transaction began.
        waited.append(started.wait(5))
        return receive(*args)

    monkeypatch.setattr(conversations, "_receive", store)
    conversation = await open_conversation(client)
    waited.clear()  # opening the conversation sent no customer message, but be sure
    started.clear()
    reply = await say(client, conversation, question)
    assert waited == [True]
    assert reply["replies"]
