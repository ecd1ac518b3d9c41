"""Encryption at rest: the keyring, sealed columns, and `frontdesk keys` on a live database."""

from __future__ import annotations

import asyncio
import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import column, select, table, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session
from tests.conftest import DEMO, SharedEmbedder, copy_template, open_conversation, say
from typer.testing import CliRunner

from frontdesk.actions.keys import KeysError, key_uses, retire, rotate
from frontdesk.adapters import crypto
from frontdesk.adapters.crypto import KeyringError, SealError
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store import sealed
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.adapters.store.database import Database
from frontdesk.adapters.store.tables import HandoffRow, PseudonymRow, ShopCustomerRow, UTCDateTime
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.core.types import Role
from frontdesk.service import Frontdesk

SAID = [
    "Tell me about your return window please, zebra quartz",
    "My email is jane.doe@example.com and card 4111 1111 1111 1111, marmalade velvet",
    "I want to talk to a human about the lighthouse parcel",
]
MARKERS = ("zebra quartz", "marmalade velvet", "lighthouse", "jane.doe", "4111 1111", "41111111")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


# --- the keyring ------------------------------------------------------------------------------


def test_that_a_keyring_seals_under_its_active_key_and_opens_under_any() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = crypto.Keyring({"old": old}, "old")
    sealed_old = before.seal("ann@example.com", "vault")
    ring = crypto.Keyring({"new": new, "old": old}, "new")
    assert ring.key_id == "new" and ring.ids == ("new", "old")
    sealed_new = ring.seal("ann@example.com", "vault")
    assert sealed_new.startswith("new:") and sealed_old.startswith("old:")
    assert ring.open(sealed_old, "vault") == ring.open(sealed_new, "vault") == "ann@example.com"
    assert ring.open_json(ring.seal_json({"a": [1, "é"]}, "x"), "x") == {"a": [1, "é"]}
    with pytest.raises(SealError, match="'new', which this service does not hold"):
        before.open(sealed_new, "vault")
    with pytest.raises(SealError, match="not sealed"):
        ring.open("hello, this is plain text", "vault")
    with pytest.raises(SealError, match="does not open"):
        ring.open(sealed_new, "messages.text")
    with pytest.raises(KeyringError, match="bytes"):
        crypto.Keyring({"short": b"x" * 16}, "short")


def test_that_the_key_list_from_the_environment_is_read_and_checked() -> None:
    first, second = _key(), _key()
    ring = crypto.load_keyring(b"secret", Path("/nonexistent/keys.json"), f"a:{first}, b:{second}")
    legacy = crypto.key_id_of(crypto.derive_key(b"secret"))
    assert ring.key_id == "a" and ring.ids == ("a", "b", legacy)
    assert ring.from_environment and ring.key_file is None
    for bad, problem in (
        ("a", "not 'id:base64key'"),
        (f"a:{first},a:{second}", "listed twice"),
        ("a:bm90IGEga2V5", "bytes"),
        ("a:***", "not base64"),
        (" , ", "lists no key"),
        (f"bad_id:{first}", "not 'id:base64key'"),
    ):
        with pytest.raises(KeyringError, match=problem):
            crypto.parse_key_list(bad)


def test_that_the_key_file_is_created_private_and_read_again_when_it_changes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "keys.json"
    ring = crypto.load_keyring(b"secret", path)
    assert path.stat().st_mode & 0o777 == 0o600
    data = json.loads(path.read_text())
    assert list(data["keys"]) == [ring.key_id] and data["active"] == ring.key_id
    legacy = crypto.Sealer(b"secret")
    assert ring.ids == (ring.key_id, legacy.key_id)  # the legacy key opens, never seals
    assert ring.open(legacy.seal("old", "l"), "l") == "old"
    first = ring.key_id
    value = ring.seal("before", "l")

    other = crypto.load_keyring(b"secret", path)  # another process (the keys command)
    added = crypto.add_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    other.refresh(force=True)
    assert other.key_id == added
    # The first process opens a value under the new key at once, and seals under it after
    # its next look at the file.
    assert ring.open(other.seal("after", "l"), "l") == "after"
    assert ring.key_id == added and ring.open(value, "l") == "before"

    with pytest.raises(KeyringError, match="active key"):
        crypto.remove_key(path, added, legacy.key_id)
    crypto.remove_key(path, first, legacy.key_id)
    crypto.remove_key(path, legacy.key_id, legacy.key_id)
    ring.refresh(force=True)
    assert ring.ids == (added,)
    with pytest.raises(SealError, match="does not hold"):
        ring.open(value, "l")
    path.write_text("{not json")
    with pytest.raises(KeyringError, match="not JSON"):
        crypto.load_keyring(b"secret", path)


