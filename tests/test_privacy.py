"""Personal data is replaced by stable pseudonyms before anything is stored."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session
from tests.conftest import open_conversation, say

from frontdesk.adapters.store import repository as repo
from frontdesk.pipeline import privacy
from frontdesk.service import Frontdesk


@pytest.mark.parametrize(
    ("message", "kinds"),
    [
        ("mail me at Jane.Doe+shop@example.co.uk please", ["EMAIL"]),
        ("card 4111 1111 1111 1111 exp 12/29", ["CARD"]),
        ("card 4111-1111-1111-1111", ["CARD"]),
        ("my amex is 378282246310005", ["CARD"]),
        ("call +1 (415) 555-2671 after six", ["PHONE"]),
        ("call 415-555-2671", ["PHONE"]),
        ("call (415) 555 2671", ["PHONE"]),
        ("ring +44 20 7946 0958", ["PHONE"]),
        ("a@b.io and 5555 5555 5555 4444 and +33 1 23 45 67 89", ["EMAIL", "CARD", "PHONE"]),
    ],
)
def test_that_emails_cards_and_phone_numbers_are_detected(message: str, kinds: list[str]) -> None:
    assert [span.kind for span in privacy.detect(message)] == kinds


@pytest.mark.parametrize(
    "message",
    [
        "where is order #W2611340",
        "item 9612497925 in blue",  # a 10-digit item id is not a phone number
        "card 4111 1111 1111 1112",  # fails the Luhn check
        "I paid $1,234.56 on 2024-05-01",
        "size 10.5 boots",
    ],
)
def test_that_order_ids_item_ids_and_invalid_cards_are_not_taken_for_personal_data(
    message: str,
) -> None:
    assert privacy.detect(message) == []


def test_that_the_same_value_gets_the_same_digest_and_other_keys_differ() -> None:
    one = privacy.digest(b"k1", "EMAIL", "Jane@Example.com")
    assert one == privacy.digest(b"k1", "EMAIL", " jane@example.com")
    assert one != privacy.digest(b"k2", "EMAIL", "jane@example.com")
    assert privacy.digest(b"k", "CARD", "4111 1111 1111 1111") == privacy.digest(
        b"k", "CARD", "4111-1111-1111-1111"
    )


async def test_that_stored_messages_hold_pseudonyms_stable_within_a_conversation(
    client: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    async def stored(conversation_id: str) -> list[str]:
        messages = await frontdesk.db.run(lambda s: repo.messages_after(s, conversation_id, 0))
        return [m.text for m in messages if m.role.value == "customer"]

    conversation_id = await open_conversation(client)
    first = await say(client, conversation_id, "I'm jane.doe@example.com, card 4111 1111 1111 1111")
    # The customer is shown their own values; the database holds tokens.
    assert first["message"]["text"] == "I'm jane.doe@example.com, card 4111 1111 1111 1111"
    await say(client, conversation_id, "again: JANE.DOE@example.com, or try bob@example.org")
    assert await stored(conversation_id) == [
        "I'm <EMAIL_1>, card <CARD_1>",
        "again: <EMAIL_1>, or try <EMAIL_2>",
    ]
    other = await open_conversation(client)
    await say(client, other, "bob@example.org here")
    assert await stored(other) == ["<EMAIL_1> here"]
    shown = (await client.get(f"/api/conversations/{other}")).json()["messages"]
    assert shown[0]["text"] == "bob@example.org here"


async def test_that_a_token_typed_by_the_customer_opens_nothing_of_another_conversation(
    client: httpx.AsyncClient,
) -> None:
    first = await open_conversation(client)
    await say(client, first, "I'm jane.doe@example.com")
    second = await open_conversation(client)
    result = await say(client, second, "what is <EMAIL_1> and <CARD_1>?")
    assert "jane.doe" not in str(result)
    shown = (await client.get(f"/api/conversations/{second}")).json()
    assert "jane.doe" not in str(shown)


async def test_that_no_raw_personal_data_reaches_the_database(
    client: httpx.AsyncClient, frontdesk: Frontdesk, backend: str
) -> None:
    secrets = ["jane.doe@example.com", "4111 1111 1111 1111", "415-555-2671"]
    conversation_id = await open_conversation(client)
    await say(client, conversation_id, f"I'm {secrets[0]}, card {secrets[1]}, phone {secrets[2]}")

    def dump(session: Session) -> list[str]:
        tables = ("messages", "events", "pseudonyms", "conversations")
        return [repr(session.execute(text(f"SELECT * FROM {t}")).all()) for t in tables]

    dumped = await frontdesk.db.run(dump)
    everything = "\n".join(dumped)
    for secret in secrets:
        assert secret not in everything
    assert "4111111111111111" not in everything and "4155552671" not in everything
    if backend == "sqlite":
        url = frontdesk.settings.resolved_database_url
        raw = Path(url.split("///", 1)[1]).read_bytes()
        wal = Path(url.split("///", 1)[1] + "-wal")
        if wal.exists():
            raw += wal.read_bytes()
        for secret in secrets:
            assert secret.encode() not in raw
