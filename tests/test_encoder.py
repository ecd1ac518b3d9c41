"""The built-in sentence encoder: its int8 weights multiplied as integers (``blockwise_int8``),
a sentence's vector independent of its batch, and vectors of another encoder never mixed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from sqlalchemy import select
from tests.conftest import SharedEmbedder

from frontdesk.adapters.models import onnx_embedder
from frontdesk.adapters.models.onnx_embedder import (
    BLOCK,
    FLOAT_NAME,
    WEIGHT_MATMULS,
    ModelFileError,
    OnnxEmbedder,
    blockwise_int8,
    default_model_path,
)
from frontdesk.adapters.store import people
from frontdesk.adapters.store.tables import ApprovedAnswerRow
from frontdesk.config import Settings
from frontdesk.demo import DEMO_INTENTS, ensure_demo_intents
from frontdesk.learning.registry import ModelRegistry
from frontdesk.service import Frontdesk

QUESTIONS = Path(__file__).resolve().parents[1] / "benchmarks" / "questions.txt"


def _questions() -> list[str]:
    return [line.strip() for line in QUESTIONS.read_text().splitlines() if line.strip()]


def test_that_the_rewritten_graph_multiplies_the_files_own_int8_weights() -> None:
    source = onnx.load(str(default_model_path()))
    int8 = {
        t.name: numpy_helper.to_array(t)
        for t in source.graph.initializer
        if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2
    }
    data, rewritten = blockwise_int8(default_model_path())
    assert rewritten == WEIGHT_MATMULS
    graph = onnx.load_from_string(data).graph
    tensors = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [n for n in graph.node if n.op_type == "MatMulNBits"]
    assert len(nodes) == WEIGHT_MATMULS
    # What stays a float MatMul: the attention's two products in each of the six layers.
    assert len([n for n in graph.node if n.op_type == "MatMul"]) == 12
    for node in nodes:
        attributes = {a.name: a.i for a in node.attribute}
        assert attributes["bits"] == 8 and attributes["accuracy_level"] == 4
        assert attributes["block_size"] == BLOCK
        weights = int8[node.input[1].removesuffix("/blocks")]
        stored = tensors[node.input[1]].astype(np.int16) - 128  # (N, blocks, BLOCK)
        n = attributes["N"]
        assert np.array_equal(stored.reshape(n, -1).T, weights)  # the same values, bit for bit


def test_that_the_vectors_stay_close_to_those_of_the_files_float_graph() -> None:
    """The float graph of the same file (as it ships, weights turned back into floats) against
    the integer one: the activations' 8-bit rounding moves the vectors a little."""
    questions = _questions()
    integer = OnnxEmbedder()
    floating = OnnxEmbedder(integer=False)
    try:
        cosines = np.sum(integer.embed(questions) * floating.embed(questions), axis=1)
    finally:
        integer.close()
        floating.close()
    assert (integer.name, floating.name) == (OnnxEmbedder.name, FLOAT_NAME)
    assert cosines.mean() > 0.999 and cosines.min() > 0.99


def test_that_a_sentence_gets_the_same_vector_alone_and_in_any_batch(
    shared_embedder: SharedEmbedder,
) -> None:
    """Each row of the activations has scales of its own: a customer's question does not
    depend on the questions that others sent at the same moment, nor on their padding."""
    encoder = shared_embedder.inner
    question = "Do you ship to Canada?"
    alone = encoder.embed([question])[0]
    # Token lengths within the batching slack, so they run as one padded batch.
    crowd = [question, "Do you ship to New Zealand?", "Can I pay by card?", "WHERE IS MY ORDER"]
    together = encoder.embed(crowd)[0]
    assert np.abs(alone - together).max() < 1e-6


def test_that_a_graph_with_another_number_of_weights_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(onnx_embedder, "blockwise_int8", lambda path: (b"", WEIGHT_MATMULS - 1))
    with pytest.raises(ModelFileError, match="35 weight multiplications found, not 36"):
        OnnxEmbedder()


async def test_that_approved_answers_of_another_encoder_are_embedded_again(
    frontdesk: Frontdesk,
) -> None:
    question = "Can I return a gift without the receipt?"
    await frontdesk.db.run(
        lambda s: people.add_approved_answer(
            s,
            key="gift-receipt",
            question=question,
            answer="Yes: we refund gifts to a gift card.",
            embedder="an-earlier-encoder",
            embedding=np.ones(384, dtype=np.float32).tobytes(),
            review_id=None,
            created_by="someone",
        )
    )
    await frontdesk.load_approved_answers()
    row = (await frontdesk.db.run(lambda s: list(s.execute(select(ApprovedAnswerRow)).scalars())))[
        0
    ]
    assert row.embedder == frontdesk.embedder.name
    vector = await frontdesk.embedder.embed_one(question)
    stored = np.frombuffer(row.embedding, dtype=np.float32)
    assert float(stored @ vector) > 0.9999
    found = frontdesk.approved_answer(vector)
    assert found is not None and found.answer == "Yes: we refund gifts to a gift card."


def test_that_the_demo_intent_model_of_an_earlier_encoder_is_trained_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from frontdesk.learning import workflow

    settings = Settings(data_dir=tmp_path)
    registry = ModelRegistry(tmp_path / "models")
    trained: list[str] = []

    def train(
        registry: ModelRegistry, embedder: object, data: object, name: str, **_: object
    ) -> object:
        trained.append(getattr(embedder, "name", ""))
        return registry.add("intents", name, lambda folder: None, {"encoder": trained[-1]})

    monkeypatch.setattr(workflow, "train_intents", train)
    registry.add("intents", DEMO_INTENTS, lambda folder: None, {"encoder": "an-earlier-encoder"})
    assert ensure_demo_intents(settings)
    assert trained == [OnnxEmbedder.name]
    assert registry.active_version("intents", DEMO_INTENTS) == 2
    assert not ensure_demo_intents(settings)  # the new version reads this encoder's vectors
    assert trained == [OnnxEmbedder.name]
