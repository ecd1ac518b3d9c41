"""Ports: the interfaces that adapters implement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import numpy as np
import numpy.typing as npt

from frontdesk.core.types import ConversationId

Vector = npt.NDArray[np.float32]


class Embedder(ABC):
    """Turns sentences into L2-normalised vectors."""

    dimension: int
    name: str

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> Vector:
        """Embed a batch synchronously (CPU-bound; call from a worker thread)."""

    @abstractmethod
    async def embed_one(self, text: str) -> Vector:
        """Embed one query without blocking the event loop."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release threads or sessions held by the embedder."""


class Bus(ABC):
    """Publishes conversation events to the sockets that follow a conversation."""

    @abstractmethod
    async def publish(self, conversation_id: ConversationId, event: dict[str, Any]) -> None:
        """Deliver an event to every current subscriber of the conversation."""

    @abstractmethod
    def subscribe(
        self, conversation_id: ConversationId
    ) -> AbstractAsyncContextManager[Subscription]:
        """Follow a conversation: events published from now on, until the context exits."""


class Subscription(ABC):
    """A live feed of one conversation's events."""

    @abstractmethod
    async def get(self) -> dict[str, Any]:
        """The next event, waiting for one if none is queued."""
