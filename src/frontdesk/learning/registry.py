"""The model registry: versioned model folders under ``<data dir>/models/<kind>/<name>/``.

Each version is a folder (``1``, ``2``, ...) holding the model and ``meta.json`` (data hash,
parameters, metrics, date). A version is written to a temporary folder and renamed into place
only when complete, so a failed training leaves nothing half-written. ``ACTIVE`` names the
version the service loads.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from frontdesk.core.types import utcnow


class RegistryError(LookupError):
    """An unknown model or version."""


@dataclass(frozen=True, slots=True)
class ModelVersion:
    kind: str
    name: str
    version: int
    path: Path
    active: bool
    meta: dict[str, Any]


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _folder(self, kind: str, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise RegistryError(f"invalid model name {name!r}")
        return self.root / kind / name

    def versions(self, kind: str, name: str) -> list[int]:
        folder = self._folder(kind, name)
        if not folder.is_dir():
            return []
        return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit())

    def add(
        self,
        kind: str,
        name: str,
        write: Callable[[Path], None],
        meta: dict[str, Any],
        *,
        activate: bool = True,
    ) -> ModelVersion:
        """Write a new version with ``write(folder)``; it appears only once complete."""
        folder = self._folder(kind, name)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=folder))
        try:
            write(staging)
            existing = (
                json.loads((staging / "meta.json").read_text())
                if (staging / "meta.json").exists()
                else {}
            )
            existing.update(meta)
            existing["created_at"] = utcnow().isoformat()
            (staging / "meta.json").write_text(json.dumps(existing, indent=2, sort_keys=True))
            version = (self.versions(kind, name) or [0])[-1] + 1
            target = folder / str(version)
            os.rename(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if activate:
            self.activate(kind, name, version)
        return self.get(kind, name, version)

    def activate(self, kind: str, name: str, version: int) -> None:
        if version not in self.versions(kind, name):
            raise RegistryError(
                f"{kind} model {name!r} has no version {version} "
                f"(versions: {', '.join(map(str, self.versions(kind, name))) or 'none'})"
            )
        folder = self._folder(kind, name)
        pointer = folder / ".ACTIVE.tmp"
        pointer.write_text(f"{version}\n")
        os.replace(pointer, folder / "ACTIVE")

    def active_version(self, kind: str, name: str) -> int | None:
        pointer = self._folder(kind, name) / "ACTIVE"
        if not pointer.exists():
            return None
        return int(pointer.read_text().strip())

    def get(self, kind: str, name: str, version: int | None = None) -> ModelVersion:
        chosen = version if version is not None else self.active_version(kind, name)
        if chosen is None or chosen not in self.versions(kind, name):
            known = ", ".join(map(str, self.versions(kind, name))) or "none"
            raise RegistryError(
                f"no {kind} model {name!r}"
                + (f" version {chosen}" if chosen is not None else " is active")
                + f" (versions: {known}); train one with `frontdesk train {kind} DATA.csv "
                f"--name {name}`"
            )
        path = self._folder(kind, name) / str(chosen)
        meta = json.loads((path / "meta.json").read_text())
        return ModelVersion(
            kind, name, chosen, path, chosen == self.active_version(kind, name), meta
        )

    def list(self, kind: str | None = None) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        kinds = [kind] if kind else sorted(p.name for p in self.root.glob("*") if p.is_dir())
        for each_kind in kinds:
            for name_dir in sorted((self.root / each_kind).glob("*")):
                if name_dir.is_dir() and not name_dir.name.startswith("."):
                    for version in self.versions(each_kind, name_dir.name):
                        found.append(self.get(each_kind, name_dir.name, version))
        return found
