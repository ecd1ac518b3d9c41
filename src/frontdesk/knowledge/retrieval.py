"""Hybrid retrieval: dense cosine similarity (MiniLM) fused with scaled BM25 scores (bm25s)."""

from __future__ import annotations

import re
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer
from bm25s.stopwords import STOPWORDS_EN
from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.store.database import Database
from frontdesk.adapters.store.tables import ChunkRow
from frontdesk.core.ports import Embedder, Vector
from frontdesk.core.types import ArticleId, ChunkId, Passage

# Weight of the lexical (BM25) score against the dense cosine similarity. Chosen on the
# demo store's labelled questions (benchmarks/retrieval.py): dense alone hit@1 0.86,
# reciprocal-rank fusion 0.86, this blend 0.88 to 0.90 for weights 0.1 to 0.5.
LEXICAL_WEIGHT = 0.2


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    id: ChunkId
    article_id: ArticleId
    title: str
    text: str
    cite_id: ArticleId
    cite_title: str


# The tokens bm25s.tokenize(stopwords="en", stemmer=English) gives, computed directly: its
# per-call set-up cost 0.14 ms for one query, 30 times the work itself.
_WORD = re.compile(r"(?u)\b\w\w+\b")
_STOPWORDS = frozenset(STOPWORDS_EN)
_local = threading.local()  # a PyStemmer object must not be shared between threads


def _stemmer() -> Stemmer.Stemmer:
    stemmer: Stemmer.Stemmer | None = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = Stemmer.Stemmer("english")
    return stemmer


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased words of two or more characters, English stop words dropped, stemmed."""
    stem = _stemmer().stemWords
    out: list[list[str]] = []
    for text in texts:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]
        out.append(stem(words) if words else [])
    return out


class Retriever:
    """An in-memory index over every chunk, built from the knowledge tables."""

    def __init__(self, chunks: Sequence[IndexedChunk], vectors: Vector, embedder: Embedder):
        self._chunks = list(chunks)
        self._vectors = vectors
        self._embedder = embedder
        self._bm25: bm25s.BM25 | None = None
        self._by_article: dict[str, list[int]] = {}
        for i, chunk in enumerate(self._chunks):
            self._by_article.setdefault(chunk.cite_id, []).append(i)
        if self._chunks:
            corpus = [f"{c.title}\n{c.text}" for c in self._chunks]
            self._bm25 = bm25s.BM25()
            self._bm25.index(_tokenize(corpus), show_progress=False)

    @property
    def size(self) -> int:
        return len(self._chunks)

    def texts(self) -> list[str]:
        """The titles and texts of every chunk (for the spelling vocabulary)."""
        return [f"{c.title}\n{c.text}" for c in self._chunks]

    @classmethod
    async def load(cls, db: Database, embedder: Embedder) -> Retriever:
        def read(session: Session) -> list[ChunkRow]:
            query = (
                select(ChunkRow)
                .where(ChunkRow.embedder == embedder.name)
                .order_by(ChunkRow.article_id, ChunkRow.ord)
            )
            return list(session.execute(query).scalars())

        rows = await db.run(read)
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

    def lexical(self, query: str) -> Vector:
        """BM25 score of every chunk for the query, scaled so the best is 1 (all 0: no match).
        The part of :meth:`search_vector` that needs no vector: a turn works it out while its
        question is embedded."""
        scores = np.zeros(len(self._chunks), dtype=np.float32)
        if self._bm25 is None:
            return scores
        tokens = _tokenize([query])[0]
        if not tokens:
            return scores
        # bm25s keeps its own vocabulary; words it has never seen are dropped.
        known = [t for t in tokens if t in self._bm25.vocab_dict]
        if not known:
            return scores
        scores = np.asarray(self._bm25.get_scores(known), dtype=np.float32)
        top = float(scores.max())
        return scores / top if top > 0 else scores

    def _lexical_for(self, query: str, lexical: Vector | None) -> Vector:
        return self.lexical(query) if lexical is None or len(lexical) != self.size else lexical

    def _passage(self, i: int, fused: float, similarity: float) -> Passage:
        chunk = self._chunks[i]
        return Passage(
            chunk_id=chunk.id,
            article_id=chunk.article_id,
            title=chunk.title,
            text=chunk.text,
            cite_id=chunk.cite_id,
            cite_title=chunk.cite_title,
            score=fused,
            similarity=similarity,
        )

    def search_vector(
        self, query: str, vector: Vector, top_k: int = 5, lexical: Vector | None = None
    ) -> list[Passage]:
        """Chunks ranked by cosine similarity plus LEXICAL_WEIGHT times the scaled BM25 score
        (``lexical``: :meth:`lexical` of the same query on this index, if already known)."""
        if not self._chunks:
            return []
        similarities = self._vectors @ vector
        fused = similarities + LEXICAL_WEIGHT * self._lexical_for(query, lexical)
        order = np.argsort(-fused)[:top_k]
        return [self._passage(int(i), float(fused[i]), float(similarities[i])) for i in order]

    def best_within(
        self,
        query: str,
        vector: Vector,
        articles: Collection[str],
        lexical: Vector | None = None,
        *,
        summaries: bool = True,
    ) -> Passage | None:
        """The best chunk by :meth:`search_vector`'s score among those that cite one of
        ``articles`` (a FAQ entry cites the article it summarises; ``summaries=False`` leaves
        such entries out); None if none does."""
        rows = sorted(
            i
            for a in articles
            for i in self._by_article.get(a, ())
            if summaries or self._chunks[i].article_id == a
        )
        if not rows:
            return None
        similarities = self._vectors[rows] @ vector
        fused = similarities + LEXICAL_WEIGHT * self._lexical_for(query, lexical)[rows]
        best = int(np.argmax(fused))
        return self._passage(rows[best], float(fused[best]), float(similarities[best]))

    def articles(self) -> frozenset[str]:
        """The ids of the articles the chunks cite."""
        return frozenset(self._by_article)

    async def search(self, query: str, top_k: int = 5) -> list[Passage]:
        vector = await self._embedder.embed_one(query)
        return self.search_vector(query, vector, top_k)
