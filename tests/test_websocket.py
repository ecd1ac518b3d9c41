"""Live chat over the WebSocket: replies arrive live, a reconnect resumes without loss or
duplicates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient, WebSocketTestSession
from tests.conftest import SharedEmbedder

from frontdesk.api.app import create_app
from frontdesk.config import Settings
from frontdesk.service import Frontdesk


@pytest.fixture
def live(settings: Settings, shared_embedder: SharedEmbedder) -> Iterator[TestClient]:
    app = create_app(frontdesk=Frontdesk(settings, embedder=shared_embedder))
    with TestClient(app) as client:
        yield client


def _messages_until(ws: WebSocketTestSession, count: int) -> list[dict[str, Any]]:
    received: list[dict[str, Any]] = []
    while len(received) < count:
        frame = ws.receive_json()
        if frame["type"] == "message":
            received.append(frame["message"])
    return received


def test_that_a_message_sent_on_the_socket_comes_back_with_the_reply(live: TestClient) -> None:
    conversation_id = live.post("/api/conversations", json={"channel": "web"}).json()["id"]
    with live.websocket_connect(f"/api/conversations/{conversation_id}/ws") as ws:
        assert ws.receive_json() == {"type": "conversation", "mode": "bot", "status": "open"}
        ws.send_json(
            {"type": "message", "text": "How long do refunds take?", "client_message_id": "a"}
        )
        echo, reply = _messages_until(ws, 2)
    assert echo["role"] == "customer" and echo["client_message_id"] == "a" and echo["seq"] == 1
    assert reply["role"] == "bot" and reply["seq"] == 2
    assert reply["citations"][0]["id"] == "refunds"


def test_that_a_reconnect_resumes_after_the_last_seen_message_without_duplicates(
    live: TestClient,
) -> None:
    conversation_id = live.post("/api/conversations", json={"channel": "web"}).json()["id"]
    url = f"/api/conversations/{conversation_id}/ws"
    with live.websocket_connect(url) as ws:
        ws.receive_json()
        ws.send_json({"type": "message", "text": "hi", "client_message_id": "1"})
        seen = _messages_until(ws, 2)
    # While the socket is down, the customer sends over REST (as the widget's fallback does).
    live.post(
        f"/api/conversations/{conversation_id}/messages",
        json={"text": "Do gift cards expire?", "client_message_id": "2"},
    )
    with live.websocket_connect(f"{url}?after={seen[-1]['seq']}") as ws:
        ws.receive_json()
        backlog = _messages_until(ws, 2)
        # A resend of an already stored message (same client_message_id) adds nothing new.
        ws.send_json({"type": "message", "text": "Do gift cards expire?", "client_message_id": "2"})
        ws.send_json({"type": "message", "text": "thanks", "client_message_id": "3"})
        live_frames = _messages_until(ws, 2)
    assert [m["seq"] for m in seen] == [1, 2]
    assert [m["seq"] for m in backlog] == [3, 4]
    assert [m["seq"] for m in live_frames] == [5, 6]
    assert live_frames[0]["client_message_id"] == "3"
    stored = live.get(f"/api/conversations/{conversation_id}").json()["messages"]
    assert [m["seq"] for m in stored] == [1, 2, 3, 4, 5, 6]


def test_that_bad_frames_get_an_error_and_the_socket_stays_open(live: TestClient) -> None:
    conversation_id = live.post("/api/conversations", json={"channel": "web"}).json()["id"]
    with live.websocket_connect(f"/api/conversations/{conversation_id}/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "dance"})
        assert ws.receive_json()["error"]["code"] == "invalid_frame"
        ws.send_text("{not json")
        assert ws.receive_json()["error"]["message"] == "the frame is not JSON"
        ws.send_bytes(b"\x00\x01")
        assert ws.receive_json()["error"]["message"] == "frames must be JSON text"
        ws.send_json(["a", "list"])
        assert ws.receive_json()["error"]["code"] == "invalid_frame"
        ws.send_json({"type": "message", "text": "x" * 4001, "client_message_id": "big"})
        error = ws.receive_json()
        assert error["error"]["code"] == "message_too_long"
        assert error["client_message_id"] == "big"
        ws.send_json({"type": "message", "text": "   "})
        assert ws.receive_json()["error"]["code"] == "invalid_message"
        ws.send_json({"type": "message", "text": 5})
        assert ws.receive_json()["error"]["code"] == "invalid_message"
        ws.send_json({"type": "message", "text": "hello", "client_message_id": "ok"})
        assert _messages_until(ws, 2)[1]["role"] == "bot"
    stored = live.get(f"/api/conversations/{conversation_id}").json()["messages"]
    assert len(stored) == 2


def test_that_an_unknown_conversation_socket_is_told_and_closed(live: TestClient) -> None:
    with live.websocket_connect("/api/conversations/missing/ws") as ws:
        frame = ws.receive_json()
        assert frame["error"]["code"] == "conversation_not_found"
        message = ws.receive()
        assert message["type"] == "websocket.close" and message["code"] == 4404


def test_that_a_handoff_is_announced_on_the_socket(live: TestClient) -> None:
    conversation_id = live.post("/api/conversations", json={"channel": "web"}).json()["id"]
    with live.websocket_connect(f"/api/conversations/{conversation_id}/ws") as ws:
        ws.receive_json()
        ws.send_json({"type": "message", "text": "I need a real person", "client_message_id": "h"})
        _messages_until(ws, 2)
        assert ws.receive_json() == {"type": "conversation", "mode": "human", "status": "waiting"}


def test_that_too_many_messages_on_the_socket_get_a_rate_limit_error(
    settings: Settings, shared_embedder: SharedEmbedder
) -> None:
    limited = settings.model_copy(update={"rate_limit_per_conversation": 2})
    app = create_app(frontdesk=Frontdesk(limited, embedder=shared_embedder))
    with TestClient(app) as live:
        conversation_id = live.post("/api/conversations", json={"channel": "web"}).json()["id"]
        with live.websocket_connect(f"/api/conversations/{conversation_id}/ws") as ws:
            ws.receive_json()
            for n in range(2):
                ws.send_json({"type": "message", "text": f"hi {n}", "client_message_id": str(n)})
                _messages_until(ws, 2)
            ws.send_json({"type": "message", "text": "more", "client_message_id": "x"})
            frame = ws.receive_json()
            while frame["type"] != "error":
                frame = ws.receive_json()
        assert frame["error"]["code"] == "rate_limited" and frame["client_message_id"] == "x"
