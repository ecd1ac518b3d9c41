"""Ingestion: bring the knowledge tables in line with a folder, re-embedding only changes."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

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


def chunk_hash(embedder_name: str, search_text: str) -> str:
    return hashlib.sha256(f"{embedder_name}\0{search_text}".encode()).hexdigest()


async def ingest_documents(
    session: AsyncSession,
    documents: list[Document],
    embedder: Embedder,
    *,
    prune_prefix: str | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Upsert the documents. Articles whose source starts with ``prune_prefix`` and that are
    not among ``documents`` are removed. Chunks whose text did not change keep their vectors."""
    existing_articles = {
        row.id: row for row in (await session.execute(select(ArticleRow))).scalars().all()
    }
    known_vectors = {
        row.content_hash: row.embedding
        for row in (await session.execute(select(ChunkRow))).scalars().all()
        if row.embedder == embedder.name
    }
    wanted = {doc.id for doc in documents}
    removed = 0
    if prune_prefix is not None:
        for article_id, row in existing_articles.items():
            if article_id not in wanted and row.source.startswith(prune_prefix):
                await session.execute(delete(ChunkRow).where(ChunkRow.article_id == article_id))
                await session.execute(delete(ArticleRow).where(ArticleRow.id == article_id))
                removed += 1

    changed = [
        doc
        for doc in documents
        if doc.id not in existing_articles
        or existing_articles[doc.id].content_hash != doc.content_hash
    ]
    pending: list[tuple[Document, int, str, str]] = []  # doc, ord, hash, search text
    for doc in changed:
        for chunk in doc.chunks:
            text = chunk.search_text(doc.title)
            pending.append((doc, chunk.ord, chunk_hash(embedder.name, text), text))
    # Similar lengths batch together: less padding, faster embedding.
    to_embed = sorted(
        {(h, t) for _, _, h, t in pending if h not in known_vectors}, key=lambda x: len(x[1])
    )
    total = len(to_embed)
    if progress:
        progress(0, total)
    for start in range(0, total, BATCH):
        batch = to_embed[start : start + BATCH]
        vectors = embedder.embed([text for _, text in batch])
        for (digest, _), vector in zip(batch, vectors, strict=True):
            known_vectors[digest] = np.asarray(vector, dtype=np.float32).tobytes()
        if progress:
            progress(min(start + BATCH, total), total)

    now = utcnow()
    for doc in changed:
        await session.execute(delete(ChunkRow).where(ChunkRow.article_id == doc.id))
        article = existing_articles.get(doc.id)
        if article is None:
            session.add(
                ArticleRow(
                    id=doc.id,
                    title=doc.title,
                    source=doc.source,
                    content_hash=doc.content_hash,
                    updated_at=now,
                )
            )
        else:
            article.title = doc.title
            article.source = doc.source
            article.content_hash = doc.content_hash
            article.updated_at = now
    await session.flush()
    titles = {doc.id: doc.title for doc in documents} | {
        row.id: row.title for row in existing_articles.values()
    }
    for doc, ord_, digest, _ in pending:
        chunk = doc.chunks[ord_]
        cite_id = doc.cites or doc.id
        session.add(
            ChunkRow(
                id=f"{doc.id}#{ord_}",
                article_id=doc.id,
                ord=ord_,
                title=doc.title,
                text=chunk.text,
                cite_id=cite_id,
                cite_title=titles.get(cite_id, doc.title),
                content_hash=digest,
                embedder=embedder.name,
                embedding=known_vectors[digest],
            )
        )
    return IngestReport(
        articles=len(documents),
        chunks=sum(len(doc.chunks) for doc in documents),
        embedded=total,
        reused=len(pending) - total,
        removed_articles=removed,
        unchanged_articles=len(documents) - len(changed),
    )


async def ingest_folder(
    session: AsyncSession, folder: Path, embedder: Embedder, progress: Progress | None = None
) -> IngestReport:
    root = await asyncio.to_thread(folder.resolve)
    documents = await asyncio.to_thread(load_folder, root)
    return await ingest_documents(
        session, documents, embedder, prune_prefix=str(root) + "/", progress=progress
    )
