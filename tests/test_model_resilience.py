"""ResilientChatModel and CircuitBreaker around the real OpenAI-compatible adapter, against
a scripted server: timeouts, retries before the first token only, the circuit, the timing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import model_servers
from frontdesk.adapters.models.openai_service import OpenAIChatModel
from frontdesk.adapters.models.resilience import (
    CircuitBreaker,
    CircuitState,
    ResilientChatModel,
)
from frontdesk.core.chat import ChatChunk, ModelUnavailable, Usage
from model_servers import (
    REQUEST,
    CloseLater,
    FakeClock,
    RecordedSleeps,
    ScriptedModelServer,
    ScriptedReply,
    collect,
)

scripted_server = model_servers.scripted_server
close_later = model_servers.close_later


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.state  # (read through a call: mypy would narrow the property)


def resilient(
    server: ScriptedModelServer, close_later: CloseLater, **kwargs: Any
) -> ResilientChatModel:
    inner = OpenAIChatModel(model="gpt-test", base_url=server.url)
    return close_later(ResilientChatModel(inner, **kwargs))


async def test_that_a_slow_first_token_times_out(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(text="Sorry for the wait.", first_delay=5))
    model = resilient(scripted_server, close_later, first_token_seconds=0.3, retries=0)
    started = time.monotonic()
    stream = model.stream(REQUEST)
    with pytest.raises(ModelUnavailable) as info:
        await collect(stream)

    assert info.value.reason == "timeout"
    assert "first token" in info.value.detail
    assert time.monotonic() - started < 3
    assert stream.timing.outcome == "timeout"
    assert stream.timing.first_chunk_seconds is None


async def test_that_a_server_that_never_answers_hits_the_total_timeout(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(hang=True))
    model = resilient(
        scripted_server, close_later, first_token_seconds=5, timeout_seconds=0.4, retries=0
    )
    with pytest.raises(ModelUnavailable) as info:
        await collect(model.stream(REQUEST))
    assert info.value.reason == "timeout"


async def test_that_a_stream_dropped_midway_is_interrupted_and_not_retried(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    reply = ScriptedReply(text="one two three four five", drop_after=2, chunk_delay=0.02)
    scripted_server.script(reply, ScriptedReply(text="never sent"))
    sleeps = RecordedSleeps()
    model = resilient(scripted_server, close_later, retries=3, sleep=sleeps)
    chunks: list[ChatChunk] = []
    stream = model.stream(REQUEST)
    with pytest.raises(ModelUnavailable) as info:
        async for chunk in stream:
            chunks.append(chunk)

    assert info.value.reason == "interrupted"
    assert [c.text for c in chunks] == ["one", " two"]
    assert len(scripted_server.requests) == 1
    assert sleeps.delays == []
    assert (stream.timing.attempts, stream.timing.outcome) == (1, "interrupted")


async def test_that_a_failure_before_the_first_token_is_retried_with_backoff(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(
        ScriptedReply(status=503), ScriptedReply(status=500), ScriptedReply(text="Found it.")
    )
    sleeps = RecordedSleeps()
    model = resilient(scripted_server, close_later, retries=2, sleep=sleeps)
    stream = model.stream(REQUEST)
    chunks = await collect(stream)

    assert "".join(c.text for c in chunks) == "Found it."
    assert len(scripted_server.requests) == 3
    assert len(sleeps.delays) == 2
    assert 0.5 <= sleeps.delays[0] <= 0.55
    assert 1.0 <= sleeps.delays[1] <= 1.1
    assert (stream.timing.attempts, stream.timing.outcome) == (3, "ok")
    assert state(model.breaker) is CircuitState.CLOSED


async def test_that_a_refusal_that_would_repeat_is_not_retried(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(status=401), ScriptedReply(text="never sent"))
    model = resilient(scripted_server, close_later, retries=2, sleep=RecordedSleeps())
    with pytest.raises(ModelUnavailable):
        await collect(model.stream(REQUEST))
    assert len(scripted_server.requests) == 1


async def test_that_the_circuit_opens_after_failures_then_lets_one_trial_through(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=2, reset_seconds=30, clock=clock)
    model = resilient(scripted_server, close_later, retries=0, breaker=breaker)
    scripted_server.script(ScriptedReply(status=500), ScriptedReply(status=500))
    for _ in range(2):
        with pytest.raises(ModelUnavailable):
            await collect(model.stream(REQUEST))
    assert state(breaker) is CircuitState.OPEN

    stream = model.stream(REQUEST)
    with pytest.raises(ModelUnavailable) as info:
        await collect(stream)
    assert info.value.reason == "circuit_open"
    assert len(scripted_server.requests) == 2  # the server was not asked
    assert stream.timing.attempts == 0

    clock.now += 30
    assert state(breaker) is CircuitState.HALF_OPEN
    scripted_server.script(ScriptedReply(status=500))  # the trial fails: open again
    with pytest.raises(ModelUnavailable):
        await collect(model.stream(REQUEST))
    assert state(breaker) is CircuitState.OPEN
    with pytest.raises(ModelUnavailable, match="circuit_open"):
        await collect(model.stream(REQUEST))
    assert len(scripted_server.requests) == 3

    clock.now += 30
    scripted_server.script(ScriptedReply(text="Back again."))
    reply = await model.complete(REQUEST)
    assert reply.text == "Back again."
    assert state(breaker) is CircuitState.CLOSED
    assert len(scripted_server.requests) == 4


def test_that_a_half_open_circuit_lets_only_one_trial_at_a_time() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failures=1, reset_seconds=5, clock=clock)
    breaker.record_failure()
    assert not breaker.allow()
    clock.now += 5
    assert breaker.allow()
    assert not breaker.allow()  # a second caller while the trial runs
    breaker.release()  # the trial was abandoned
    assert breaker.allow()
    breaker.record_success()
    assert state(breaker) is CircuitState.CLOSED


async def test_that_timing_counts_the_models_time_not_the_consumers(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(text="a b c d", first_delay=0.3, chunk_delay=0.05))
    model = resilient(scripted_server, close_later)
    async with model.stream(REQUEST) as stream:
        async for _ in stream:
            await asyncio.sleep(0.2)  # a slow consumer

    timing = stream.timing
    assert timing.outcome == "ok"
    assert timing.first_chunk_seconds is not None and 0.3 <= timing.first_chunk_seconds < 1.5
    assert timing.first_chunk_seconds <= timing.model_seconds < 1.5  # not the 1 s of sleeping
    assert model.last_timing is timing


async def test_that_a_consumer_that_stops_early_leaves_the_circuit_alone(
    scripted_server: ScriptedModelServer, close_later: CloseLater
) -> None:
    scripted_server.script(ScriptedReply(text="a b c d e f", chunk_delay=0.05))
    model = resilient(scripted_server, close_later, breaker=CircuitBreaker(failures=1))
    async with model.stream(REQUEST) as stream:
        async for _ in stream:
            break

    assert stream.timing.outcome is None
    assert state(model.breaker) is CircuitState.CLOSED
    scripted_server.script(ScriptedReply(text="Next.", usage=(7, 2)))
    reply, timing = await model.complete_timed(REQUEST)
    assert (reply.text, reply.usage) == ("Next.", Usage(7, 2))
    assert (timing.outcome, timing.attempts) == ("ok", 1)
