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
from frontdesk.actions.satisfaction import csat_of, do_end_conversation, do_submit_csat
from frontdesk.actions.vault import restore_for_customer
from frontdesk.api.schemas import (
    ConversationCreated,
    ConversationOut,
    ConversationStatusOut,
    CsatIn,
    CsatOut,
    Health,
    NewConversation,
    NewMessage,
    TurnOut,
    WidgetConfig,
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
    rating = await csat_of(fd, conversation_id)
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "mode": conversation.mode.value,
        "status": conversation.status.value,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": await restore_for_customer(fd, conversation_id, [m.public() for m in messages]),
        "csat": None if rating is None else rating.public(),
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
    # The customer is shown their own values where the stored texts hold tokens.
    shown = await restore_for_customer(
        fd, conversation_id, [result.message.public(), *(r.public() for r in result.replies)]
    )
    content = {
        "message": shown[0],
        "replies": shown[1:],
        "handoff": result.handoff,
        "duplicate": result.duplicate,
    }
    # Built from typed domain records: returned as is, without a second validation pass.
    return JSONResponse(content, headers={"Server-Timing": f"turn;dur={result.server_ms:.2f}"})


@router.post(
    "/api/conversations/{conversation_id}/end",
    response_model=ConversationStatusOut,
    tags=["conversations"],
    responses={404: ERRORS[404]},
)
async def end_conversation(conversation_id: str, fd: FrontdeskDep) -> dict[str, Any]:
    """The customer ends the chat: the conversation is resolved (then it can be rated).
    Ending a resolved conversation again changes nothing."""
    conversation = await do_end_conversation(fd, conversation_id)
    return {
        "id": conversation.id,
        "mode": conversation.mode.value,
        "status": conversation.status.value,
    }


@router.post(
    "/api/conversations/{conversation_id}/csat",
    status_code=status.HTTP_201_CREATED,
    response_model=CsatOut,
    tags=["conversations"],
    responses={
        404: ERRORS[404],
        409: {"description": "Not resolved yet, or rated already with another score"},
        413: {"description": "Comment over 1000 characters"},
        422: {"description": "Score not from 1 to 5"},
    },
)
async def rate_conversation(
    conversation_id: str, body: CsatIn, fd: FrontdeskDep, response: Response
) -> dict[str, Any]:
    """Rate a resolved conversation once (1 to 5, optional comment). The same rating sent
    again returns the stored one with ``duplicate: true`` and status 200."""
    rating = await do_submit_csat(fd, conversation_id, body.score, body.comment)
    if rating.duplicate:
        response.status_code = status.HTTP_200_OK
    return rating.public()


@router.get("/api/widget/config", response_model=WidgetConfig, tags=["service"])
async def widget_config(fd: FrontdeskDep) -> dict[str, Any]:
    """The wording the widget shows: names, greeting and the satisfaction survey."""
    guidelines = fd.guidelines
    texts = guidelines.texts
    return {
        "assistant_name": guidelines.assistant_name,
        "company_name": guidelines.company_name,
        "greeting": texts.greeting,
        "csat": {
            "question": texts.csat_question,
            "comment": texts.csat_comment,
            "thanks": texts.csat_thanks,
        },
    }
