"""Request and response bodies of the public API (documented at /docs)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewConversation(_In):
    channel: str = Field(default="web", min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")


class ConversationCreated(BaseModel):
    id: str
    channel: str
    mode: Literal["bot", "human"]
    status: Literal["open", "waiting", "resolved"]


class NewMessage(_In):
    # Length is checked by the handler so that an oversized message gets 413, not 422.
    text: str = Field(description="The customer's message (at most max_message_chars).")
    client_message_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="Idempotency key: a repeated id stores the message once, same reply back.",
    )


class CitationOut(BaseModel):
    id: str
    title: str


class MessageOut(BaseModel):
    id: str
    conversation_id: str
    seq: int
    role: Literal["customer", "bot", "agent", "system"]
    text: str
    client_message_id: str | None
    reply_to: str | None
    created_at: str
    citations: list[CitationOut]


class TurnOut(BaseModel):
    message: MessageOut
    replies: list[MessageOut]
    handoff: bool
    duplicate: bool = Field(description="True when this client_message_id was seen before.")


class ConversationOut(BaseModel):
    id: str
    channel: str
    mode: Literal["bot", "human"]
    status: Literal["open", "waiting", "resolved"]
    created_at: str
    updated_at: str
    messages: list[MessageOut]
    csat: CsatOut | None = Field(default=None, description="The customer's rating, once given.")


class CsatIn(_In):
    # The range is checked by the handler, for one error shape with the rest of the rating.
    score: int = Field(description="1 (very poor) to 5 (excellent).")
    comment: str | None = Field(default=None, description="Optional, at most 1000 characters.")


class CsatOut(BaseModel):
    conversation_id: str
    score: int
    comment: str | None = Field(description="As stored: personal data replaced by tokens.")
    resolved_by: Literal["bot", "agent", "customer"]
    duplicate: bool = Field(description="True when this same rating was stored before.")


class ConversationStatusOut(BaseModel):
    id: str
    mode: Literal["bot", "human"]
    status: Literal["open", "waiting", "resolved"]


class CsatWording(BaseModel):
    question: str
    comment: str
    thanks: str


class WidgetConfig(BaseModel):
    assistant_name: str
    company_name: str
    greeting: str
    csat: CsatWording


class Health(BaseModel):
    status: Literal["ok"]
