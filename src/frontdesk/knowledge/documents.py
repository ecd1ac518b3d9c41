"""Reading a knowledge folder: Markdown articles and CSV FAQs, split into chunks."""

from __future__ import annotations

import csv
import hashlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

TARGET_WORDS = 120
MAX_WORDS = 180


class KnowledgeError(ValueError):
    """A knowledge file cannot be read (bad CSV header, empty article, ...)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    ord: int
    heading: str
    text: str

    def search_text(self, title: str) -> str:
        parts = [title]
        if self.heading and self.heading != title:
            parts.append(self.heading)
        parts.append(self.text)
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str
    source: str
    chunks: tuple[Chunk, ...]
    cites: str | None = None  # a FAQ entry may cite the article it summarises

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256(self.title.encode() + b"\0" + (self.cites or "").encode())
        for chunk in self.chunks:
            digest.update(b"\0" + chunk.heading.encode() + b"\0" + chunk.text.encode())
        return digest.hexdigest()


def slugify(text: str, limit: int = 80) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:limit].rstrip("-") or "item"


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]


def _pack(paragraphs: list[str]) -> Iterator[str]:
    """Join paragraphs into pieces of about TARGET_WORDS; split very long ones by sentence."""
    current: list[str] = []
    words = 0
    for paragraph in paragraphs:
        size = len(paragraph.split())
        if size > MAX_WORDS:
            if current:
                yield "\n\n".join(current)
                current, words = [], 0
            sentences = re.split(r"(?<=[.!?])\s+", paragraph)
            piece: list[str] = []
            count = 0
            for sentence in sentences:
                piece.append(sentence)
                count += len(sentence.split())
                if count >= TARGET_WORDS:
                    yield " ".join(piece)
                    piece, count = [], 0
            if piece:
                yield " ".join(piece)
            continue
        if current and words + size > TARGET_WORDS:
            yield "\n\n".join(current)
            current, words = [], 0
        current.append(paragraph)
        words += size
    if current:
        yield "\n\n".join(current)


def parse_markdown(text: str, fallback_title: str) -> tuple[str, list[Chunk]]:
    """Title (the first '# ' line) and chunks: one or more per '## ' section."""
    title = fallback_title
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        stripped = line.strip()
        if (
            stripped.startswith("# ")
            and title == fallback_title
            and not any(s[1] for s in sections)
        ):
            title = stripped[2:].strip()
            continue
        found = re.match(r"^#{2,6}\s+(.*)$", stripped)
        if found:
            sections.append((found.group(1).strip(), []))
            continue
        sections[-1][1].append(line)
    chunks: list[Chunk] = []
    for heading, lines in sections:
        for piece in _pack(_paragraphs("\n".join(lines))):
            chunks.append(Chunk(ord=len(chunks), heading=heading or title, text=piece))
    return title, chunks


def load_markdown(path: Path, root: Path) -> Document:
    relative = path.relative_to(root).with_suffix("")
    title, chunks = parse_markdown(path.read_text(encoding="utf-8"), relative.name)
    if not chunks:
        raise KnowledgeError(f"{path}: the article has no text")
    return Document(
        id=slugify(str(relative).replace("/", "--"), 190),
        title=title,
        source=str(path),
        chunks=tuple(chunks),
    )


def load_faq(path: Path, root: Path) -> list[Document]:
    """One document per row of a ``question,answer`` CSV. An optional ``article`` column names
    the article (its file name without .md) that the answer summarises: answers from that row
    then cite the article. Other columns are ignored."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower() for name in reader.fieldnames or []}
        if not {"question", "answer"} <= columns:
            raise KnowledgeError(
                f"{path}: a FAQ file needs the columns question,answer (found: "
                f"{','.join(reader.fieldnames or []) or 'none'})"
            )
        prefix = slugify(str(path.relative_to(root).with_suffix("")).replace("/", "--"), 60)
        documents: list[Document] = []
        seen: set[str] = set()
        for line, row in enumerate(reader, start=2):
            clean = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            question, answer = clean.get("question", ""), clean.get("answer", "")
            cites = clean.get("article") or None
            if not question or not answer:
                raise KnowledgeError(f"{path}:{line}: both question and answer are required")
            doc_id = f"{prefix}--{slugify(question, 100)}"
            if doc_id in seen:
                raise KnowledgeError(f"{path}:{line}: the question appears twice: {question!r}")
            seen.add(doc_id)
            documents.append(
                Document(
                    id=doc_id,
                    title=question,
                    source=f"{path}:{line}",
                    chunks=(Chunk(ord=0, heading=question, text=answer),),
                    cites=slugify(cites.removesuffix(".md"), 190) if cites else None,
                )
            )
        return documents


def load_folder(root: Path) -> list[Document]:
    """Every ``*.md`` and ``*.csv`` under ``root``, in a stable order."""
    if not root.is_dir():
        raise KnowledgeError(f"{root}: not a folder")
    documents: list[Document] = []
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in {".md", ".markdown"}:
            documents.append(load_markdown(path, root))
        elif path.suffix.lower() == ".csv":
            documents.extend(load_faq(path, root))
    known = {d.id for d in documents}
    for doc in documents:
        if doc.cites is not None and doc.cites not in known:
            raise KnowledgeError(f"{doc.source}: the article {doc.cites!r} does not exist")
    counts = Counter(d.id for d in documents)
    duplicates = sorted(i for i, n in counts.items() if n > 1)
    if duplicates:
        raise KnowledgeError(f"{root}: two files give the same article id: {duplicates}")
    return documents
