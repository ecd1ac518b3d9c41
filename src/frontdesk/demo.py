"""The bundled demo store: where it is and how it is brought up."""

from __future__ import annotations

from pathlib import Path

from frontdesk.config import Settings


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
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
