"""Messages full of personal data go through the API; then every place the service writes is
scanned for the raw values: the tables, the SQLite file and its WAL, the logs, and a
``pg_dump`` of the PostgreSQL database. None may hold any of them."""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import Session
from tests.conftest import Login, open_conversation, say

from frontdesk.adapters.store.tables import Base
from frontdesk.service import Frontdesk

# What a customer types, and the raw values that must not be found anywhere.
MESSAGES = [
    "Hi, my name is Maria Gonzalez and my email is maria.gonzalez77@example.com",
    "You can call me on +1 (415) 555-0199 or at 415-555-0123",
    "I paid with my card 4111 1111 1111 1111, and the refund can go to IBAN "
    "DE89 3704 0044 0532 0130 00",
    "my SSN is 536-22-8751 if you need it, date of birth 03/14/1987",
    "please ship to 742 Evergreen Terrace, Springfield, IL 62704",
    "my router says my IP is 203.0.113.42, the site keeps failing",
]
SECRETS = [
    "Maria Gonzalez",
    "Gonzalez",
    "maria.gonzalez77@example.com",
    "maria.gonzalez77",
    "555-0199",
    "4155550199",
    "415-555-0123",
    "4111 1111 1111 1111",
    "4111111111111111",
    "DE89 3704 0044 0532 0130 00",
    "DE89370400440532013000",
    "536-22-8751",
    "536228751",
    "03/14/1987",
    "742 Evergreen Terrace",
    "Evergreen",
    "203.0.113.42",
]


def found_in(blob: str) -> list[str]:
    lowered = blob.lower()
    return [s for s in SECRETS if s.lower() in lowered]


async def _write_everything(
    client: httpx.AsyncClient, login: Login, frontdesk: Frontdesk
) -> list[str]:
    """Customer messages, a CSAT comment, an agent's reply and note: every way text gets in."""
    first = await open_conversation(client)
    for message in MESSAGES:
        await say(client, first, message)
    await say(client, first, "thanks, that's all. bye")
    rated = await client.post(
        f"/api/conversations/{first}/csat",
        json={"score": 2, "comment": "Maria Gonzalez here, email maria.gonzalez77@example.com"},
    )
    assert rated.status_code == 201, rated.text
    second = await open_conversation(client)
    handed = await say(client, second, "I'm Maria Gonzalez, 4111 1111 1111 1111, a human please")
    assert handed["handoff"] is True
    ann = await login("ann@example.com")
    assert (await ann.post(f"/api/console/conversations/{second}/take")).status_code == 200
    reply = await ann.post(
        f"/api/console/conversations/{second}/reply",
        json={"text": "Thanks Maria Gonzalez, I see 536-22-8751 on file"},
    )
    assert reply.status_code == 201
    note = await ann.post(
        f"/api/console/conversations/{second}/notes",
        json={"text": "customer gave IBAN DE89 3704 0044 0532 0130 00"},
    )
    assert note.status_code == 201
    await frontdesk.analytics_tick()  # the rollup and the insights read what was stored
    return [first, second]


def _tables(session: Session) -> str:
    """Every value of every row of every table, in full (a Row's repr shortens long values)."""
    return "\n".join(
        "\t".join(str(value) for value in row)
        for table in Base.metadata.tables
        for row in session.execute(text(f'SELECT * FROM "{table}"')).all()
    )


async def test_that_no_raw_personal_data_is_in_the_database_its_files_or_the_logs(
    customer: httpx.AsyncClient,
    login: Login,
    frontdesk: Frontdesk,
    backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    conversations = await _write_everything(customer, login, frontdesk)
    # The customer still sees their own values: restored at delivery, from the vault.
    shown = (await customer.get(f"/api/conversations/{conversations[0]}")).json()
    assert "maria.gonzalez77@example.com" in str(shown)

    assert found_in(await frontdesk.db.run(_tables)) == []
    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert logs, "the scan of the logs saw no log records at all"
    assert found_in(logs) == []
    url = make_url(frontdesk.settings.resolved_database_url)
    if backend == "sqlite":
        path = Path(str(url.database))
        raw = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert len(raw) > 100_000
        assert found_in(raw.decode("latin-1")) == []
    else:
        dump = _pg_dump(url.host or "127.0.0.1", url.port or 5432, url.username, url.database)
        assert "CREATE TABLE" in dump and "messages" in dump
        assert found_in(dump) == []
    # And the key never sits in the database: what is there cannot be opened without it.
    key_file = frontdesk.settings.data_dir / "keys.json"
    if key_file.exists():
        keys = re.findall(r'"([A-Za-z0-9+/=]{40,})"', key_file.read_text())
        blob = await frontdesk.db.run(_tables)
        assert keys and not any(k in blob for k in keys)


def _pg_dump(host: str, port: int, user: str | None, database: str | None) -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump")) or [
        shutil.which("pg_dump") or ""
    ]
    binary = found[-1]
    if not binary:
        pytest.fail("pg_dump is not installed (Debian package postgresql-client)")
    command = [binary, "-h", host, "-p", str(port), "-d", str(database), "--no-owner"]
    if user:
        command += ["-U", user]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=120, env={**os.environ}, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_that_the_encoder_never_reads_a_name_or_an_email(
    customer: httpx.AsyncClient, frontdesk: Frontdesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    embedder = frontdesk.embedder
    one, many = embedder.embed_one, embedder.embed

    async def embed_one(text: str) -> Any:
        read.append(text)
        return await one(text)

    def embed(texts: Any) -> Any:
        read.extend(texts)
        return many(texts)

    monkeypatch.setattr(embedder, "embed_one", embed_one)
    monkeypatch.setattr(embedder, "embed", embed)
    cid = await open_conversation(customer)
    for line in (
        "I'd like a quote for a bulk order for my hiking club",
        "dana fox",  # a bare name in lower case, answering "What's your name?"
        "dana.fox@club.example.org",
        "I'm Maria Gonzalez, is the hiking boot waterproof?",
    ):
        await say(customer, cid, line)
    assert read, "the encoder read nothing: the test would prove nothing"
    assert not any("dana" in t.lower() or "gonzalez" in t.lower() for t in read), read
