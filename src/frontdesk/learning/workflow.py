"""Training and evaluating intent models from labelled files, with progress reporting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from frontdesk.core.ports import Embedder, Vector
from frontdesk.learning.datasets import DatasetError, Labelled
from frontdesk.learning.evaluation import evaluate
from frontdesk.learning.intents import DEFAULT_OOS, IntentModel, train
from frontdesk.learning.registry import ModelRegistry, ModelVersion

KIND = "intents"
EMBED_BATCH = 64
Progress = Callable[[str, int, int], None]

FINE_TUNING_NOTE = (
    "encoder fine-tuning (the frontdesk\\[train] extra) is not built yet: training the "
    "classification heads over the built-in sentence encoder"
)


@dataclass(frozen=True, slots=True)
class Trained:
    version: ModelVersion
    model: IntentModel
    seconds: float


def embed_all(embedder: Embedder, texts: list[str], progress: Progress | None) -> Vector:
    parts: list[Vector] = []
    for start in range(0, len(texts), EMBED_BATCH):
        parts.append(embedder.embed(texts[start : start + EMBED_BATCH]))
        if progress:
            progress("embedding", min(start + EMBED_BATCH, len(texts)), len(texts))
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
) -> Trained:
    """Train on ``data`` (optionally ``shots`` examples per label) and register a new active
    version of ``name``. Nothing is registered if anything fails."""
    started = time.perf_counter()
    if shots is not None:
        data = data.sample(shots, seed, keep=frozenset({oos_label}))
    if len(data.classes) < 2:
        raise DatasetError(f"{data.source}: a classifier needs at least 2 labels")
    vectors = embed_all(embedder, list(data.texts), progress)
    model = train(
        list(data.texts),
        vectors,
        list(data.labels),
        encoder=embedder.name,
        oos_label=oos_label,
        seed=seed,
        progress=progress,
    )
    seconds = time.perf_counter() - started
    meta: dict[str, Any] = {
        "data": data.source,
        "data_sha256": data.digest(),
        "shots": shots,
        "label_counts": dict(sorted(data.counts().items())),
        "train_seconds": round(seconds, 1),
        "fine_tuned_encoder": False,
    }
    version = registry.add(KIND, name, model.save, meta)
    return Trained(version, IntentModel.load(version.path), seconds)


def evaluate_intents(
    model: IntentModel,
    embedder: Embedder,
    data: Labelled,
    *,
    oos_label: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    if model.encoder != embedder.name:
        raise DatasetError(
            f"the model was trained on encoder {model.encoder!r}, this service runs "
            f"{embedder.name!r}: retrain it"
        )
    vectors = embed_all(embedder, list(data.texts), progress)
    started = time.perf_counter()
    predictions = model.predict(list(data.texts), vectors)
    head_ms = (time.perf_counter() - started) * 1000 / max(len(data), 1)
    result = evaluate(predictions, list(data.labels), oos_label or model.oos_label)
    result["data"] = data.source
    result["head_ms_per_message"] = round(head_ms, 4)
    return result
