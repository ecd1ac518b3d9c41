"""Live chat over a WebSocket that resumes after a reconnect without loss or duplicates.

The client connects to ``/api/conversations/{id}/ws?after=N`` with the highest message
``seq`` it has shown. The server subscribes to the conversation first, then sends every stored
message with a higher seq, then live ones; a seq already sent is never sent again.

While a model writes a reply, ``{"type": "draft", "reply_to": ID, "index": I, "text": ...}``
frames carry its sentences as each passes the guard; they are not stored and not replayed.
The finished reply (a ``message`` frame with the same ``reply_to``) replaces the draft.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect

from frontdesk.actions.conversations import (
    ConversationNotFound,
    InvalidMessage,
    MessageTooLong,
    do_receive_customer_message,
    get_conversation_with_messages,
)
from frontdesk.actions.vault import restore_for_customer
from frontdesk.core.types import ConversationId
from frontdesk.service import Frontdesk

router = APIRouter()

CLOSE_NOT_FOUND = 4404


def _error(code: str, message: str, client_message_id: Any = None) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"code": code, "message": message},
        "client_message_id": client_message_id,
    }


async def _handle_frame(fd: Frontdesk, websocket: WebSocket, conversation_id: str) -> None:
    received = await websocket.receive()
    if received["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(received.get("code", 1000))
    raw = received.get("text")
    if raw is None:
        await websocket.send_json(_error("invalid_frame", "frames must be JSON text"))
        return
    try:
        frame = json.loads(raw)
    except ValueError:
        await websocket.send_json(_error("invalid_frame", "the frame is not JSON"))
        return
    if not isinstance(frame, dict) or frame.get("type") != "message":
        await websocket.send_json(_error("invalid_frame", 'expected {"type": "message", ...}'))
        return
    text = frame.get("text")
    client_message_id = frame.get("client_message_id")
    if not isinstance(text, str) or (
        client_message_id is not None
        and (not isinstance(client_message_id, str) or not 0 < len(client_message_id) <= 128)
    ):
        await websocket.send_json(
            _error(
                "invalid_message",
                "text must be a string and client_message_id a string of 1-128 characters",
                client_message_id if isinstance(client_message_id, str) else None,
            )
        )
        return
    limiter = getattr(websocket.app.state, "rate_limiter", None)
    wait = (
        limiter.hit(f"conversation:{conversation_id}", fd.settings.rate_limit_per_conversation)
        if limiter is not None
        else None
    )
    if wait is not None:
        await websocket.send_json(
            _error(
                "rate_limited",
                f"too many messages; retry in {math.ceil(wait)} s",
                client_message_id,
            )
        )
        return
    try:
        result = await do_receive_customer_message(
            fd, ConversationId(conversation_id), text, client_message_id
        )
    except MessageTooLong as exc:
        await websocket.send_json(_error("message_too_long", str(exc), client_message_id))
    except InvalidMessage as exc:
        await websocket.send_json(_error("invalid_message", str(exc), client_message_id))
    else:
        if result.duplicate:
            # A resend after a reconnect: echo what is stored. Every socket skips seqs it sent.
            for message in (result.message, *result.replies):
                await fd.bus.publish(
                    ConversationId(conversation_id),
                    {"type": "message", "message": message.public()},
                )


@router.websocket("/api/conversations/{conversation_id}/ws")
async def conversation_socket(
    websocket: WebSocket, conversation_id: str, after: int = Query(default=0, ge=0)
) -> None:
    fd: Frontdesk = websocket.app.state.frontdesk
    await websocket.accept()
    async with fd.bus.subscribe(ConversationId(conversation_id)) as subscription:
        try:
            conversation, backlog = await get_conversation_with_messages(fd, conversation_id, after)
        except ConversationNotFound as exc:
            await websocket.send_json(_error("conversation_not_found", str(exc)))
            await websocket.close(CLOSE_NOT_FOUND)
            return
        last_sent = after
        await websocket.send_json(
            {
                "type": "conversation",
                "mode": conversation.mode.value,
                "status": conversation.status.value,
            }
        )
        # The customer is shown their own values where the stored texts hold tokens.
        shown = await restore_for_customer(fd, conversation_id, [m.public() for m in backlog])
        for message in shown:
            await websocket.send_json({"type": "message", "message": message})
            last_sent = message["seq"]

        async def forward() -> None:
            nonlocal last_sent
            while True:
                event = await subscription.get()
                if event.get("type") == "message":
                    seq = int(event["message"]["seq"])
                    if seq <= last_sent:
                        continue
                    last_sent = seq
                    (message,) = await restore_for_customer(fd, conversation_id, [event["message"]])
                    event = {**event, "message": message}
                elif event.get("type") == "draft":
                    # A model's reply as it is written (each piece already passed the guard);
                    # never stored or replayed: the finished reply follows as a message.
                    (event,) = await restore_for_customer(fd, conversation_id, [event])
                await websocket.send_json(event)

        async def receive() -> None:
            while True:
                await _handle_frame(fd, websocket, conversation_id)

        tasks = [asyncio.create_task(forward()), asyncio.create_task(receive())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.exception()
                if failure is not None and not isinstance(failure, WebSocketDisconnect):
                    raise failure
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                    await task
