"""Training and evaluating intent models from labelled files, with progress reporting."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frontdesk.core.ports import Embedder, Vector
from frontdesk.learning import spreading
from frontdesk.learning.datasets import DatasetError, Labelled, Unlabelled
from frontdesk.learning.evaluation import evaluate
from frontdesk.learning.finetune_encoder import ENCODER_FILE, TOKENIZER_FILE
from frontdesk.learning.intents import DEFAULT_OOS, SECOND, IntentModel, train
from frontdesk.learning.registry import ModelRegistry, ModelVersion
from frontdesk.pipeline import privacy
from frontdesk.pipeline.privacy import PatternDetector

KIND = "intents"
EMBED_BATCH = 64
# A second opinion decides for the messages whose confidence is under this. Chosen on the
# held-out fifth of BANKING77's training file, 10 examples per intent (docs/learning.md).
SECOND_BELOW = 0.9
Progress = Callable[[str, int, int], None]

FALLBACK_NOTE = (
    "{reason}. Training the classification heads only, over the built-in sentence encoder "
    "(install frontdesk[train] to fine-tune the encoder)"
)


@dataclass(frozen=True, slots=True)
class Trained:
    version: ModelVersion
    seconds: float


def embed_all(
    embedder: Embedder, texts: list[str], progress: Progress | None, what: str = "embedding"
) -> Vector:
    parts: list[Vector] = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(embedder.embed(texts[start : start + EMBED_BATCH]))
        if progress:
            progress(what, min(start + EMBED_BATCH, len(texts)), len(texts))
    return np.vstack(parts) if parts else np.zeros((0, embedder.dimension), dtype=np.float32)


def train_intents(
    registry: ModelRegistry,
    embedder: Embedder,
    data: Labelled,
    name: str,
    *,
    shots: int | None = None,
    seed: int = 0,
    oos_label: str = DEFAULT_OOS,
    progress: Progress | None = None,
    fine_tune: bool = False,
    epochs: int | None = None,
    notice: Callable[[str], None] | None = None,
    unlabelled: Unlabelled | None = None,
    second_opinion: bool = False,
) -> Trained:
    """Train on ``data`` (optionally ``shots`` examples per label) and register a new active
    version of ``name``. With ``fine_tune``, the encoder is fine-tuned first (the ``train``
    extra) and saved with the model; without the extra, ``notice`` is told and the heads are
    trained over ``embedder`` alone. ``unlabelled`` messages are pseudonymized, embedded, and
    given labels spread from the examples (:mod:`frontdesk.learning.spreading`); the heads
    are trained on them too. With ``second_opinion`` (the ``train`` and ``large`` extras), a
    larger encoder is fine-tuned on the same examples too, with heads of its own, and decides
    for the messages the model is unsure of. Nothing is registered if anything fails."""
    started = time.perf_counter()
    if shots is not None:
        data = data.sample(shots, seed, keep=frozenset({oos_label}))
    if len(data.classes) < 2:
        raise DatasetError(f"{data.source}: a classifier needs at least 2 labels")
    if unlabelled is not None and len(unlabelled) > spreading.MAX_UNLABELLED:
        if notice:
            notice(
                f"{unlabelled.source} has {len(unlabelled)} messages; using "
                f"{spreading.MAX_UNLABELLED} of them, chosen at random (seed {seed})"
            )
        unlabelled = unlabelled.sample(spreading.MAX_UNLABELLED, seed)
    if unlabelled is not None and oos_label not in data.classes and notice:
        notice(
            f"the examples have no out-of-scope label {oos_label!r}: every unlabelled message "
            "will be learned as one of the intents; add out-of-scope examples if the messages "
            "include questions of no intent"
        )
    conflicts = data.conflicts()
    if conflicts and notice:
        text, labels = next(iter(conflicts.items()))
        notice(
            f"{len(conflicts)} text(s) of {data.source} have more than one label, such as "
            f"{text!r} ({', '.join(labels)}): the model can learn only one of them"
        )
    if second_opinion:
        from frontdesk.learning import finetune_encoder

        # Refused rather than quietly left out: the model would not be the one asked for.
        finetune_encoder.require()
        finetune_encoder.large_model_dir(progress)
    if fine_tune:
        from frontdesk.learning import finetune_encoder

        try:
            finetune_encoder.require()
        except finetune_encoder.TrainExtraMissing as exc:
            fine_tune = False
            if notice:
                notice(FALLBACK_NOTE.format(reason=str(exc).split(":")[0]))
    meta: dict[str, Any] = {
        "data": data.source,
        "data_sha256": data.digest(),
        "shots": shots,
        "label_counts": dict(sorted(data.counts().items())),
        "fine_tuned_encoder": fine_tune,
        "conflicting_texts": len(conflicts),
    }
    u_texts: list[str] = []
    if unlabelled is not None:
        detector = PatternDetector()
        u_texts = [privacy.pseudonymize(text, detector) for text in unlabelled.texts]
        meta["unlabelled_data"] = unlabelled.source
        meta["unlabelled_data_sha256"] = unlabelled.digest()
    with tempfile.TemporaryDirectory(prefix="frontdesk-encoder-") as scratch:
        encoder_file: Path | None = None
        if fine_tune:
            encoder_file, encoder, encoder_meta = _tuned_encoder(
                data, Path(scratch), seed, epochs, progress
            )
            meta.update(encoder_meta)
        else:
            encoder = embedder
        try:
            vectors = embed_all(encoder, list(data.texts), progress)
            extra = None
            if u_texts:
                extra = (u_texts, embed_all(encoder, u_texts, progress, "embedding unlabelled"))
            model = train(
                list(data.texts),
                vectors,
                list(data.labels),
                encoder=encoder.name,
                oos_label=oos_label,
                seed=seed,
                progress=progress,
                unlabelled=extra,
            )
        finally:
            if encoder is not embedder:
                encoder.close()
        second: tuple[IntentModel, Path] | None = None
        if second_opinion:
            second = _second_opinion(
                data, Path(scratch) / SECOND, seed, epochs, oos_label, progress
            )
            meta["second_below"] = SECOND_BELOW
            meta["second_opinion"] = {
                k: v for k, v in second[0].meta.items() if k in ("encoder_base", "fine_tune")
            }
        seconds = time.perf_counter() - started
        meta["train_seconds"] = round(seconds, 1)

        def write(folder: Path) -> None:
            model.save(folder)
            if encoder_file is not None:
                shutil.copyfile(encoder_file, folder / encoder_file.name)
            if second is not None:
                second_model, files = second
                second_model.save(folder / SECOND)
                for name in (ENCODER_FILE, TOKENIZER_FILE):
                    shutil.copyfile(files / name, folder / SECOND / name)

        version = registry.add(KIND, name, write, meta)
    return Trained(version, seconds)


def _tuned_encoder(
    data: Labelled, scratch: Path, seed: int, epochs: int | None, progress: Progress | None
) -> tuple[Path, Embedder, dict[str, Any]]:
    """Fine-tune the encoder on ``data`` and export it to ``scratch``; the file, the encoder
    that serves it, and what goes into the model's meta.json."""
    from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
    from frontdesk.learning import finetune_encoder

    options = finetune_encoder.FineTuneOptions(epochs=epochs, seed=seed)
    rows = finetune_encoder.tuning_rows(data.labels, seed)
    tuned = finetune_encoder.tune_and_export(
        [data.texts[i] for i in rows], [data.labels[i] for i in rows], scratch, options,
        progress=progress,
    )  # fmt: skip
    name = f"all-MiniLM-L6-v2-tuned-{tuned.sha256[:12]}" + ("-int8" if tuned.quantized else "")
    encoder = OnnxEmbedder(tuned.path, threads=2, sha256=tuned.sha256, name=name)
    meta = {
        "encoder_file": tuned.path.name,
        "encoder_sha256": tuned.sha256,
        "encoder_base": finetune_encoder.BASE_DESCRIPTION,
        "fine_tune": {
            "examples": len(rows),  # the rest is new to the encoder: the heads' validation
            "params": tuned.params,
            "epoch_losses": tuned.losses,
            "quantized_int8": tuned.quantized,
            "tune_seconds": tuned.tune_seconds,
            "export_seconds": tuned.export_seconds,
        },
    }
    return tuned.path, encoder, meta


