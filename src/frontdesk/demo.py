"""The bundled demo store: where it is and how it is brought up."""

from __future__ import annotations

from pathlib import Path

from frontdesk.config import Settings
from frontdesk.learning.workflow import Progress

DEMO_INTENTS = "demo-store"


def demo_store_dir() -> Path:
    """examples/demo-store in the working directory or in the source checkout."""
    candidates = [
        Path.cwd() / "examples" / "demo-store",
        Path(__file__).resolve().parents[2] / "examples" / "demo-store",
    ]
    for candidate in candidates:
        if (candidate / "guidelines.yaml").exists():
            return candidate
    raise FileNotFoundError(
        "the demo store was not found: run this from a Frontdesk checkout "
        "(it lives in examples/demo-store)"
    )


def demo_settings(data_dir: Path | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "company_dir": demo_store_dir(),
        "data_dir": data_dir or Path("var") / "demo",
        "intent_model": DEMO_INTENTS,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def ensure_demo_intents(settings: Settings, progress: Progress | None = None) -> bool:
    """Train the demo store's intent model unless an active version reads the vectors of
    the built-in encoder. True if trained."""
    from frontdesk.adapters.models.onnx_embedder import OnnxEmbedder
    from frontdesk.learning.datasets import load_labelled
    from frontdesk.learning.registry import ModelRegistry
    from frontdesk.learning.workflow import KIND, train_intents
    from frontdesk.service import default_embedder

    registry = ModelRegistry(settings.data_dir / "models")
    if registry.active_version(KIND, DEMO_INTENTS) is not None:
        meta = registry.get(KIND, DEMO_INTENTS).meta
        if meta.get("encoder_file") or meta.get("encoder") == OnnxEmbedder.name:
            return False
        # Trained on an earlier built-in encoder (the service would refuse it): a new version.
    data = load_labelled(demo_store_dir() / "intents" / "train.csv")
    embedder = default_embedder(settings)
    try:
        train_intents(registry, embedder, data, DEMO_INTENTS, progress=progress)
    finally:
        embedder.close()
    return True
