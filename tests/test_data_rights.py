"""A customer's data rights and retention: export everything held about a customer, erase a
customer and find no trace of them (in every table and in the SQLite file's bytes), who may do
it, and the retention purge (old data only, never unrolled events, never open conversations)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from tests.conftest import Login, ServiceCli, open_conversation, say
from typer.testing import CliRunner

from frontdesk.actions import retention
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.adapters.store.tables import (
    ApprovedAnswerRow,
    AuditRow,
    Base,
    ConversationRow,
    CsatRow,
    EventRow,
    MessageRow,
    PseudonymRow,
    ShopCustomerRow,
    ShopOrderRow,
    TrainingExampleRow,
)
from frontdesk.analytics.insights import refresh_insights
from frontdesk.analytics.rollup import run_rollup
from frontdesk.cli import app as cli_app
from frontdesk.core.types import ConversationId, utcnow
from frontdesk.demo import demo_store_dir
from frontdesk.service import Frontdesk

RAJ = "raj.sanchez2046@example.com"  # Raj Sanchez, 557 Sunset Drive, San Diego 92147
RAJ_NAME = "Raj Sanchez"
RAJ_STREET = "557 Sunset Drive"
RAJ_STORE_ID = "raj_sanchez_2970"
RAJ_ORDER = "#W4566809"
AARAV = "aarav.nguyen1293@example.com"
CARD = "4111 1111 1111 1111"
PHONE = "415-555-2671"
DEMO = demo_store_dir()


async def verified(client: httpx.AsyncClient, request: str, email: str) -> str:
    cid = await open_conversation(client)
    first = await say(client, cid, request)
    assert "email address" in first["replies"][0]["text"]
    reply = await say(client, cid, f"it's {email}")
    assert "found your account" in reply["replies"][0]["text"], reply
    return cid


async def customer_id(fd: Frontdesk, email: str) -> str:
    digest = shop_repo.email_digest(fd.secret, email)
    found = await fd.db.run(lambda s: shop_repo.customer_by_digest(s, email=digest))
    assert found is not None
    return found


async def everything(fd: Frontdesk) -> str:
    """Every value of every row of every table, read through SQLAlchemy (sealed columns come
    back opened), as one text."""

    def work(session: Session) -> str:
        parts = []
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).all():
                # repr of a Row cuts long values short: the tuple's does not.
                parts.append(f"{table.name}: {tuple(row)!r}")
        return "\n".join(parts)

    return await fd.db.run(work)


def file_bytes(fd: Frontdesk) -> bytes:
    path = Path(fd.settings.resolved_database_url.split("///", 1)[1])
    raw = path.read_bytes()
    for suffix in ("-wal", "-journal"):
        extra = Path(f"{path}{suffix}")
        if extra.exists():
            raw += extra.read_bytes()
    return raw


async def count(fd: Frontdesk, entity: Any, *where: Any) -> int:
    return int(
        await fd.db.run(
            lambda s: s.execute(select(func.count()).select_from(entity).where(*where)).scalar_one()
        )
    )


# --- export ----------------------------------------------------------------------------------


async def test_that_an_export_holds_the_customers_messages_vault_and_store_records_only(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    raj_chat = await verified(customer, "Where is my order?", RAJ)
    await say(customer, raj_chat, f"my card is {CARD} and my phone is {PHONE}")
    aarav_chat = await verified(customer, "I want to exchange my hiking boots", AARAV)
    anonymous = await open_conversation(customer)
    await say(customer, anonymous, "do you ship to Canada?")
    raj_id, aarav_id = await customer_id(frontdesk, RAJ), await customer_id(frontdesk, AARAV)
    ada = await login("ada@example.com")

    response = await ada.post("/api/admin/customers/export", json={"ref": RAJ})
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["format"] == "frontdesk-export/1" and document["reference"] == "customer"
    profile = document["customer"]["profile"]
    assert document["customer"]["id"] == raj_id
    assert (profile["first_name"], profile["last_name"], profile["email"]) == (
        "Raj",
        "Sanchez",
        RAJ,
    )
    assert profile["address"]["address1"] == RAJ_STREET
    orders = {o["id"]: o for o in document["customer"]["orders"]}
    assert RAJ_ORDER in orders and orders[RAJ_ORDER]["address"]["zip"] == "92147"
    [conversation] = document["conversations"]
    assert conversation["id"] == raj_chat
    texts = [m["text"] for m in conversation["messages"]]
    assert texts[0] == "Where is my order?" and "<EMAIL_1>" in texts[2]
    assert "<CARD_1>" in texts[4] and CARD not in texts[4]  # as stored: tokens
    vault = {v["token"]: v["value"] for v in conversation["vault"]}
    assert vault["<EMAIL_1>"] == RAJ and vault["<CARD_1>"] == CARD and vault["<PHONE_1>"] == PHONE
    assert conversation["events"] and conversation["state"]["auth"]["customer_id"] == raj_id
    dumped = json.dumps(document)
    for other in (AARAV, aarav_id, aarav_chat, anonymous, "Aarav", "Canada"):
        assert other not in dumped

    # The same customer by their id; one anonymous chat by its id.
    by_id = (await ada.post("/api/admin/customers/export", json={"ref": raj_id})).json()
    assert [c["id"] for c in by_id["conversations"]] == [raj_chat]
    one = (
        await ada.post("/api/admin/customers/export", json={"ref": f"conversation:{anonymous}"})
    ).json()
    assert one["customer"] is None and [c["id"] for c in one["conversations"]] == [anonymous]
    assert one["conversations"][0]["messages"][0]["text"] == "do you ship to Canada?"

    # Audited, naming nobody.
    audited = await frontdesk.db.run(
        lambda s: list(
            s.execute(select(AuditRow).where(AuditRow.action == "customer_exported")).scalars()
        )
    )
    assert len(audited) == 3 and {a.user_id for a in audited} == {
        (await ada.get("/api/console/me")).json()["user"]["id"]
    }
    for entry in audited:
        assert entry.conversation_id is None
        assert RAJ not in json.dumps(entry.detail) and raj_id not in json.dumps(entry.detail)


async def test_that_an_unknown_or_malformed_reference_gets_a_clear_error(login: Login) -> None:
    ada = await login("ada@example.com")
    unknown = await ada.post("/api/admin/customers/export", json={"ref": "nobody@example.com"})
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "customer_not_found"
    gone = await ada.post(
        "/api/admin/customers/erase", json={"ref": "conversation:no-such-conversation"}
    )
    assert gone.status_code == 404
    bad = await ada.post("/api/admin/customers/export", json={"ref": "somebody"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_reference"


async def test_that_only_admins_reach_the_admin_routes(
    login: Login, customer: httpx.AsyncClient
) -> None:
    for path in ("/api/admin/customers/export", "/api/admin/customers/erase"):
        anonymous = await customer.post(path, json={"ref": RAJ})
        assert anonymous.status_code == 401, (path, anonymous.text)
        for email in ("ann@example.com", "rita@example.com"):
            client = await login(email)
            refused = await client.post(path, json={"ref": RAJ})
            assert refused.status_code == 403, (email, path, refused.text)
            assert refused.json()["error"]["code"] == "forbidden"
    ada = await login("ada@example.com")
    del ada.headers["X-CSRF-Token"]
    assert (await ada.post("/api/admin/customers/erase", json={"ref": RAJ})).json()["error"][
        "code"
    ] == ("csrf_failed")


# --- erasure ---------------------------------------------------------------------------------


async def test_that_an_erased_customer_leaves_no_trace(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk, backend: str
) -> None:
    fd = frontdesk
    # Raj: verified by email, personal data typed, handed to an agent who replies and notes,
    # resolved and rated; verified by name and zip in a second chat; a reviewer corrects a reply.
    raj_chat = await verified(customer, "Where is my order?", RAJ)
    await say(customer, raj_chat, f"my card is {CARD} and my phone is {PHONE}")
    handed = await say(customer, raj_chat, "can I talk to a person?")
    assert handed["handoff"] is True
    ann = await login("ann@example.com")
    assert (await ann.post(f"/api/console/conversations/{raj_chat}/take")).status_code == 200
    replied = await ann.post(
        f"/api/console/conversations/{raj_chat}/reply",
        json={"text": f"Hi {RAJ_NAME}, I'm looking at order {RAJ_ORDER} now."},
    )
    assert replied.status_code == 201
    noted = await ann.post(
        f"/api/console/conversations/{raj_chat}/notes",
        json={"text": f"{RAJ_NAME} lives at {RAJ_STREET}, asked twice"},
    )
    assert noted.status_code == 201
    assert (await ann.post(f"/api/console/conversations/{raj_chat}/resolve")).status_code == 200
    rated = await customer.post(
        f"/api/conversations/{raj_chat}/csat", json={"score": 4, "comment": f"thanks, {RAJ_NAME}"}
    )
    assert rated.status_code in (200, 201), rated.text
    second = await open_conversation(customer)
    await say(customer, second, f"what's the status of order {RAJ_ORDER}?")
    found = await say(customer, second, f"{RAJ_NAME}, zip code 92147")
    assert "found your account" in found["replies"][0]["text"]
    bot = await fd.db.run(
        lambda s: (
            s.execute(
                select(MessageRow.id).where(
                    MessageRow.conversation_id == raj_chat,
                    MessageRow.role == "bot",
                    MessageRow.reply_to.is_not(None),
                )
            )
            .scalars()
            .first()
        )
    )
    rita = await login("rita@example.com")
    reviewed = await rita.post(
        "/api/console/reviews",
        json={
            "message_id": bot,
            "rating": "wrong",
            "correction": "Our orders team will check it for you.",
            "save_test": True,
        },
    )
    assert reviewed.status_code == 201, reviewed.text
    review_tests = fd.settings.data_dir / "tests" / "reviews.yaml"
    assert review_tests.exists()
    # Aarav, another customer, stays.
    aarav_chat = await verified(customer, "I want to exchange my hiking boots", AARAV)
    aarav_id = await customer_id(fd, AARAV)
    raj_id = await customer_id(fd, RAJ)
    await run_rollup(fd, lag_seconds=0)
    await refresh_insights(fd)
    assert await count(fd, ApprovedAnswerRow) == 1 and await count(fd, TrainingExampleRow) == 1

    needles = [RAJ, RAJ_NAME, RAJ_STREET, RAJ_STORE_ID, RAJ_ORDER, raj_id, raj_chat, second]
    needles.append("my card is")  # a text only Raj wrote
    before = await everything(fd)
    assert raj_chat in before and raj_id in before and second in before

    ada = await login("ada@example.com")
    response = await ada.post("/api/admin/customers/erase", json={"ref": RAJ})
    assert response.status_code == 200, response.text
    erased = response.json()
    assert erased["erased"] is True and erased["conversations"] == 2
    counts = erased["counts"]
    for table in ("messages", "conversations", "pseudonyms", "events", "notes", "handoffs"):
        assert counts[table] > 0, table
    assert counts["shop_customers"] == 1 and counts["shop_orders"] == 3
    assert counts["csat"] == 1 and counts["reviews"] == 1
    assert counts["approved_answers"] == 1 and counts["training_examples"] == 1
    assert counts["analytics_conversations"] == 2
    assert erased["files"].get("review regression tests") == 1
    assert erased["files"].get("insight vector cache entries", 0) >= 1

    # No trace in any table (sealed columns read opened) ...
    after = (await everything(fd)).lower()
    for needle in needles:
        assert needle.lower() not in after, needle
    # ... nor in the database file's bytes (secure_delete, and the log emptied by the erasure).
    if backend == "sqlite":
        assert erased["wal_truncated"] is True
        raw = file_bytes(fd)
        for needle in needles:
            assert needle.encode() not in raw, needle
        path = fd.settings.resolved_database_url.split("///", 1)[1]
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("VACUUM")
        raw = file_bytes(fd)
        for needle in needles:
            assert needle.encode() not in raw, needle
    assert not review_tests.exists()  # its one test quoted Raj's question

    # The audit log keeps who erased and how much, naming nobody; the agents' entries stay,
    # without the conversation.
    entries = await fd.db.run(
        lambda s: list(s.execute(select(AuditRow).order_by(AuditRow.id)).scalars())
    )
    [entry] = [e for e in entries if e.action == "customer_erased"]
    assert entry.user_id is not None and entry.detail["counts"]["messages"] == counts["messages"]
    kept = [e for e in entries if e.action in ("take_over", "reply", "note", "review")]
    assert {e.action for e in kept} == {"take_over", "reply", "note", "review"}
    assert all(e.conversation_id is None and "erased_subject" in e.detail for e in kept)

    # Aarav is intact.
    assert await count(fd, ConversationRow, ConversationRow.id == aarav_chat) == 1
    assert await count(fd, MessageRow, MessageRow.conversation_id == aarav_chat) >= 4
    assert await count(fd, ShopCustomerRow, ShopCustomerRow.id == aarav_id) == 1
    assert await count(fd, ShopOrderRow, ShopOrderRow.customer_id == aarav_id) == 2
    aarav = (await ada.post("/api/admin/customers/export", json={"ref": AARAV})).json()
    assert [c["id"] for c in aarav["conversations"]] == [aarav_chat]
    assert aarav["customer"]["profile"]["email"] == AARAV

    # Erasing again, or exporting, says nothing is left; the chat is gone for the customer too.
    for ref in (RAJ, raj_id, f"conversation:{raj_chat}"):
        again = await ada.post("/api/admin/customers/erase", json={"ref": ref})
        assert again.status_code == 404 and again.json()["error"]["code"] == "already_erased"
        export = await ada.post("/api/admin/customers/export", json={"ref": ref})
        assert export.status_code == 404 and export.json()["error"]["code"] == "already_erased"
    later = await customer.post(f"/api/conversations/{raj_chat}/messages", json={"text": "hello?"})
    assert later.status_code == 404
    assert (await customer.get(f"/api/conversations/{raj_chat}")).status_code == 404
    assert (await ann.get(f"/api/console/conversations/{raj_chat}")).status_code == 404


async def test_that_erasing_an_open_conversation_ends_it_for_everyone(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await open_conversation(customer)
    await say(customer, cid, "my email is someone@example.org, do you ship to Canada?")
    other = await open_conversation(customer)
    await say(customer, other, "do you ship to Canada?")
    ada = await login("ada@example.com")
    async with frontdesk.bus.subscribe(ConversationId(cid)) as feed:
        erased = await ada.post("/api/admin/customers/erase", json={"ref": "someone@example.org"})
        assert erased.status_code == 200, erased.text
        assert erased.json()["conversations"] == 1
        told = await asyncio.wait_for(feed.get(), 5)
    assert told["type"] == "error" and told["error"]["code"] == "conversation_not_found"
    assert (await customer.get(f"/api/conversations/{cid}")).status_code == 404
    assert (await customer.get(f"/api/conversations/{other}")).status_code == 200


async def test_the_cli_exports_and_erases_with_confirmation(
    customer: httpx.AsyncClient,
    frontdesk: Frontdesk,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cid = await verified(customer, "Where is my order?", RAJ)
    monkeypatch.setenv("FRONTDESK_DATABASE_URL", database_url)
    monkeypatch.setenv("FRONTDESK_SECRET_KEY", "test-secret")
    monkeypatch.setenv("FRONTDESK_ANALYTICS_ROLLUP_SECONDS", "0")
    where = ["--data-dir", str(frontdesk.settings.data_dir), "--company", str(DEMO)]
    runner = CliRunner()

    async def cli(*args: str, stdin: str | None = None) -> Any:
        return await asyncio.to_thread(runner.invoke, cli_app, [*args, *where], input=stdin)

    out = tmp_path / "raj.json"
    exported = await cli("customers", "export", RAJ, "--out", str(out))
    assert exported.exit_code == 0, exported.output
    assert out.stat().st_mode & 0o777 == 0o600
    assert json.loads(out.read_text())["conversations"][0]["id"] == cid
    printed = await cli("customers", "export", f"conversation:{cid}")
    assert printed.exit_code == 0 and json.loads(printed.stdout)["conversations"][0]["id"] == cid

    declined = await cli("customers", "erase", RAJ, stdin="n\n")
    assert declined.exit_code == 1 and "nothing erased" in declined.output
    assert await count(frontdesk, ConversationRow, ConversationRow.id == cid) == 1
    confirmed = await cli("customers", "erase", RAJ, stdin="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert "1 conversations" in confirmed.output and "shop_customers" in confirmed.output
    assert await count(frontdesk, ConversationRow, ConversationRow.id == cid) == 0
    again = await cli("customers", "erase", RAJ, "--yes")
    assert again.exit_code == 1 and "erased on" in again.output
    unknown = await cli("customers", "export", "nobody@example.com")
    assert unknown.exit_code == 1 and "holds nothing" in unknown.output


# --- retention -------------------------------------------------------------------------------


async def age(fd: Frontdesk, cid: str, days: float, status: str | None = None) -> None:
    """Make a conversation look last active ``days`` ago (and give it a status)."""
    at = utcnow() - timedelta(days=days)
    values: dict[str, Any] = {"updated_at": at}
    if status is not None:
        values["status"] = status
    await fd.db.run(
        lambda s: s.execute(
            update(ConversationRow).where(ConversationRow.id == cid).values(**values)
        )
    )


async def test_that_the_retention_purge_deletes_old_data_only(
    customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    fd = frontdesk
    chats = {}
    for name in ("old", "vault_old", "recent", "old_open"):
        chats[name] = await open_conversation(customer)
        await say(customer, chats[name], f"I'm {name}@example.com, do you ship to Canada?")
    await age(fd, chats["old"], 400, "resolved")  # past every limit
    await age(fd, chats["vault_old"], 100, "resolved")  # past the vault's 90 days only
    await age(fd, chats["recent"], 10, "resolved")
    await age(fd, chats["old_open"], 400)  # still open
    await fd.db.run(
        lambda s: s.add(CsatRow(
            conversation_id=chats["old"], score=2, comment="too slow", resolved_by="bot",
            agent_id=None, flow=None, article=None, created_at=utcnow(),
        ))
    )  # fmt: skip
    # Events: the old conversation's are 500 days old and rolled up; then more old ones arrive
    # that the rollup has not read yet.
    old = utcnow() - timedelta(days=500)
    await fd.db.run(
        lambda s: s.execute(
            update(EventRow).where(EventRow.conversation_id == chats["old"]).values(created_at=old)
        )
    )
    await run_rollup(fd, lag_seconds=0)
    rolled = await count(fd, EventRow, EventRow.conversation_id == chats["old"])
    assert rolled >= 2
    await fd.db.run(
        lambda s: s.add(
            EventRow(type="kpi_alert", conversation_id=None, payload={}, created_at=old)
        )
    )
    events_before = await count(fd, EventRow)

    dry = await retention.purge(fd, dry_run=True)
    assert await count(fd, EventRow) == events_before  # a dry run changes nothing
    counts = await retention.purge(fd)
    assert counts == dry
    assert counts["conversations"] == 1 and counts["messages"] == 2 and counts["events"] == rolled
    assert counts["vault_values"] == 1 and counts["csat_comments"] == 1

    async def messages(name: str) -> int:
        return await count(fd, MessageRow, MessageRow.conversation_id == chats[name])

    assert (
        await messages("old") == 0
        and await count(fd, PseudonymRow, PseudonymRow.conversation_id == chats["old"]) == 0
    )
    assert await count(fd, ConversationRow, ConversationRow.id == chats["old"]) == 1
    kept_csat = await fd.db.run(lambda s: s.get(CsatRow, chats["old"]))
    assert kept_csat is not None and kept_csat.score == 2 and kept_csat.comment is None
    # The vault of the 100-day-old chat lost its value, not its token or messages.
    [entry] = await fd.db.run(
        lambda s: list(
            s.execute(
                select(PseudonymRow).where(PseudonymRow.conversation_id == chats["vault_old"])
            ).scalars()
        )
    )
    assert entry.sealed is None and entry.number == 1 and await messages("vault_old") == 2
    for name in ("recent", "old_open"):
        assert await messages(name) == 2
        assert (
            await count(
                fd,
                PseudonymRow,
                PseudonymRow.conversation_id == chats[name],
                PseudonymRow.sealed.is_not(None),
            )
            == 1
        )
    # The event the rollup has not read is kept, however old.
    assert await count(fd, EventRow, EventRow.type == "kpi_alert") == 1
    assert await count(fd, EventRow) == events_before - rolled
    audited = await fd.db.run(
        lambda s: (
            s.execute(select(AuditRow).where(AuditRow.action == "retention_purged")).scalars().all()
        )
    )
    assert len(audited) == 1 and audited[0].detail == {"counts": counts}
    # Nothing left to purge; the scheduled purge runs at most once an hour.
    assert await retention.purge(fd) == {}
    assert await retention.purge_when_due(fd) == {}
    assert await retention.purge_when_due(fd) is None


async def test_that_retention_zero_keeps_forever_and_the_cli_reports(
    customer: httpx.AsyncClient,
    frontdesk: Frontdesk,
    service_cli: ServiceCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cid = await open_conversation(customer)
    await say(customer, cid, "I'm keep@example.com, do you ship to Canada?")
    await age(frontdesk, cid, 1000, "resolved")
    cli = service_cli

    for kind in ("MESSAGES", "VAULT", "EVENTS"):
        monkeypatch.setenv(f"FRONTDESK_RETENTION_{kind}_DAYS", "0")
    kept = await cli("retention", "purge")
    assert kept.exit_code == 0 and "nothing past its retention period" in kept.output
    monkeypatch.delenv("FRONTDESK_RETENTION_MESSAGES_DAYS")
    dry = await cli("retention", "purge", "--dry-run")
    assert dry.exit_code == 0 and "would delete" in dry.output and "messages" in dry.output
    assert await count(frontdesk, MessageRow, MessageRow.conversation_id == cid) == 2
    done = await cli("retention", "purge")
    assert done.exit_code == 0 and "deleted" in done.output
    assert await count(frontdesk, MessageRow, MessageRow.conversation_id == cid) == 0


@pytest.mark.parametrize("command", ["customers export", "customers erase", "retention purge"])
def test_that_the_data_commands_have_help(command: str) -> None:
    result = CliRunner().invoke(cli_app, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
