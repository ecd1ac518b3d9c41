"""The in-process bus: one queue per live socket, for a single worker."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from frontdesk.core.ports import Bus, Subscription
from frontdesk.core.types import ConversationId

QUEUE_LIMIT = 1000


class _QueueSubscription(Subscription):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_LIMIT)
        self.overflowed = False

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()


class LocalBus(Bus):
    def __init__(self) -> None:
        self._subscribers: dict[ConversationId, set[_QueueSubscription]] = defaultdict(set)

    async def publish(self, conversation_id: ConversationId, event: dict[str, Any]) -> None:
        for subscription in list(self._subscribers.get(conversation_id, ())):
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                # A socket this far behind resumes from the database when it reconnects.
                subscription.overflowed = True

    @asynccontextmanager
    async def _subscribe(self, conversation_id: ConversationId) -> AsyncIterator[Subscription]:
        subscription = _QueueSubscription()
        self._subscribers[conversation_id].add(subscription)
        try:
            yield subscription
        finally:
            followers = self._subscribers.get(conversation_id)
            if followers is not None:
                followers.discard(subscription)
                if not followers:
                    del self._subscribers[conversation_id]

    def subscribe(
        self, conversation_id: ConversationId
    ) -> AbstractAsyncContextManager[Subscription]:
        return self._subscribe(conversation_id)