# --- a populated database ---------------------------------------------------------------------


async def _populate(client: httpx.AsyncClient) -> list[str]:
    ids = []
    for said in SAID:
        cid = await open_conversation(client)
        await say(client, cid, said)
        ids.append(cid)
    return ids


async def _raw_values(fd: Frontdesk) -> dict[str, list[str]]:
    def read(session: Session) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for c in sealed.sealed_columns():
            rows = sealed.read_batch(session, c, None, 100_000)
            found[c.name] = [raw for _, raw in rows]
        return found

    return dict(await fd.db.run(read))


async def _everything(fd: Frontdesk, client: httpx.AsyncClient, ids: list[str]) -> dict[str, Any]:
    """What the service reads back of each conversation (as shown to its customer, as
    stored, its vault, its handoff summaries, its state) and a store customer's profile."""
    found: dict[str, Any] = {}
    for cid in ids:
        shown = (await client.get(f"/api/conversations/{cid}")).json()["messages"]

        def read(session: Session, cid: str = cid) -> dict[str, Any]:
            vault = session.execute(
                select(PseudonymRow.sealed)
                .where(PseudonymRow.conversation_id == cid, PseudonymRow.sealed.is_not(None))
                .order_by(PseudonymRow.kind, PseudonymRow.number)
            ).scalars()
            summaries = session.execute(
                select(HandoffRow.summary)
                .where(HandoffRow.conversation_id == cid)
                .order_by(HandoffRow.id)
            ).scalars()
            conversation = repo.get_conversation(session, cid)
            assert conversation is not None
            return {
                "stored": [m.text for m in repo.messages_after(session, cid, 0)],
                "vault": [fd.sealer.open(v, "vault") for v in vault],
                "summaries": list(summaries),
                "state": conversation.state,
            }

        found[cid] = {"shown": shown, **await fd.db.run(read)}

    def profile(session: Session) -> Any:
        customer = session.execute(
            select(ShopCustomerRow.id).order_by(ShopCustomerRow.id).limit(1)
        ).scalar_one()
        return shop_repo.profile(session, fd.sealer, customer)

    found["profile"] = await fd.db.run(profile)
    return found


async def test_that_the_database_holds_no_message_text(
    client: httpx.AsyncClient, frontdesk: Frontdesk, backend: str
) -> None:
    await _populate(client)
    raw = await _raw_values(frontdesk)
    assert len(raw["messages.text"]) >= 6 and raw["handoffs.summary"]
    for name, values in raw.items():
        for value in values:
            assert frontdesk.sealer.key_of(value.strip('"')) == frontdesk.sealer.key_id, name

    def dump(session: Session) -> str:
        names = [t for (t,) in session.execute(text(_TABLES[backend])).all()]
        return "\n".join(repr(session.execute(text(f'SELECT * FROM "{t}"')).all()) for t in names)

    everything = await frontdesk.db.run(dump)
    if backend == "sqlite":
        path = Path(frontdesk.settings.resolved_database_url.split("///", 1)[1])
        everything += repr(path.read_bytes())
        wal = path.with_name(path.name + "-wal")
        everything += repr(wal.read_bytes()) if wal.exists() else ""
    for marker in MARKERS:
        assert marker not in everything


_TABLES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
    "postgres": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'",
}


