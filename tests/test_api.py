"""The public API contract, through the ASGI app, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio

import httpx
from sqlalchemy.orm import Session
from tests.conftest import SharedEmbedder, open_conversation, say

from frontdesk.adapters.store import repository as repo
from frontdesk.api.app import create_app
from frontdesk.config import Settings
from frontdesk.core.types import Role
from frontdesk.service import Frontdesk


async def test_that_health_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_that_a_refund_question_is_answered_from_the_refunds_article(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    result = await say(client, conversation_id, "How long do refunds take?", "m1")
    assert result["handoff"] is False
    [reply] = result["replies"]
    assert {"id": "refunds", "title": "Refunds"} in reply["citations"]
    assert "business days" in reply["text"]
    assert result["message"]["role"] == "customer"
    assert result["message"]["seq"] == 1
    assert reply["seq"] == 2


async def test_that_asking_for_a_person_hands_the_conversation_to_a_human(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    result = await say(client, conversation_id, "can I talk to a person?")
    assert result["handoff"] is True
    assert "person" in result["replies"][0]["text"]
    conversation = (await client.get(f"/api/conversations/{conversation_id}")).json()
    assert conversation["mode"] == "human"
    assert conversation["status"] == "waiting"


async def test_that_the_bot_stays_quiet_once_a_human_has_the_conversation(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    await say(client, conversation_id, "I want to speak to a human")
    result = await say(client, conversation_id, "How long do refunds take?")
    assert result["replies"] == []
    assert result["handoff"] is True


async def test_that_two_unclear_messages_in_a_row_are_offered_a_person_who_can_be_accepted(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    first = await say(client, conversation_id, "what is the capital of mongolia")
    assert "rephrase" in first["replies"][0]["text"]
    assert first["replies"][0]["citations"] == []
    second = await say(client, conversation_id, "tell me a joke about penguins")
    assert "connect you with a person" in second["replies"][0]["text"]
    assert second["handoff"] is False
    third = await say(client, conversation_id, "yes please")
    assert third["handoff"] is True


async def test_that_a_declined_offer_keeps_the_bot_serving(client: httpx.AsyncClient) -> None:
    conversation_id = await open_conversation(client)
    await say(client, conversation_id, "what is the capital of mongolia")
    await say(client, conversation_id, "tell me a joke about penguins")
    declined = await say(client, conversation_id, "no thanks")
    assert declined["handoff"] is False
    answered = await say(client, conversation_id, "Do you ship internationally?")
    assert answered["replies"][0]["citations"]


async def test_that_the_conversation_lists_its_messages_in_order(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    await say(client, conversation_id, "hi")
    await say(client, conversation_id, "How much does shipping cost?")
    response = await client.get(f"/api/conversations/{conversation_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "bot" and body["status"] == "open" and body["channel"] == "web"
    assert [m["role"] for m in body["messages"]] == ["customer", "bot", "customer", "bot"]
    assert [m["seq"] for m in body["messages"]] == [1, 2, 3, 4]


async def test_that_an_unknown_conversation_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/conversations/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "conversation_not_found"
    posted = await client.post("/api/conversations/nope/messages", json={"text": "hello"})
    assert posted.status_code == 404
    assert posted.json()["error"]["code"] == "conversation_not_found"


async def test_that_a_message_over_the_limit_is_413_and_nothing_is_stored(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "a" * 4001}
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "message_too_long"
    assert error["limit"] == 4000
    assert "4001" in error["message"]
    messages = (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    assert messages == []
    exactly = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "a" * 4000}
    )
    assert exactly.status_code == 200


async def test_that_a_body_over_the_byte_limit_is_413(client: httpx.AsyncClient) -> None:
    conversation_id = await open_conversation(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages",
        content=b'{"text": "' + b"x" * 70_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


async def test_that_empty_and_malformed_messages_are_422(client: httpx.AsyncClient) -> None:
    conversation_id = await open_conversation(client)
    url = f"/api/conversations/{conversation_id}/messages"
    cases = [
        {"json": {"text": ""}},
        {"json": {"text": "   \n "}},
        {"json": {}},
        {"json": {"text": 42}},
        {"json": {"text": "hi", "unexpected": 1}},
        {"json": {"text": "hi", "client_message_id": ""}},
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
    ]
    for case in cases:
        response = await client.post(url, **case)  # type: ignore[arg-type]
        assert response.status_code == 422, (case, response.text)
        assert response.json()["error"]["code"] in {"invalid_request", "invalid_message"}
        assert response.json()["error"]["message"]
    messages = (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    assert messages == []


async def test_that_a_bad_channel_is_422(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/conversations", json={"channel": "<script>"})
    assert response.status_code == 422


async def test_that_a_repeated_client_message_id_is_stored_once_with_the_same_reply(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    first = await say(client, conversation_id, "How long does shipping take?", "same-id")
    again = await say(client, conversation_id, "How long does shipping take?", "same-id")
    assert again["duplicate"] is True and first["duplicate"] is False
    assert again["message"]["id"] == first["message"]["id"]
    assert again["replies"] == first["replies"]
    messages = (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    assert len(messages) == 2


async def test_that_concurrent_duplicates_are_stored_once(client: httpx.AsyncClient) -> None:
    conversation_id = await open_conversation(client)
    results = await asyncio.gather(
        *(say(client, conversation_id, "Do gift cards expire?", "dup") for _ in range(5))
    )
    assert len({r["message"]["id"] for r in results}) == 1
    assert len({r["replies"][0]["id"] for r in results}) == 1
    messages = (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    assert len(messages) == 2


async def test_that_a_burst_of_concurrent_posts_keeps_each_turn_together_in_order(
    client: httpx.AsyncClient,
) -> None:
    conversation_id = await open_conversation(client)
    texts = [f"question {i}: how much does express shipping cost?" for i in range(12)]
    results = await asyncio.gather(
        *(say(client, conversation_id, text, f"burst-{i}") for i, text in enumerate(texts))
    )
    messages = (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    assert [m["seq"] for m in messages] == list(range(1, 25))
    for customer, bot in zip(messages[::2], messages[1::2], strict=True):
        assert customer["role"] == "customer"
        assert bot["role"] == "bot" and bot["reply_to"] == customer["id"]
    assert sorted(m["text"] for m in messages[::2]) == sorted(texts)
    for result in results:
        assert result["replies"][0]["seq"] == result["message"]["seq"] + 1


async def test_that_an_interrupted_turn_gets_its_reply_when_the_client_retries(
    client: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    conversation_id = await open_conversation(client)

    def crash_before_replying(session: Session) -> None:
        repo.append_message(
            session, conversation_id, Role.CUSTOMER, "Do gift cards expire?", client_message_id="r1"
        )

    await frontdesk.db.run(crash_before_replying)
    retried = await say(client, conversation_id, "Do gift cards expire?", "r1")
    assert retried["duplicate"] is True
    assert len(retried["replies"]) == 1
    messages = (await client.get(f"/api/conversations/{conversation_id}")).json()["messages"]
    assert [m["role"] for m in messages] == ["customer", "bot"]


async def test_that_the_openapi_docs_are_served_without_a_cdn(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "/_swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    bundle = await client.get("/_swagger/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 100_000
    spec = (await client.get("/openapi.json")).json()
    assert "/api/conversations/{conversation_id}/messages" in spec["paths"]


async def test_that_the_widget_and_demo_page_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert '<script src="/widget.js"' in page.text
    script = await client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "FrontdeskWidget" in script.text


async def test_that_the_api_allows_calls_from_sites_embedding_the_widget(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/api/conversations",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in {"*", "https://shop.example"}


async def test_that_each_turn_reports_its_server_time(client: httpx.AsyncClient) -> None:
    conversation_id = await open_conversation(client)
    response = await client.post(
        f"/api/conversations/{conversation_id}/messages", json={"text": "hello"}
    )
    assert response.headers["server-timing"].startswith("turn;dur=")


async def test_that_too_many_messages_get_429_with_retry_after_and_lose_nothing(
    settings: Settings, shared_embedder: SharedEmbedder
) -> None:
    limited = settings.model_copy(update={"rate_limit_per_conversation": 3})
    app = create_app(frontdesk=Frontdesk(limited, embedder=shared_embedder))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://frontdesk.test"
        ) as c,
    ):
        cid = await open_conversation(c)
        for n in range(3):
            await say(c, cid, f"hello {n}")
        refused = await c.post(f"/api/conversations/{cid}/messages", json={"text": "one more"})
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.json()["error"]["code"] == "rate_limited"
        other = await open_conversation(c)
        assert (await say(c, other, "hello"))["replies"]  # another conversation is not limited
        stored = (await c.get(f"/api/conversations/{cid}")).json()["messages"]
        assert [m["text"] for m in stored if m["role"] == "customer"] == [
            "hello 0",
            "hello 1",
            "hello 2",
        ]


def test_that_the_rate_limiter_refills_over_time() -> None:
    from frontdesk.api.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.hit("k", 2) for _ in range(2)] == [None, None]
    wait = limiter.hit("k", 2)
    assert wait is not None and 29 < wait <= 30
    now[0] += 30
    assert limiter.hit("k", 2) is None
    assert limiter.hit("other", 0) is None  # 0: no limit


async def test_that_pages_carry_security_headers(client: httpx.AsyncClient) -> None:
    console = await client.get("/console")
    assert "frame-ancestors 'none'" in console.headers["content-security-policy"]
    assert "script-src 'self'" in console.headers["content-security-policy"]
    page = await client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    health = await client.get("/health")
    assert health.headers["x-content-type-options"] == "nosniff"
