"""Context stage: what the later stages know about the conversation so far."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from frontdesk.core.types import Conversation, Message, Role


@dataclass(frozen=True, slots=True)
class Context:
    conversation: Conversation
    history: tuple[Message, ...]
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def last_bot_message(self) -> Message | None:
        for message in reversed(self.history):
            if message.role is Role.BOT:
                return message
        return None


def build(conversation: Conversation, recent: Sequence[Message], turns: int) -> Context:
    """The last ``turns`` messages (oldest first) and the conversation's carried state."""
    history = tuple(recent[-turns:]) if turns else ()
    return Context(conversation=conversation, history=history, state=dict(conversation.state))
