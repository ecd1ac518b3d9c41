"""Labelled text files: a CSV with a text column and a label column (extra columns ignored).

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


def load_labelled(
    path: Path, *, text_column: str = "text", label_column: str = "label", min_classes: int = 2
) -> Labelled:
    """Read ``path``; the header must name ``text_column`` and ``label_column``."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in (text_column, label_column) if c not in header]
            if missing:
                raise DatasetError(
                    f"{path}:1: missing column(s) {', '.join(missing)} (the header has: "
                    f"{', '.join(header) or 'nothing'}); a labelled file needs "
                    f"{text_column},{label_column}"
                )
            texts: list[str] = []
            labels: list[str] = []
            for row in reader:
                line = reader.line_num
                clean = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k}
                text, label = clean.get(text_column, ""), clean.get(label_column, "")
                if not text:
                    raise DatasetError(f"{path}:{line}: the text is empty")
                if not label:
                    raise DatasetError(f"{path}:{line}: the label is empty")
                texts.append(" ".join(text.split()))
                labels.append(label)
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
        ) from exc
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV file ({exc})") from exc
    if not texts:
        raise DatasetError(f"{path}: no examples")
    if len(set(labels)) < min_classes:
        raise DatasetError(
            f"{path}: only {len(set(labels))} label(s) ({', '.join(sorted(set(labels)))}); "
            f"a classifier needs at least {min_classes}"
        )
    return Labelled(tuple(texts), tuple(labels), str(path))