async def test_that_keys_rotate_on_a_live_service_and_everything_reads_back(
    client: httpx.AsyncClient,
    frontdesk: Frontdesk,
    settings: Settings,
    shared_embedder: SharedEmbedder,
) -> None:
    ids = await _populate(client)
    before = await _everything(frontdesk, client, ids)
    assert any(before[cid]["summaries"] for cid in ids)
    assert "jane.doe@example.com" in str(before[ids[1]]["vault"])
    old = frontdesk.sealer.key_id
    assert frontdesk.sealer.key_file == settings.data_dir / "keys.json"

    # The command line: a second service on the same database and key file.
    command = Frontdesk(settings, embedder=shared_embedder)
    await command.start(load_knowledge=False)
    try:
        with pytest.raises(KeysError, match="is the active key"):
            await retire(command, old)
        progress: list[tuple[int, int]] = []

        async def chat() -> str:  # the live service keeps serving during the rotation
            cid = await open_conversation(client)
            for n in range(6):
                await say(client, cid, f"still here {n}, blueberry")
                await asyncio.sleep(0.3)
            return cid

        report, during = await asyncio.gather(
            rotate(command, progress=lambda _, done, total: progress.append((done, total))),
            chat(),
        )
        assert report.added and report.complete and report.key_id != old
        assert report.previous[0] == old
        assert report.resealed["messages.text"] >= 6
        assert report.resealed["shop_customers.profile"] > 0 and progress
        new = report.key_id

        await say(client, during, "and after the rotation, blueberry")
        assert frontdesk.sealer.key_id == new  # the live service read the new key
        ids.append(during)
        raw = await _raw_values(frontdesk)
        assert all(frontdesk.sealer.key_of(v.strip('"')) == new for vs in raw.values() for v in vs)
        uses, unknown = await key_uses(command)
        assert unknown == {} and [u.key.id for u in uses if u.values] == [new]

        await retire(command, old)
        legacy = command.sealer.legacy_id
        assert legacy is not None
        await retire(command, legacy)
        assert json.loads(settings.resolved_key_file.read_text())["keys"].keys() == {new}
        with pytest.raises(KeysError, match="there is no key"):
            await retire(command, old)
    finally:
        await command.close()

    after = await _everything(frontdesk, client, ids)
    assert {k: v for k, v in after.items() if k != during} == before
    assert "still here 5, blueberry" in after[during]["stored"]
    assert "and after the rotation, blueberry" in after[during]["stored"]
    # A service started later, with the old key gone, reads everything too.
    restarted = Frontdesk(settings, embedder=shared_embedder)
    await restarted.start(load_knowledge=False)
    try:
        assert restarted.sealer.ids == (new,)
        transport = httpx.ASGITransport(app=_app(restarted))
        async with httpx.AsyncClient(transport=transport, base_url="http://fd.test") as other:
            assert await _everything(restarted, other, ids) == after
    finally:
        await restarted.close()


def _app(fd: Frontdesk) -> Any:
    from frontdesk.api.app import create_app

    return create_app(frontdesk=fd)


async def test_that_a_key_still_sealing_values_is_not_retired(
    frontdesk: Frontdesk, client: httpx.AsyncClient
) -> None:
    await _populate(client)
    old = frontdesk.sealer.key_id
    path = frontdesk.sealer.key_file
    assert path is not None
    crypto.add_key(path)  # a new key, nothing re-encrypted yet
    frontdesk.sealer.refresh(force=True)
    with pytest.raises(KeysError, match=f"values are still sealed under {old}"):
        await retire(frontdesk, old)
    report = await rotate(frontdesk, new_key=False)
    assert report.complete and not report.added and report.resealed["messages.text"] >= 3
    await retire(frontdesk, old)


