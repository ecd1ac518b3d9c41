"""The service with the demo store's intent model: out of scope, small talk, frustration."""

from __future__ import annotations

import httpx
import pytest
from tests.conftest import open_conversation, say

from frontdesk.pipeline.sentiment import mood


@pytest.mark.parametrize(
    "question",
    [
        "what's the weather going to be like in Paris tomorrow?",
        "tell me a joke about cats",
        "how do I return something to IKEA?",
    ],
)
async def test_that_out_of_scope_questions_get_a_clarifying_question_not_an_answer(
    smart_client: httpx.AsyncClient, question: str
) -> None:
    conversation_id = await open_conversation(smart_client)
    result = await say(smart_client, conversation_id, question)
    [reply] = result["replies"]
    assert reply["citations"] == []
    assert "rephrase" in reply["text"]


async def test_that_in_scope_questions_are_still_answered(
    smart_client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(smart_client)
    result = await say(smart_client, conversation_id, "How long do refunds take?")
    assert result["replies"][0]["citations"][0]["id"] == "refunds"


async def test_that_goodbye_is_answered_in_kind(smart_client: httpx.AsyncClient) -> None:
    conversation_id = await open_conversation(smart_client)
    result = await say(smart_client, conversation_id, "ok that's everything, bye for now")
    assert "Goodbye" in result["replies"][0]["text"]


async def test_that_a_frustrated_customer_is_handed_to_a_person(
    smart_client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(smart_client)
    await say(smart_client, conversation_id, "where is the package i ordered last week")
    result = await say(
        smart_client,
        conversation_id,
        "THIS IS USELESS, I ALREADY TOLD YOU, WHERE IS THE PACKAGE I ORDERED LAST WEEK???",
    )
    assert result["handoff"] is True


def test_that_frustration_signals_add_up() -> None:
    calm = mood("Could you tell me how long shipping takes?")
    assert calm.frustration == 0 and calm.signals == ()
    angry = mood("this is useless!!! I already told you my order number", ["my order number"])
    assert {"exasperation", "punctuation"} <= set(angry.signals)
    assert angry.frustration >= 0.45
    again = mood("where is my order from last week", ["where is my order from last week?"])
    assert again.signals == ("repeated",)
    assert mood("WHY IS NOBODY ANSWERING ME").signals[0] == "shouting"


def test_that_the_understand_stage_picks_out_order_ids_products_and_options() -> None:
    from tests.conftest import DEMO

    from frontdesk.company.catalog import load_catalog
    from frontdesk.company.guidelines import Guidelines
    from frontdesk.pipeline.understand import understand

    catalog = load_catalog(DEMO)
    assert catalog is not None
    seen = understand(
        "can I swap the blue t-shirts from order #W1234567 for size XL?",
        [],
        Guidelines(),
        catalog=catalog,
    )
    found = {(e.kind, e.value) for e in seen.entities}
    assert {("order_id", "#W1234567"), ("product", "T-Shirt"), ("option", "color=blue"),
            ("option", "size=XL")} <= found  # fmt: skip
