"""Context stage: what the later stages know about the conversation so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from frontdesk.core.types import Conversation, Message


@dataclass(frozen=True, slots=True)
class Context:
    conversation: Conversation
    history: tuple[Message, ...]
    state: dict[str, Any] = field(default_factory=dict)


def build(conversation: Conversation, recent: Sequence[Message], turns: int) -> Context:
    """The last ``turns`` messages (oldest first) and the conversation's carried state."""
    history = tuple(recent[-turns:]) if turns else ()
    return Context(conversation=conversation, history=history, state=dict(conversation.state))