async def test_that_keys_from_the_environment_are_rotated_by_changing_the_list(
    settings: Settings, shared_embedder: SharedEmbedder
) -> None:
    stored = json.loads(settings.resolved_key_file.read_text())
    old = stored["active"]
    listed = SecretStr(f"fresh:{_key()},{old}:{stored['keys'][old]['key']}")
    settings.resolved_key_file.unlink()
    env = settings.model_copy(update={"encryption_keys": listed})
    fd = Frontdesk(env, embedder=shared_embedder)
    await fd.start(load_knowledge=False)
    try:
        assert fd.sealer.key_id == "fresh" and fd.sealer.from_environment
        report = await rotate(fd)  # the new key is first in the list: re-encrypt under it
        assert report.complete and not report.added and report.resealed
        with pytest.raises(KeysError, match="Put a new key first in that list"):
            await rotate(fd)
        with pytest.raises(KeysError, match=f"remove {old} from that list"):
            await retire(fd, old)
    finally:
        await fd.close()
    assert not settings.resolved_key_file.exists()  # no key file where the keys are listed


async def test_that_a_missing_or_wrong_key_stops_the_start_with_a_clear_error(
    settings: Settings, shared_embedder: SharedEmbedder
) -> None:
    kept = settings.resolved_key_file.read_text()
    settings.resolved_key_file.unlink()  # the key file is lost: a new one is made, and...
    fd = Frontdesk(settings, embedder=shared_embedder)
    with pytest.raises(KeyringError, match="sealed under keys this service does not hold"):
        await fd.start(load_knowledge=False)
    await fd.close()
    wrong = settings.model_copy(update={"encryption_keys": SecretStr(f"other:{_key()}")})
    fd = Frontdesk(wrong, embedder=shared_embedder)
    with pytest.raises(KeyringError, match="FRONTDESK_ENCRYPTION_KEYS"):
        await fd.start(load_knowledge=False)
    await fd.close()
    settings.resolved_key_file.write_text(kept.replace('"key": "', '"key": "AAAA'))
    with pytest.raises(KeyringError, match="bytes"):
        Frontdesk(settings, embedder=shared_embedder)
    with pytest.raises(KeyringError, match="not 'id:base64key'"):
        Frontdesk(settings.model_copy(update={"encryption_keys": SecretStr("nonsense")}))


def test_that_a_sealed_column_is_not_used_without_a_keyring(tmp_path: Path) -> None:
    async def run() -> None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
        await db.migrate()
        try:
            with pytest.raises(StatementError, match="outside a transaction of a database"):
                await db.run(lambda s: repo.create_conversation(s, "web"))
        finally:
            await db.dispose()

    asyncio.run(run())


async def test_that_a_core_transaction_seals_commits_and_rolls_back(frontdesk: Frontdesk) -> None:
    """``run_core`` (a turn's two transactions, on a Core connection instead of an ORM
    session) seals what it writes, commits what returns and rolls back what raises."""
    db = frontdesk.db
    conversation = await db.run_core(lambda c: repo.create_conversation(c, "web"))

    def fail(connection: Any) -> None:
        repo.append_message(connection, conversation.id, Role.CUSTOMER, "kept out")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await db.run_core(fail)
    await db.run_core(lambda c: repo.append_message(c, conversation.id, Role.CUSTOMER, "kept in"))
    messages = await db.run(lambda s: repo.messages_after(s, conversation.id))
    assert [(m.seq, m.text) for m in messages] == [(1, "kept in")]  # the failed number too
    stored = await db.run_core(
        lambda c: c.execute(
            text("SELECT text FROM messages WHERE conversation_id = :cid"),
            {"cid": conversation.id},
        ).scalar_one()
    )
    assert "kept in" not in stored


# --- values written in clear before the upgrade ---------------------------------------------


