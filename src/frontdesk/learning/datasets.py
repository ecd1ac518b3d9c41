"""Labelled text files: a CSV with a text column and a label column (extra columns ignored);
and unlabelled ones: a CSV with a text column (customer messages for ``--unlabelled``).

Every problem is reported with the file and, where there is one, the line: a missing column,
an empty text or label, a file that is not UTF-8, a file with a single class.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


class DatasetError(ValueError):
    """A labelled file cannot be used; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Labelled:
    texts: tuple[str, ...]
    labels: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def classes(self) -> list[str]:
        return sorted(set(self.labels))

    def counts(self) -> Counter[str]:
        return Counter(self.labels)

    def conflicts(self) -> dict[str, list[str]]:
        """Texts given more than one label (compared without case and extra spaces), each
        with its labels: no model can learn both."""
        seen: dict[str, set[str]] = {}
        first: dict[str, str] = {}
        for text, label in zip(self.texts, self.labels, strict=True):
            key = " ".join(text.casefold().split())
            seen.setdefault(key, set()).add(label)
            first.setdefault(key, text)
        return {first[k]: sorted(v) for k, v in seen.items() if len(v) > 1}

    def digest(self) -> str:
        """A hash of the exact examples, stored with every model trained on them."""
        sha = hashlib.sha256()
        for text, label in zip(self.texts, self.labels, strict=True):
            sha.update(text.encode() + b"\0" + label.encode() + b"\n")
        return sha.hexdigest()

    def sample(self, shots: int, seed: int, keep: frozenset[str] = frozenset()) -> Labelled:
        """At most ``shots`` examples per label, chosen with ``seed``; labels in ``keep`` keep
        all their examples."""
        if shots < 1:
            raise DatasetError(f"{self.source}: --shots must be at least 1")
        rng = random.Random(seed)  # noqa: S311 - sampling, not secrets
        by_label: dict[str, list[int]] = {}
        for index, label in enumerate(self.labels):
            by_label.setdefault(label, []).append(index)
        chosen: list[int] = []
        for label in sorted(by_label):
            indexes = by_label[label]
            chosen += indexes if label in keep else rng.sample(indexes, min(shots, len(indexes)))
        chosen.sort()
        return Labelled(
            tuple(self.texts[i] for i in chosen),
            tuple(self.labels[i] for i in chosen),
            f"{self.source} ({shots} per label, seed {seed})",
        )


@dataclass(frozen=True, slots=True)
class Unlabelled:
    texts: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def digest(self) -> str:
        sha = hashlib.sha256()
        for text in self.texts:
            sha.update(text.encode() + b"\n")
        return sha.hexdigest()

    def sample(self, count: int, seed: int) -> Unlabelled:
        """At most ``count`` of the texts, chosen with ``seed``, in their order."""
        if len(self.texts) <= count:
            return self
        rng = random.Random(seed)  # noqa: S311 - sampling, not secrets
        chosen = sorted(rng.sample(range(len(self.texts)), count))
        return Unlabelled(
            tuple(self.texts[i] for i in chosen), f"{self.source} ({count} of {len(self)})"
        )


def _read(path: Path, columns: tuple[str, ...], kind: str) -> list[tuple[str, ...]]:
    """The ``columns`` of every row of the CSV file ``path``, whitespace collapsed; every
    value must be non-empty."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    rows: list[tuple[str, ...]] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DatasetError(
                    f"{path}:1: missing column(s) {', '.join(missing)} (the header has: "
                    f"{', '.join(header) or 'nothing'}); {kind} needs {','.join(columns)}"
                )
            for row in reader:
                clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k}
                values = tuple(" ".join(clean.get(c, "").split()) for c in columns)
                for column, value in zip(columns, values, strict=True):
                    if not value:
                        raise DatasetError(f"{path}:{reader.line_num}: the {column} is empty")
                rows.append(values)
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from exc
    if not rows:
        raise DatasetError(f"{path}: no examples")
    return rows


def load_unlabelled(path: Path, *, text_column: str = "text") -> Unlabelled:
    """Read ``path``: a CSV whose header names ``text_column`` (other columns are ignored)."""
    rows = _read(path, (text_column,), "a file of unlabelled messages")
    return Unlabelled(tuple(row[0] for row in rows), str(path))


def load_labelled(
    path: Path, *, text_column: str = "text", label_column: str = "label", min_classes: int = 2
) -> Labelled:
    """Read ``path``; the header must name ``text_column`` and ``label_column``."""
    rows = _read(path, (text_column, label_column), "a labelled file")
    texts = [row[0] for row in rows]
    labels = [row[1] for row in rows]
    if len(set(labels)) < min_classes:
        raise DatasetError(
            f"{path}: only {len(set(labels))} label(s) ({', '.join(sorted(set(labels)))}); "
            f"a classifier needs at least {min_classes}"
        )
    return Labelled(tuple(texts), tuple(labels), str(path))
