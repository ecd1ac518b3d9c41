"""Hybrid retrieval: BM25 (bm25s) and dense cosine similarity, fused by reciprocal rank."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import bm25s
import numpy as np
import Stemmer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from frontdesk.adapters.store.tables import ChunkRow
from frontdesk.core.ports import Embedder, Vector
from frontdesk.core.types import ArticleId, ChunkId, Passage

RRF_K = 60
CANDIDATES = 20


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    id: ChunkId
    article_id: ArticleId
    title: str
    text: str
    cite_id: ArticleId
    cite_title: str


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    tokens = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False, return_ids=False
    )
    return [list(t) for t in tokens]


class Retriever:
    """An in-memory index over every chunk, built from the knowledge tables."""

    def __init__(self, chunks: Sequence[IndexedChunk], vectors: Vector, embedder: Embedder):
        self._chunks = list(chunks)
        self._vectors = vectors
        self._embedder = embedder
        self._bm25: bm25s.BM25 | None = None
        if self._chunks:
            corpus = [f"{c.title}\n{c.text}" for c in self._chunks]
            self._bm25 = bm25s.BM25()
            self._bm25.index(_tokenize(corpus), show_progress=False)

    @property
    def size(self) -> int:
        return len(self._chunks)

    @classmethod
    async def load(cls, session: AsyncSession, embedder: Embedder) -> Retriever:
        rows = (
            (await session.execute(select(ChunkRow).order_by(ChunkRow.article_id, ChunkRow.ord)))
            .scalars()
            .all()
        )
        rows = [row for row in rows if row.embedder == embedder.name]
        chunks = [
            IndexedChunk(
                ChunkId(r.id),
                ArticleId(r.article_id),
                r.title,
                r.text,
                ArticleId(r.cite_id),
                r.cite_title,
            )
            for r in rows
        ]
        if rows:
            vectors = np.vstack([np.frombuffer(r.embedding, dtype=np.float32) for r in rows])
        else:
            vectors = np.zeros((0, embedder.dimension), dtype=np.float32)
        return cls(chunks, vectors, embedder)

    def _bm25_ranks(self, query: str) -> dict[int, int]:
        if self._bm25 is None:
            return {}
        tokens = _tokenize([query])
        if not tokens[0]:
            return {}
        k = min(CANDIDATES, len(self._chunks))
        docs, scores = self._bm25.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return {
            int(doc): rank
            for rank, (doc, score) in enumerate(zip(docs[0], scores[0], strict=True))
            if score > 0
        }

    def search_vector(self, query: str, vector: Vector, top_k: int = 5) -> list[Passage]:
        if not self._chunks:
            return []
        similarities = self._vectors @ vector
        k = min(CANDIDATES, len(self._chunks))
        dense_order = np.argsort(-similarities)[:k]
        fused: dict[int, float] = {}
        for rank, index in enumerate(dense_order):
            fused[int(index)] = 1.0 / (RRF_K + rank)
        for index, rank in self._bm25_ranks(query).items():
            fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank)
        ordered = sorted(fused.items(), key=lambda item: -item[1])[:top_k]
        return [
            Passage(
                chunk_id=self._chunks[i].id,
                article_id=self._chunks[i].article_id,
                title=self._chunks[i].title,
                text=self._chunks[i].text,
                cite_id=self._chunks[i].cite_id,
                cite_title=self._chunks[i].cite_title,
                score=score,
                similarity=float(similarities[i]),
            )
            for i, score in ordered
        ]

    async def search(self, query: str, top_k: int = 5) -> list[Passage]:
        vector = await self._embedder.embed_one(query)
        return self.search_vector(query, vector, top_k)
