"""REST routes: health, conversations, messages."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from frontdesk.actions.conversations import (
    do_create_conversation,
    do_receive_customer_message,
    get_conversation_with_messages,
)
from frontdesk.api.schemas import (
    ConversationCreated,
    ConversationOut,
    Health,
    NewConversation,
    NewMessage,
    TurnOut,
)
from frontdesk.core.types import ConversationId
from frontdesk.service import Frontdesk


async def get_frontdesk(request: Request) -> Frontdesk:
    fd: Frontdesk = request.app.state.frontdesk
    return fd


FrontdeskDep = Annotated[Frontdesk, Depends(get_frontdesk)]

router = APIRouter()

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "Unknown conversation"},
    413: {"description": "Message or body over the size limit"},
    422: {"description": "Empty or malformed request"},
}


@router.get("/health", response_model=Health, tags=["service"])
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post(
    "/api/conversations",
    status_code=status.HTTP_201_CREATED,
    response_model=ConversationCreated,
    tags=["conversations"],
    responses={422: ERRORS[422]},
)
async def create_conversation(
    fd: FrontdeskDep, body: NewConversation | None = None
) -> dict[str, Any]:
    conversation = await do_create_conversation(fd, (body or NewConversation()).channel)
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "mode": conversation.mode.value,
        "status": conversation.status.value,
    }


@router.get(
    "/api/conversations/{conversation_id}",
    response_model=ConversationOut,
    tags=["conversations"],
    responses={404: ERRORS[404]},
)
async def read_conversation(conversation_id: str, fd: FrontdeskDep) -> dict[str, Any]:
    conversation, messages = await get_conversation_with_messages(fd, conversation_id)
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "mode": conversation.mode.value,
        "status": conversation.status.value,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [m.public() for m in messages],
    }


@router.post(
    "/api/conversations/{conversation_id}/messages",
    response_model=TurnOut,
    tags=["conversations"],
    responses=ERRORS,
)
async def post_message(conversation_id: str, body: NewMessage, fd: FrontdeskDep) -> Response:
    """Send a customer message; the bot's reply (if the bot is serving) comes back at once.

    The response header ``Server-Timing: turn;dur=MS`` gives the server-side time of the turn.
    """
    result = await do_receive_customer_message(
        fd, ConversationId(conversation_id), body.text, body.client_message_id
    )
    content = {
        "message": result.message.public(),
        "replies": [reply.public() for reply in result.replies],
        "handoff": result.handoff,
        "duplicate": result.duplicate,
    }
    # Built from typed domain records: returned as is, without a second validation pass.
    return JSONResponse(content, headers={"Server-Timing": f"turn;dur={result.server_ms:.2f}"})
