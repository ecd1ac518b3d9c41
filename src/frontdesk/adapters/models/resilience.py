"""Timeouts, retries and a circuit breaker around any ``ChatModel``.

``ResilientChatModel(inner, ...)`` is itself a ``ChatModel``; ``stream(request)`` returns a
``TimedStream``: iterate it like any stream, then read ``stream.timing`` (a ``CallTiming``)
for the model's own share of the turn's latency::

    stream = model.stream(request)
    try:
        async with stream:  # closes the call if the loop stops early
            async for chunk in stream:
                ...  # time spent here, by the consumer, is not counted
    except ModelUnavailable:
        ...  # stream.timing is filled in on failure too
    stream.timing.first_chunk_seconds, stream.timing.model_seconds, stream.timing.outcome

``complete_timed(request)`` returns ``(ChatReply, CallTiming)`` for a caller that wants the
whole reply at once.

The rules, for one call:

- the circuit open (``model_circuit_failures`` failed calls in a row, less than
  ``model_circuit_seconds`` ago): ``ModelUnavailable("circuit_open")`` at once, the inner model
  is not called. Once that time has passed, one trial call goes through (half-open): its success
  closes the circuit, its failure opens it again.
- each attempt must yield its first chunk within ``first_token_seconds``; the whole call (the
  time spent waiting on the inner model, and the backoff between attempts; not the time the
  consumer spends on the chunks it was given) must end within ``timeout_seconds``: otherwise
  ``ModelUnavailable("timeout")``.
- a failure before the first chunk was yielded is retried up to ``retries`` times, after 0.5 s,
  1 s, 2 s ... (plus up to 10 % jitter), unless the inner model says retrying cannot help
  (``ModelUnavailable.retryable``). A failure after chunks were yielded is never retried (the
  consumer already has part of a reply): ``ModelUnavailable("interrupted")``.
- a call that ends in ``ModelUnavailable`` counts as one failure for the circuit, however many
  attempts it made; a call that ends normally counts as a success. A call the consumer abandons
  (stops iterating, is cancelled) counts as neither.
- any other exception from the inner model becomes ``ModelUnavailable("error")`` (logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frontdesk.core.chat import ChatChunk, ChatModel, ChatReply, ChatRequest, ModelUnavailable

if TYPE_CHECKING:
    from frontdesk.config import Settings

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
BACKOFF_SECONDS = 0.5
JITTER = 0.1


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed; open after ``failures`` failures in a row; half-open ``reset_seconds`` later,
    letting one trial call through (``allow``); closed again when it succeeds, open again when
    it fails. ``clock`` (monotonic seconds) can be replaced in tests."""

    def __init__(
        self, failures: int = 3, reset_seconds: float = 30.0, clock: Clock = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("failures must be at least 1")
        self.failures = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.consecutive_failures = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self.clock() - self._opened_at >= self.reset_seconds:
            return CircuitState.HALF_OPEN
        return CircuitState.OPEN

    def allow(self) -> bool:
        """Whether a call may go to the model now; in half-open, True for the one trial."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return True
        return False

    def record_success(self) -> None:
        self.consecutive_failures = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self.consecutive_failures += 1
        if self._trial_running or self.consecutive_failures >= self.failures:
            self._opened_at = self.clock()
        self._trial_running = False

    def release(self) -> None:
        """A call ended without a verdict (abandoned): let the next call be the trial."""
        self._trial_running = False


@dataclass(slots=True)
class CallTiming:
    """Where one call's time went, in seconds. Filled as the stream is consumed; final once it
    is exhausted or has raised.

    ``first_chunk_seconds``: from the call's start to its first chunk (failed attempts and
    backoff included; None if no chunk came). ``model_seconds``: time spent waiting on the inner
    model, backoff included, consumer's time excluded. ``attempts``: requests made (0 when the
    circuit was open). ``outcome``: ``"ok"``, a ``ModelUnavailable`` reason, or None while
    running or when abandoned."""

    first_chunk_seconds: float | None = None
    model_seconds: float = 0.0
    attempts: int = 0
    outcome: str | None = None


class TimedStream(AsyncIterator[ChatChunk]):
    """The stream of one call, with its ``timing``."""

    def __init__(self, chunks: AsyncIterator[ChatChunk], timing: CallTiming) -> None:
        self._chunks = chunks
        self.timing = timing

    def __aiter__(self) -> TimedStream:
        return self

    async def __anext__(self) -> ChatChunk:
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        await _aclose(self._chunks)

    async def __aenter__(self) -> TimedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _aclose(iterator: AsyncIterator[ChatChunk]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class ResilientChatModel(ChatModel):
    """``inner`` with timeouts, retries and a circuit breaker (see the module). ``last_timing``
    is the timing of the most recent call started (with concurrent calls, prefer the
    ``timing`` of the ``TimedStream`` you iterate)."""

    def __init__(
        self,
        inner: ChatModel,
        *,
        first_token_seconds: float = 10.0,
        timeout_seconds: float = 30.0,
        retries: int = 1,
        breaker: CircuitBreaker | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.model = inner.model
        self.first_token_seconds = first_token_seconds
        self.timeout_seconds = timeout_seconds
        self.retries = retries
        self.breaker = breaker if breaker is not None else CircuitBreaker()
        self._sleep = sleep
        self._clock = clock  # measures waits; the breaker has its own clock
        self._jitter = jitter  # in [0, 1)
        self.last_timing: CallTiming | None = None

    @classmethod
    def from_settings(cls, inner: ChatModel, settings: Settings) -> ResilientChatModel:
        return cls(
            inner,
            first_token_seconds=settings.model_first_token_seconds,
            timeout_seconds=settings.model_timeout_seconds,
            retries=settings.model_retries,
            breaker=CircuitBreaker(settings.model_circuit_failures, settings.model_circuit_seconds),
        )

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (1, 2, ...)."""
        return BACKOFF_SECONDS * 2.0 ** (retry - 1) * (1 + JITTER * self._jitter())

    def stream(self, request: ChatRequest) -> TimedStream:
        timing = CallTiming()
        self.last_timing = timing
        return TimedStream(self._call(request, timing), timing)

    async def complete_timed(self, request: ChatRequest) -> tuple[ChatReply, CallTiming]:
        """The whole reply with this call's timing. (On ``ModelUnavailable`` the timing is
        lost here: iterate ``stream()`` instead to read it after a failure too.)"""
        reply = ChatReply()
        async with self.stream(request) as stream:
            async for chunk in stream:
                reply.add(chunk)
        return reply, stream.timing

    async def _call(self, request: ChatRequest, timing: CallTiming) -> AsyncIterator[ChatChunk]:
        if not self.breaker.allow():
            timing.outcome = "circuit_open"
            raise ModelUnavailable("circuit_open", f"{self.name} failed too often; not called")
        started = self._clock()
        budget = _Budget(self.timeout_seconds)
        yielded = False
        verdict = False
        try:
            while True:
                timing.attempts += 1
                try:
                    async with contextlib.aclosing(
                        self._attempt(request, timing, budget)
                    ) as chunks:
                        async for chunk in chunks:
                            if not yielded:
                                yielded = True
                                timing.first_chunk_seconds = self._clock() - started
                            yield chunk
                    break
                except ModelUnavailable as exc:
                    if yielded:
                        raise ModelUnavailable("interrupted", exc.detail or exc.reason) from exc
                    if timing.attempts > self.retries or not exc.retryable:
                        raise
                    pause = self.backoff(timing.attempts)
                    if pause >= budget.left:
                        raise ModelUnavailable(
                            "timeout", f"no reply within {self.timeout_seconds:g}s"
                        ) from exc
                    log.info("model call failed (%s), retrying in %.2fs", exc, pause)
                    await self._sleep(pause)
                    budget.spent += pause
                    timing.model_seconds += pause
        except ModelUnavailable as exc:
            verdict = True
            timing.outcome = exc.reason
            self.breaker.record_failure()
            raise
        else:
            verdict = True
            timing.outcome = "ok"
            self.breaker.record_success()
        finally:
            if not verdict:
                self.breaker.release()

    async def _attempt(
        self, request: ChatRequest, timing: CallTiming, budget: _Budget
    ) -> AsyncGenerator[ChatChunk, None]:
        """One request to the inner model, each wait bounded; failures as ModelUnavailable."""
        chunks = self.inner.stream(request)
        attempt_started = self._clock()
        first = True
        try:
            while True:
                waited_from = self._clock()
                limit = budget.left
                first_token_bound = False
                if first:
                    first_left = self.first_token_seconds - (waited_from - attempt_started)
                    first_token_bound = first_left < limit
                    limit = min(limit, first_left)
                try:
                    async with asyncio.timeout(max(limit, 0.0)):
                        chunk = await anext(chunks)
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    if first_token_bound:
                        detail = f"no first token within {self.first_token_seconds:g}s"
                    else:
                        detail = f"no reply within {self.timeout_seconds:g}s"
                    raise ModelUnavailable("timeout", detail) from exc
                except ModelUnavailable:
                    raise
                except Exception as exc:
                    log.warning("the model %s failed unexpectedly", self.name, exc_info=True)
                    raise ModelUnavailable("error", f"{type(exc).__name__}: {exc}"[:200]) from exc
                finally:
                    waited = self._clock() - waited_from
                    budget.spent += waited
                    timing.model_seconds += waited
                first = False
                yield chunk
        finally:
            await _aclose(chunks)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass(slots=True)
class _Budget:
    total: float
    spent: float = 0.0

    @property
    def left(self) -> float:
        return self.total - self.spent
