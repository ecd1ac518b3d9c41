"""Ingestion: bring the knowledge tables in line with a folder, re-embedding only changes.

Three steps: read what is stored (one transaction), embed the chunks whose text is new (outside
any transaction, on a worker thread, with progress), write the changes (one transaction).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from frontdesk.adapters.store.database import Database
from frontdesk.adapters.store.tables import ArticleRow, ChunkRow
from frontdesk.core.ports import Embedder
from frontdesk.core.types import utcnow
from frontdesk.knowledge.documents import Document, load_folder

Progress = Callable[[int, int], None]
BATCH = 32


@dataclass(frozen=True, slots=True)
class IngestReport:
    articles: int
    chunks: int
    embedded: int
    reused: int
    removed_articles: int
    unchanged_articles: int


@dataclass(frozen=True, slots=True)
class _Stored:
    articles: dict[str, tuple[str, str, str]]  # id -> (content hash, source, title)
    vectors: dict[str, bytes]  # chunk hash -> embedding, for the current encoder
    stale: set[str]  # articles with chunks of another encoder: embedded again


@dataclass(frozen=True, slots=True)
class _Pending:
    doc: Document
    ord: int
    digest: str
    text: str


def chunk_hash(embedder_name: str, search_text: str) -> str:
    return hashlib.sha256(f"{embedder_name}\0{search_text}".encode()).hexdigest()


def _read(session: Session, embedder_name: str) -> _Stored:
    articles = {
        row.id: (row.content_hash, row.source, row.title)
        for row in session.execute(select(ArticleRow)).scalars()
    }
    vectors = {
        digest: embedding
        for digest, embedding in session.execute(
            select(ChunkRow.content_hash, ChunkRow.embedding).where(
                ChunkRow.embedder == embedder_name
            )
        ).tuples()
    }
    stale = set(
        session.execute(
            select(ChunkRow.article_id).where(ChunkRow.embedder != embedder_name).distinct()
        ).scalars()
    )
    return _Stored(articles, vectors, stale)


def _write(
    session: Session,
    removed: list[str],
    changed: list[Document],
    pending: list[_Pending],
    vectors: dict[str, bytes],
    titles: dict[str, str],
    embedder_name: str,
) -> None:
    for article_id in removed + [doc.id for doc in changed]:
        session.execute(delete(ChunkRow).where(ChunkRow.article_id == article_id))
    for article_id in removed:
        session.execute(delete(ArticleRow).where(ArticleRow.id == article_id))
    now = utcnow()
    for doc in changed:
        session.merge(
            ArticleRow(
                id=doc.id,
                title=doc.title,
                source=doc.source,
                content_hash=doc.content_hash,
                updated_at=now,
            )
        )
    session.flush()
    for item in pending:
        cite_id = item.doc.cites or item.doc.id
        session.add(
            ChunkRow(
                id=f"{item.doc.id}#{item.ord}",
                article_id=item.doc.id,
                ord=item.ord,
                title=item.doc.title,
                text=item.doc.chunks[item.ord].text,
                cite_id=cite_id,
                cite_title=titles.get(cite_id, item.doc.title),
                content_hash=item.digest,
                embedder=embedder_name,
                embedding=vectors[item.digest],
            )
        )


async def ingest_documents(
    db: Database,
    documents: list[Document],
    embedder: Embedder,
    *,
    prune_prefix: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Upsert the documents. Articles whose source starts with ``prune_prefix`` and that are
    not among ``documents`` are removed. Chunks whose text did not change keep their vectors."""
    stored = await db.run(lambda session: _read(session, embedder.name))
    wanted = {doc.id for doc in documents}
    removed = [
        article_id
        for article_id, (_, source, _) in stored.articles.items()
        if prune_prefix is not None and article_id not in wanted and source.startswith(prune_prefix)
    ]
    changed = [
        doc
        for doc in documents
        if doc.id not in stored.articles
        or stored.articles[doc.id][0] != doc.content_hash
        or doc.id in stored.stale  # the same text, but vectors of another encoder
    ]
    pending = [
        _Pending(doc, chunk.ord, chunk_hash(embedder.name, text), text)
        for doc in changed
        for chunk in doc.chunks
        for text in [chunk.search_text(doc.title)]
    ]
    vectors = dict(stored.vectors)
    # Similar lengths batch together: less padding, faster embedding.
    to_embed = sorted(
        {(p.digest, p.text) for p in pending if p.digest not in vectors}, key=lambda x: len(x[1])
    )
    total = len(to_embed)
    if progress:
        progress(0, total)
    for start in range(0, total, BATCH):
        batch = to_embed[start : start + BATCH]
        embedded = await asyncio.to_thread(embedder.embed, [text for _, text in batch])
        for (digest, _), vector in zip(batch, embedded, strict=True):
            vectors[digest] = np.asarray(vector, dtype=np.float32).tobytes()
        if progress:
            progress(min(start + BATCH, total), total)

    titles = {article_id: title for article_id, (_, _, title) in stored.articles.items()}
    titles.update({doc.id: doc.title for doc in documents})
    await db.run(
        lambda session: _write(session, removed, changed, pending, vectors, titles, embedder.name)
    )
    return IngestReport(
        articles=len(documents),
        chunks=sum(len(doc.chunks) for doc in documents),
        embedded=total,
        reused=len(pending) - total,
        removed_articles=len(removed),
        unchanged_articles=len(documents) - len(changed),
    )


async def ingest_folder(
    db: Database, folder: Path, embedder: Embedder, progress: Progress | None = None
) -> IngestReport:
    root = await asyncio.to_thread(folder.resolve)
    documents = await asyncio.to_thread(load_folder, root)
    return await ingest_documents(
        db, documents, embedder, prune_prefix=str(root) + "/", progress=progress
    )