async def test_that_values_written_in_clear_are_sealed_on_start(
    database_url: str, tmp_path: Path, shared_embedder: SharedEmbedder, backend: str
) -> None:
    from alembic import command as alembic

    from frontdesk.adapters.store.database import _alembic_config

    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, secret_key="test-secret"
    )
    db = Database(database_url)
    await db._with_connection(
        lambda c: alembic.downgrade(_alembic_config(c), "0004")
    )  # the schema before this change, its values in clear

    def legacy(session: Session) -> None:
        def insert(name: str, **values: Any) -> None:
            types = {"created_at": UTCDateTime(), "updated_at": UTCDateTime()}
            t = table(name, *(column(k, types.get(k)) for k in values))
            session.execute(t.insert().values(**values))

        now = datetime(2026, 1, 5, 10, tzinfo=UTC)
        insert(
            "conversations",
            id="c1",
            channel="web",
            mode="human",
            status="waiting",
            state=json.dumps({"flows": [{"slots": {"zip": "90210 mulberry"}}]}),
            last_seq=2,
            created_at=now,
            updated_at=now,
        )
        for seq, said in enumerate(("where is my parcel, mulberry", "let me check"), 1):
            insert(
                "messages",
                id=f"m{seq}",
                conversation_id="c1",
                seq=seq,
                role="customer" if seq == 1 else "bot",
                text=said,
                citations="[]",
                meta="{}",
                created_at=now,
            )
        insert(
            "handoffs",
            conversation_id="c1",
            reason="asked",
            summary=json.dumps({"wants": "my parcel, mulberry"}),
            created_at=now,
        )
        insert(
            "notes", conversation_id="c1", author_id="u", text="call back, mulberry", created_at=now
        )

    await db.run(legacy)
    await db.dispose()

    fd = Frontdesk(settings, embedder=shared_embedder)
    await fd.start(load_knowledge=False)
    try:
        raw = await _raw_values(fd)
        for name in ("messages.text", "conversations.state", "handoffs.summary", "notes.text"):
            assert raw[name] and all(
                fd.sealer.key_of(v.strip('"')) == fd.sealer.key_id for v in raw[name]
            ), name
        assert await fd.db.run(sealed.pending) == []
        stored = await fd.db.run(lambda s: repo.messages_after(s, "c1", 0))
        assert [m.text for m in stored] == ["where is my parcel, mulberry", "let me check"]
        conversation = await fd.db.run(lambda s: repo.get_conversation(s, "c1"))
        assert conversation is not None
        assert conversation.state == {"flows": [{"slots": {"zip": "90210 mulberry"}}]}
        if backend == "sqlite":  # nor do the free pages and the log keep them
            path = Path(database_url.split("///", 1)[1])
            wal = path.with_name(path.name + "-wal")
            assert b"mulberry" not in path.read_bytes() + (
                wal.read_bytes() if wal.exists() else b""
            )
    finally:
        await fd.close()


# --- the commands -----------------------------------------------------------------------------


def test_that_the_keys_commands_list_rotate_and_retire(
    sqlite_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    copy_template(sqlite_template, data)
    monkeypatch.setenv("FRONTDESK_SECRET_KEY", "test-secret")
    monkeypatch.setenv("FRONTDESK_ANALYTICS_ROLLUP_SECONDS", "0")
    monkeypatch.delenv("FRONTDESK_DATABASE_URL", raising=False)
    monkeypatch.delenv("FRONTDESK_ENCRYPTION_KEYS", raising=False)
    runner = CliRunner()
    where = ["--data-dir", str(data), "--company", str(DEMO)]
    old = json.loads((data / "keys.json").read_text())["active"]

    listed = runner.invoke(app, ["keys", "list", *where])
    assert listed.exit_code == 0, listed.output
    assert f"{old}" in listed.output and "active" in listed.output
    assert "shop_customers.profile" in listed.output

    rotated = runner.invoke(app, ["keys", "rotate", "--wait", "5", *where])
    assert rotated.exit_code == 0, rotated.output
    new = json.loads((data / "keys.json").read_text())["active"]
    assert new != old and f"new key {new} added and active" in rotated.output
    assert "shop_orders.address" in rotated.output and f"under {new}" in rotated.output

    active = runner.invoke(app, ["keys", "retire", new, *where])
    assert active.exit_code == 1 and "is the active key" in active.output
    retired = runner.invoke(app, ["keys", "retire", old, *where])
    assert retired.exit_code == 0, retired.output
    assert old not in json.loads((data / "keys.json").read_text())["keys"]
    for command in ("keys", "keys list", "keys rotate", "keys retire"):
        helped = runner.invoke(app, [*command.split(), "--help"])
        assert helped.exit_code == 0 and "Usage" in helped.output
