"""The built-in encoder's queue: questions asked together are embedded in batches on the
encoder's thread, each gets its own vector, a failure reaches every waiter, and the work
starts before the caller's next step."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
from frontdesk.core.ports import Vector

QUESTIONS = [
    "How long do refunds take?",
    "where is my order",
    "Can I change the delivery address of an order I placed yesterday?",
    "do you ship to Canada",
    "What sizes does the hiking jacket come in?",
    "can I talk to a person?",
]


@pytest.fixture
def encoder() -> Iterator[OnnxEmbedder]:
    built = OnnxEmbedder(threads=1)
    yield built
    built.close()


async def test_that_questions_asked_together_get_their_own_vectors(encoder: OnnxEmbedder) -> None:
    alone = encoder.embed(QUESTIONS)
    together = await asyncio.gather(*(encoder.embed_one(q) for q in QUESTIONS))
    for expected, got in zip(alone, together, strict=True):
        assert float(np.dot(expected, got)) == pytest.approx(1.0, abs=1e-5)
    # Different questions, different vectors: no row went to the wrong waiter.
    assert float(np.dot(together[0], together[1])) < 0.9


async def test_that_the_batch_starts_before_the_callers_next_step(
    encoder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A turn starts the embedding as a task and then runs its first transaction on the
    event loop's thread: the encoder must already be working by then."""
    started = threading.Event()
    embed = encoder.embed

    def watched(texts: Sequence[str]) -> Vector:
        started.set()
        return embed(texts)

    monkeypatch.setattr(encoder, "embed", watched)
    task = asyncio.ensure_future(encoder.embed_one("How long do refunds take?"))
    await asyncio.sleep(0)  # what Database.run_core does before a transaction
    # The loop is held here, as by a transaction: only the encoder's thread can run.
    assert started.wait(5), "the batch was not sent before the caller went on"
    assert (await task).shape == (encoder.dimension,)


async def test_that_a_failure_reaches_every_waiter_and_the_next_batch_runs(
    encoder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = threading.Event()
    release = threading.Event()
    embed = encoder.embed
    batches: list[list[str]] = []

    def second_fails(texts: Sequence[str]) -> Vector:
        batches.append(list(texts))
        if len(batches) == 1:  # the first batch holds the encoder while the others queue
            running.set()
            release.wait(5)
        if len(batches) == 2:
            raise ValueError("encoder failed")
        return embed(texts)

    monkeypatch.setattr(encoder, "embed", second_fails)
    first = asyncio.ensure_future(encoder.embed_one(QUESTIONS[0]))
    await asyncio.sleep(0)
    assert await asyncio.to_thread(running.wait, 5)
    waiting = [asyncio.ensure_future(encoder.embed_one(q)) for q in QUESTIONS[1:4]]
    await asyncio.sleep(0)
    release.set()
    assert (await first).shape == (encoder.dimension,)
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert batches[1] == QUESTIONS[1:4]  # queued together, one batch
    assert all(isinstance(r, ValueError) for r in results)
    assert (await encoder.embed_one(QUESTIONS[4])).shape == (encoder.dimension,)


async def test_that_closing_the_encoder_fails_the_waiters_instead_of_leaving_them(
    encoder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = threading.Event()
    release = threading.Event()
    embed = encoder.embed

    def slow(texts: Sequence[str]) -> Vector:
        running.set()
        release.wait(5)
        return embed(texts)

    monkeypatch.setattr(encoder, "embed", slow)
    first = asyncio.ensure_future(encoder.embed_one(QUESTIONS[0]))
    await asyncio.sleep(0)
    assert await asyncio.to_thread(running.wait, 5)
    queued = asyncio.ensure_future(encoder.embed_one(QUESTIONS[1]))  # waits for the next batch
    await asyncio.sleep(0)
    encoder.close()
    release.set()
    assert (await first).shape == (encoder.dimension,)  # the batch already running finishes
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(queued, 5)