def _second_opinion(
    data: Labelled,
    scratch: Path,
    seed: int,
    epochs: int | None,
    oos_label: str,
    progress: Progress | None,
) -> tuple[IntentModel, Path]:
    """The larger encoder fine-tuned on the same rows as the first (all but the heads'
    held-out fifth), exported to ``scratch``, and heads trained on its vectors; the model (its
    meta naming its encoder's files) and the folder of those files."""
    from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
    from frontdesk.learning import finetune_encoder as fe

    options = fe.FineTuneOptions(epochs=epochs, seed=seed)
    rows = fe.tuning_rows(data.labels, seed)

    def step(what: str, done: int, total: int) -> None:
        if progress:
            progress(f"second opinion: {what}", done, total)

    tuned = fe.tune_and_export(
        [data.texts[i] for i in rows], [data.labels[i] for i in rows], scratch, options,
        progress=step, base=fe.LARGE,
    )  # fmt: skip
    name = f"{fe.LARGE.name}-tuned-{tuned.sha256[:12]}-int8"
    encoder = OnnxEmbedder(
        tuned.path, threads=2, sha256=tuned.sha256, name=name, tokenizer=scratch / TOKENIZER_FILE
    )
    try:
        vectors = embed_all(encoder, list(data.texts), step)
    finally:
        encoder.close()
    model = train(
        list(data.texts), vectors, list(data.labels), encoder=name, oos_label=oos_label,
        seed=seed, progress=step,
    )  # fmt: skip
    meta = {
        **model.meta,
        "encoder_file": ENCODER_FILE,
        "encoder_sha256": tuned.sha256,
        "encoder_tokenizer": TOKENIZER_FILE,
        "encoder_base": fe.LARGE.description,
        "fine_tune": {
            "examples": len(rows),
            "params": tuned.params,
            "epoch_losses": tuned.losses,
            "quantized_int8": tuned.quantized,
            "tune_seconds": tuned.tune_seconds,
            "export_seconds": tuned.export_seconds,
        },
    }
    return dataclasses.replace(model, meta=meta), scratch


def evaluate_intents(
    model: IntentModel,
    embedder: Embedder,
    data: Labelled,
    *,
    oos_label: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Scores of ``model`` on ``data``; its vectors come from its own encoder if it has one,
    else from ``embedder`` (the one it was trained on). ``unknown_labels``: the labels of
    ``data`` that the model was not trained on (the out-of-scope label aside), with their
    numbers of examples; the model can only get those examples wrong."""
    if model.encoder_file is None and model.encoder != embedder.name:
        raise DatasetError(
            f"the model was trained on encoder {model.encoder!r}, this service runs "
            f"{embedder.name!r}: retrain it"
        )
    vectors = embed_all(model.embedder(embedder), list(data.texts), progress)
    started = time.perf_counter()
    predictions = model.predict(list(data.texts), vectors)
    head_ms = (time.perf_counter() - started) * 1000 / max(len(data), 1)
    oos = oos_label or model.oos_label
    result = evaluate(predictions, list(data.labels), oos)
    known = set(model.labels)
    result["unknown_labels"] = {
        label: count
        for label, count in sorted(data.counts().items())
        if label not in known and label != oos
    }
    result["data"] = data.source
    result["head_ms_per_message"] = round(head_ms, 4)
    return result
