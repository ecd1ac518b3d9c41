"""Customer insights: what customers ask about (topics, top questions), where it hurts (pain
points, low satisfaction by article and flow), and what the bot could not answer (knowledge
gaps, which a reviewer turns into entries of the knowledge base).

``refresh_insights`` reads the customer messages of a date range once (the most recent
``MAX_MESSAGES``), embeds them with the service's sentence encoder, clusters them, stores the
result as a snapshot (table ``analytics_insights``) and upserts the knowledge gaps. The API and
the CLI read the latest snapshot: nothing here runs over the messages per request.

Every text here is pseudonymized as stored (``<EMAIL_1>`` stands for an address); the tokens
are left out of the vectors and of the topic labels.

An accepted gap becomes a row of a FAQ file that Frontdesk keeps itself,
``DATA_DIR/knowledge/accepted-gaps.csv``: written from the accepted gaps in the database and
ingested as its own source, so that ``frontdesk ingest`` of the company's knowledge folder
leaves it alone (ingest removes only articles from the folder it reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import math
import os
import re
import tempfile
import time
import weakref
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError
from frontdesk.adapters.store import people
from frontdesk.adapters.store.tables import (
    ArticleRow,
    CsatRow,
    HandoffRow,
    InsightSnapshotRow,
    KnowledgeGapRow,
    MessageRow,
)
from frontdesk.analytics.kpis import date_range
from frontdesk.core.ports import Vector
from frontdesk.core.types import Role, utcnow
from frontdesk.knowledge.documents import load_faq, slugify
from frontdesk.knowledge.ingest import ingest_documents
from frontdesk.pipeline.privacy import TOKEN_RE
from frontdesk.service import Frontdesk
from frontdesk.testing.regressions import save_conversation
from frontdesk.testing.suites import SuiteError

Labels = npt.NDArray[np.intp]

DEFAULT_DAYS = 28
MAX_DAYS = 366
# The most recent customer messages of the range that are read (the rest are left out, and the
# snapshot says so). Embedding is the slow part, 10 to 20 ms a new text on two cores; vectors
# are cached between refreshes (VectorCache).
MAX_MESSAGES = 5000
EMBED_BATCH = 256
MAX_EMBED_CHARS = 400
# Average-linkage cosine distance under which messages form one topic. Chosen on the demo
# store's labelled intents (examples/demo-store/intents/train.csv): most topics hold one intent,
# most intents fall into one or two topics.
TOPIC_DISTANCE = 0.65
# Knowledge gaps group a little tighter: a group should be one FAQ entry. MiniLM puts
# paraphrases such as "Can I pay with bitcoin?" and "Do you accept cryptocurrency?" at a cosine
# similarity of only about 0.5, so much tighter would split them.
GAP_DISTANCE = 0.6
# Two wordings at least this similar are the same question (top questions).
DUPLICATE_SIMILARITY = 0.9
MIN_TOPIC_SIZE = 2
MAX_TOPICS = 30
LABEL_TERMS = 3
TOP_QUESTIONS = 20
PAIN_POINTS = 10
MIN_GAP_CONVERSATIONS = 2
MAX_EXAMPLES = 10
TOPIC_EXAMPLES = 3
NEGATIVE_SENTIMENT = -0.3  # the console's "negative" mood
LOW_SCORE = 2  # a CSAT score at or below this is a low one
KEEP_SNAPSHOTS = 100
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 4000

FAQ_FILE = "accepted-gaps.csv"
TESTS_FILE = "knowledge-gaps.yaml"
CACHE_FILE = "insight-vectors.npz"
GAP_STATUSES = ("open", "accepted", "dismissed")

SMALL_TALK = frozenset({"greet", "thanks", "goodbye", "declined_human", "capabilities"})
UNCLEAR_REASONS = frozenset({"low_confidence", "out_of_scope", "loop"})
# Flow replies to a message that is a new request, not an answer to the flow's question.
NEW_REQUEST_REASONS = ("flow_started", "flow_switched", "flow_digression")

# Words that say nothing about a topic, on top of scikit-learn's English stop words.
_CHAT = """hi hello hey thanks thank please pls want wanted need needs like know just really would
    could can get got im ive id dont doesnt didnt does did tell help question ok okay yes yeah
    yep sure hmm also still let make use way say said thing things something anything lot bit
    wondering wonder possible able guys team ask asking trying try going maybe actually long
    much many"""
CHAT_WORDS = frozenset(_CHAT.split())


class InsightsError(ActionError):
    """A request the insights cannot serve; ``code`` and ``status`` go to the API."""


# --- text -------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9][a-z0-9'’]*")


def clean(text: str) -> str:
    """The text without pseudonym tokens, in one line."""
    return " ".join(TOKEN_RE.sub(" ", text).split())


def words(text: str) -> list[str]:
    """Lower-case words of a text, without pseudonym tokens, numbers or apostrophes."""
    found = (w.replace("'", "").replace("’", "") for w in _WORD.findall(clean(text).lower()))
    return [w for w in found if w and not any(c.isdigit() for c in w)]


def normal(text: str) -> str:
    """The key two wordings share when they differ only in case, punctuation or tokens."""
    return " ".join(words(text))


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    plain = {w.replace("'", "") for w in ENGLISH_STOP_WORDS}
    return frozenset(plain | CHAT_WORDS)


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """The content words of a text (stop words and one-letter words removed)."""
    stop = _stop_words()
    return [w for w in words(text) if len(w) > 2 and w not in stop]


def _shown(forms: Counter[str]) -> str:
    """The form of a word to show: the most frequent, then the shortest ("refund", not
    "refunds", when both are as frequent)."""
    return min(forms.items(), key=lambda item: (-item[1], len(item[0]), item[0]))[0]


def label_terms(clusters: Sequence[Sequence[str]], top: int = LABEL_TERMS) -> list[list[str]]:
    """The most distinctive words of each cluster of texts, class-based TF-IDF style.

    A word's weight in a cluster is the share of the cluster's words it makes up (counted once
    per message), times log(1 + A / f), where A is the average number of words in a cluster
    and f the word's count over every cluster: frequent in this cluster, rare elsewhere. Words
    are compared by their stem and shown in their most frequent form."""
    stem = _stemmer().stemWord
    surface: dict[str, Counter[str]] = defaultdict(Counter)
    counts: list[Counter[str]] = []
    for texts in clusters:
        counter: Counter[str] = Counter()
        for text in texts:
            stems = set()
            for word in terms(text):
                root = stem(word)
                surface[root][word] += 1
                stems.add(root)
            counter.update(stems)
        counts.append(counter)
    overall: Counter[str] = Counter()
    for counter in counts:
        overall.update(counter)
    if not overall:
        return [[] for _ in clusters]
    average = sum(overall.values()) / max(1, len(counts))
    labels: list[list[str]] = []
    for texts, counter in zip(clusters, counts, strict=True):
        total = sum(counter.values())
        # A word of one message in a big cluster is that message's, not the cluster's.
        floor = max(1, round(0.15 * len(texts)))
        scored = sorted(
            (
                (-(n / total) * math.log(1 + average / overall[root]), root)
                for root, n in counter.items()
                if n >= floor
            ),
        )
        labels.append([_shown(surface[root]) for _, root in scored[:top]])
    return labels


# --- reading ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Asked:
    """One customer message with the bot's reply to it."""

    id: str
    conversation_id: str
    seq: int
    text: str
    created_at: datetime
    meta: dict[str, Any]
    waiting: bool = False  # a flow was waiting for an answer when it came
    handed_off: bool = False  # a person took the conversation over at this turn or later

    @property
    def action(self) -> str:
        return str(self.meta.get("action") or "")

    @property
    def reason(self) -> str:
        return str(self.meta.get("reason") or "")

    @property
    def sentiment(self) -> float:
        return float(self.meta.get("sentiment") or 0.0)

    @property
    def question(self) -> bool:
        """A request to the front desk: not small talk, not an answer to a flow's question,
        not the "yes" to an offer of a person, not a message to a person."""
        action, reason = self.action, self.reason
        if not action or action in SMALL_TALK:
            return False
        if action == "handoff" and reason == "accepted_offer":
            return False
        if self.waiting:
            return reason.startswith(NEW_REQUEST_REASONS)
        return True

    @property
    def unanswered(self) -> bool:
        """The bot asked to rephrase, offered a person, or handed over, because it did not
        understand the message or found nothing confident in the knowledge."""
        if self.action not in ("rephrase", "offer_human", "handoff"):
            return False
        return self.reason.removesuffix("_repeated") in UNCLEAR_REASONS


@dataclass(slots=True)
class ExistingGap:
    id: int
    key: str
    question: str
    examples: list[str]
    status: str


@dataclass(slots=True)
class Source:
    """What one refresh reads, in one transaction."""

    asked: list[Asked]
    capped: bool
    agent_replies: dict[str, list[tuple[datetime, str]]]  # conversation -> (time, text)
    handoffs: dict[str, list[datetime]]
    ratings: list[tuple[int, str | None, str | None]]  # score, article, flow
    titles: dict[str, str]
    gaps: list[ExistingGap]


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_source(session: Session, since: datetime, until: datetime, limit: int) -> Source:
    rows = session.execute(
        select(
            MessageRow.id,
            MessageRow.conversation_id,
            MessageRow.seq,
            MessageRow.text,
            MessageRow.created_at,
        )
        .where(
            MessageRow.role == Role.CUSTOMER.value,
            MessageRow.created_at >= since,
            MessageRow.created_at < until,
        )
        .order_by(MessageRow.created_at.desc(), MessageRow.id)
        .limit(limit + 1)
    ).all()
    capped = len(rows) > limit
    asked = [Asked(r.id, r.conversation_id, r.seq, r.text, r.created_at, {}) for r in rows[:limit]]
    by_id = {a.id: a for a in asked}
    for ids in _chunks(list(by_id)):
        replies = session.execute(
            select(MessageRow.reply_to, MessageRow.meta)
            .where(MessageRow.role == Role.BOT.value, MessageRow.reply_to.in_(ids))
            .order_by(MessageRow.seq)
        ).tuples()
        for reply_to, meta in replies:
            found = by_id.get(reply_to or "")
            if found is not None and not found.meta:
                found.meta = dict(meta or {})
    conversations = sorted({a.conversation_id for a in asked})
    handoffs: dict[str, list[datetime]] = defaultdict(list)
    for ids in _chunks(conversations):
        for conversation_id, created in session.execute(
            select(HandoffRow.conversation_id, HandoffRow.created_at).where(
                HandoffRow.conversation_id.in_(ids)
            )
        ).tuples():
            handoffs[conversation_id].append(created)
    agent_replies: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for ids in _chunks(sorted(handoffs)):
        for conversation_id, created, text in session.execute(
            select(MessageRow.conversation_id, MessageRow.created_at, MessageRow.text)
            .where(MessageRow.role == Role.AGENT.value, MessageRow.conversation_id.in_(ids))
            .order_by(MessageRow.conversation_id, MessageRow.seq)
        ).tuples():
            agent_replies[conversation_id].append((created, text))
    ratings = [
        (int(score), article, flow)
        for score, article, flow in session.execute(
            select(CsatRow.score, CsatRow.article, CsatRow.flow).where(
                CsatRow.created_at >= since, CsatRow.created_at < until
            )
        ).tuples()
    ]
    articles = sorted({a for _, a, _ in ratings if a})
    titles: dict[str, str] = {}
    for ids in _chunks(articles):
        titles.update(
            session.execute(select(ArticleRow.id, ArticleRow.title).where(ArticleRow.id.in_(ids)))
            .tuples()
            .all()
        )
    gaps = [
        ExistingGap(g.id, g.key, g.question, [str(e) for e in g.examples or []], g.status)
        for g in session.execute(select(KnowledgeGapRow).order_by(KnowledgeGapRow.id)).scalars()
    ]
    return Source(asked, capped, dict(agent_replies), dict(handoffs), ratings, titles, gaps)


def _mark_context(asked: list[Asked], handoffs: dict[str, list[datetime]]) -> None:
    """Which messages answered a waiting flow, and which led to a person."""
    by_conversation: dict[str, list[Asked]] = defaultdict(list)
    for item in asked:
        by_conversation[item.conversation_id].append(item)
    for conversation_id, items in by_conversation.items():
        items.sort(key=lambda a: a.seq)
        for before, item in zip([None, *items[:-1]], items, strict=True):
            item.waiting = before is not None and bool(before.meta.get("flow"))
        times = handoffs.get(conversation_id, [])
        for item in items:
            item.handed_off = any(t >= item.created_at for t in times)


# --- grouping ---------------------------------------------------------------------------------


def cluster(vectors: Vector, distance: float) -> Labels:
    """Average-linkage clustering by cosine distance, cut at ``distance``. Deterministic for a
    given order of the rows."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=np.intp)
    from sklearn.cluster import AgglomerativeClustering

    model = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=distance
    )
    labels: Labels = np.asarray(model.fit_predict(vectors), dtype=np.intp)
    return labels


def near_duplicates(vectors: Vector, similarity: float = DUPLICATE_SIMILARITY) -> Labels:
    """Rows linked by a cosine similarity of at least ``similarity`` (directly or through
    others), as connected components of that graph."""
    n = len(vectors)
    if n < 2:
        return np.zeros(n, dtype=np.intp)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows: list[npt.NDArray[np.intp]] = []
    cols: list[npt.NDArray[np.intp]] = []
    for start in range(0, n, 1024):
        block = vectors[start : start + 1024] @ vectors.T
        r, c = np.nonzero(block >= similarity)
        rows.append(r + start)
        cols.append(c)
    i, j = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return np.asarray(labels, dtype=np.intp)


def _unit(vectors: Vector) -> Vector:
    total = vectors.sum(axis=0)
    norm = float(np.linalg.norm(total))
    result: Vector = (total / norm if norm > 0 else total).astype(np.float32)
    return result


@dataclass(slots=True)
class Wording:
    """Messages with the same words (the same ``normal`` key)."""

    key: str
    text: str  # the first of them, as typed (pseudonymized)
    items: list[Asked] = field(default_factory=list)


def _wordings(asked: Iterable[Asked]) -> list[Wording]:
    found: dict[str, Wording] = {}
    for item in asked:
        key = normal(item.text)
        if not key:
            continue
        if key not in found:
            found[key] = Wording(key, item.text)
        found[key].items.append(item)
    # Most asked first; the key breaks ties, so the order (and the clusters) is stable.
    return sorted(found.values(), key=lambda w: (-len(w.items), w.key))


def _pick_text(texts: Sequence[str], vectors: Vector, weights: Sequence[float]) -> int:
    """The typical wording, preferring one without pseudonym tokens."""
    # The weighted similarity of each wording to all the others: V (V^T w), not (V V^T) w.
    order = np.argsort(-(vectors @ (vectors.T @ np.asarray(weights, dtype=np.float32))))
    for index in order:
        if not TOKEN_RE.search(texts[int(index)]):
            return int(index)
    return int(order[0])


# --- the insights -----------------------------------------------------------------------------


def _rate(items: Sequence[Asked], test: Callable[[Asked], bool]) -> float:
    return round(sum(1 for i in items if test(i)) / len(items), 4) if items else 0.0


def _topic_stats(items: Sequence[Asked]) -> dict[str, Any]:
    intents = Counter(str(i.meta["intent"]) for i in items if i.meta.get("intent"))
    return {
        "size": len(items),
        "conversations": len({i.conversation_id for i in items}),
        "average_sentiment": round(sum(i.sentiment for i in items) / len(items), 4),
        "negative_share": _rate(items, lambda i: i.sentiment <= NEGATIVE_SENTIMENT),
        "handoff_rate": _rate(items, lambda i: i.handed_off),
        "low_confidence_share": _rate(items, lambda i: i.unanswered),
        "intent": intents.most_common(1)[0][0] if intents else None,
    }


@dataclass(slots=True)
class GapGroup:
    question: str
    examples: list[str]
    times: list[datetime]  # per conversation, when it first went unanswered
    suggested: str
    key: str
    gap_id: int | None = None


def topics_and_questions(
    wordings: list[Wording], vectors: Vector, total: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Topics (clusters of the questions) and top questions (near-duplicates merged)."""
    if not wordings:
        return [], [], 0
    counts = [len(w.items) for w in wordings]
    same = near_duplicates(vectors)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(same):
        groups[int(label)].append(index)
    # Each group of near-duplicates is one question; wordings are sorted, so the first member
    # of a group is its most asked wording.
    questions = sorted(groups.values(), key=lambda g: (-sum(counts[i] for i in g), g[0]))
    centroids = np.vstack([_unit(vectors[g] * np.asarray(counts)[g, None]) for g in questions])
    topic_of_question = cluster(centroids, TOPIC_DISTANCE)
    members: dict[int, list[int]] = defaultdict(list)  # topic -> question indexes
    for q, label in enumerate(topic_of_question):
        members[int(label)].append(q)
    order = sorted(
        members,
        key=lambda t: (-sum(counts[i] for q in members[t] for i in questions[q]), min(members[t])),
    )
    texts_of = [[wordings[i].text for q in members[t] for i in questions[q]] for t in order]
    weighted_texts = [
        [wordings[i].text for q in members[t] for i in questions[q] for _ in range(counts[i])]
        for t in order
    ]
    labels = label_terms(weighted_texts)
    topics: list[dict[str, Any]] = []
    topic_id: dict[int, int] = {}
    other = 0
    for rank, t in enumerate(order):
        indexes = [i for q in members[t] for i in questions[q]]
        items = [item for i in indexes for item in wordings[i].items]
        if len(items) < MIN_TOPIC_SIZE or len(topics) >= MAX_TOPICS:
            other += len(items)
            continue
        weights = [float(counts[i]) for i in indexes]
        typical = indexes[_pick_text(texts_of[rank], vectors[indexes], weights)]
        topic_id[t] = len(topics) + 1
        topics.append(
            {
                "id": len(topics) + 1,
                "label": " · ".join(labels[rank]) or clean(wordings[typical].text)[:60],
                "terms": labels[rank],
                "question": wordings[typical].text,
                **_topic_stats(items),
                "share": round(len(items) / total, 4),
                "examples": [wordings[i].text for i in indexes if i != typical][:TOPIC_EXAMPLES],
            }
        )
    top: list[dict[str, Any]] = []
    for q, indexes in enumerate(questions[:TOP_QUESTIONS]):
        items = [item for i in indexes for item in wordings[i].items]
        top.append(
            {
                "question": wordings[indexes[0]].text,
                "count": len(items),
                "share": round(len(items) / total, 4),
                "variants": [wordings[i].text for i in indexes[1:4]],
                "low_confidence_share": _rate(items, lambda i: i.unanswered),
                "topic": topic_id.get(int(topic_of_question[q])),
            }
        )
    return topics, top, other


def pain_points(topics: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Topics by the pain they carry: the average of their negative share and handoff rate
    (``pain``, 0 to 1), times their size (``impact``: about how many painful messages)."""
    found = []
    for topic in topics:
        pain = round((topic["negative_share"] + topic["handoff_rate"]) / 2, 4)
        if pain <= 0:
            continue
        found.append(
            {
                "topic": topic["id"],
                "label": topic["label"],
                "question": topic["question"],
                "size": topic["size"],
                "average_sentiment": topic["average_sentiment"],
                "negative_share": topic["negative_share"],
                "handoff_rate": topic["handoff_rate"],
                "low_confidence_share": topic["low_confidence_share"],
                "pain": pain,
                "impact": round(pain * topic["size"], 2),
            }
        )
    found.sort(key=lambda p: (-p["impact"], -p["pain"], p["topic"]))
    return found[:PAIN_POINTS]


def low_csat(
    ratings: Sequence[tuple[int, str | None, str | None]], titles: dict[str, str]
) -> dict[str, Any]:
    """Per article and per flow that served rated conversations: the number of ratings, their
    average, and the share of low ones (at most LOW_SCORE). Worst first."""

    def table(pairs: Iterable[tuple[str, int]], name: str) -> list[dict[str, Any]]:
        scores: dict[str, list[int]] = defaultdict(list)
        for key, score in pairs:
            scores[key].append(score)
        rows = []
        for key, values in scores.items():
            row: dict[str, Any] = {name: key}
            if name == "article":
                row["title"] = titles.get(
                    key, "Approved answer" if key.startswith("approved-") else key
                )
            row.update(
                ratings=len(values),
                average=round(sum(values) / len(values), 3),
                low=sum(1 for v in values if v <= LOW_SCORE),
                low_share=round(sum(1 for v in values if v <= LOW_SCORE) / len(values), 4),
            )
            rows.append(row)
        rows.sort(key=lambda r: (-r["low_share"], r["average"], -r["ratings"], r[name]))
        return rows

    return {
        "ratings": len(ratings),
        "articles": table(((a, s) for s, a, _ in ratings if a), "article"),
        "flows": table(((f, s) for s, _, f in ratings if f), "flow"),
    }


_GREETING = re.compile(r"^\s*(hi|hello|hey|good (morning|afternoon|evening))\b", re.IGNORECASE)
_SMALL_TALK = re.compile(
    r"\b(how can i help|what can i (do|help)|following up|i'?ve emailed you|bear with me|"
    r"let me (check|look))\b",
    re.IGNORECASE,
)


def pleasantry(text: str) -> bool:
    """An agent's hello or holding message ("Hi, Sam here. How can I help?"), not an answer."""
    if _SMALL_TALK.search(text):
        return True
    return bool(_GREETING.match(text)) and len(text.split()) <= 8


def _agent_answer(
    item: Asked, source: Source, within: timedelta = timedelta(days=2)
) -> tuple[datetime, str] | None:
    """The first reply an agent wrote after the handoff that followed this message (within
    ``within`` of it) that answers something (not a hello or a holding message), unless it
    holds the customer's personal data."""
    after = [t for t in source.handoffs.get(item.conversation_id, []) if t >= item.created_at]
    if not after:
        return None
    handoff = min(after)
    for created, text in source.agent_replies.get(item.conversation_id, []):
        if not handoff <= created <= handoff + within or not text.strip() or pleasantry(text):
            continue
        if TOKEN_RE.search(text):
            return None  # written for this one customer (an address, a number): no FAQ answer
        return created, text.strip()
    return None


def gap_key(question: str) -> str:
    return hashlib.sha256(f"gap\0{normal(question)}".encode()).hexdigest()[:40]


def _match(
    gaps: Sequence[ExistingGap],
    gap_vectors: dict[int, Vector],
    members: Vector,
    key: str,
    shared: int | None,
) -> int | None:
    """The existing gap a group belongs to: the one that has one of its wordings; else the
    open or dismissed gap it would have been clustered with (an average similarity of at least
    1 - GAP_DISTANCE to the gap's question and examples); else an accepted gap with a
    near-duplicate of one of its wordings (a looser match would hide questions the accepted
    entry does not answer); else the gap with its key."""
    if shared is not None:
        return shared
    best, score = None, 0.0
    for gap in gaps:
        matrix = gap_vectors.get(gap.id)
        if matrix is None:
            continue
        similarities = members @ matrix.T
        average, most = float(similarities.mean()), float(similarities.max())
        if gap.status == "accepted":
            fits = most >= DUPLICATE_SIMILARITY
        else:
            fits = average >= 1 - GAP_DISTANCE
        if fits and average > score:
            best, score = gap.id, average
    if best is not None:
        return best
    return next((gap.id for gap in gaps if gap.key == key), None)


def knowledge_gaps(
    candidates: list[Wording],
    vectors: Vector,
    source: Source,
    gap_vectors: dict[int, Vector],
) -> list[GapGroup]:
    """Unanswered questions grouped by similarity; each group matched to an existing gap when
    it is similar enough to its question or examples (or shares a wording with them)."""
    if not candidates:
        return []
    labels = cluster(vectors, GAP_DISTANCE)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        groups[int(label)].append(index)
    known_wordings = {
        normal(text): gap.id for gap in source.gaps for text in (gap.question, *gap.examples)
    }
    found: list[GapGroup] = []
    for indexes in sorted(groups.values(), key=lambda g: g[0]):
        items = [item for i in indexes for item in candidates[i].items]
        first: dict[str, Asked] = {}
        for item in sorted(items, key=lambda a: a.created_at):
            first.setdefault(item.conversation_id, item)
        weights = [float(len(candidates[i].items)) for i in indexes]
        texts = [candidates[i].text for i in indexes]
        typical = _pick_text(texts, vectors[indexes], weights)
        centre = _unit(vectors[indexes])
        closeness = vectors[indexes] @ centre
        examples = [texts[int(i)] for i in np.argsort(-closeness)][:MAX_EXAMPLES]
        # The answer an agent gave: from the conversation closest to the typical wording.
        suggested = ""
        for i in np.argsort(-closeness):
            for item in sorted(candidates[indexes[int(i)]].items, key=lambda a: a.created_at):
                answer = _agent_answer(item, source)
                if answer is not None:
                    suggested = answer[1]
                    break
            if suggested:
                break
        group = GapGroup(
            question=texts[typical],
            examples=examples,
            times=sorted(a.created_at for a in first.values()),
            suggested=suggested,
            key=gap_key(texts[typical]),
        )
        shared = next(
            (
                known_wordings[w]
                for w in (candidates[i].key for i in indexes)
                if w in known_wordings
            ),
            None,
        )
        group.gap_id = _match(source.gaps, gap_vectors, vectors[indexes], group.key, shared)
        if group.gap_id is None and len(first) < MIN_GAP_CONVERSATIONS:
            continue
        found.append(group)
    return found


def _merge_examples(old: Sequence[str], new: Sequence[str]) -> list[str]:
    """The examples kept so far, then new wordings while there is room."""
    merged: list[str] = []
    seen: set[str] = set()
    for text in [*old, *new]:
        key = normal(text)
        if key and key not in seen:
            seen.add(key)
            merged.append(text)
    return merged[:MAX_EXAMPLES]


def write_gaps(session: Session, groups: Sequence[GapGroup]) -> dict[str, int]:
    """Insert new gaps and update matched ones. A conversation counts once, and again only if
    it falls outside the span already counted (first_seen to last_seen): re-running over the
    same days changes nothing. Statuses, edited questions and answers are left as they are."""
    now = utcnow()
    created = updated = 0
    for group in groups:
        row = session.get(KnowledgeGapRow, group.gap_id) if group.gap_id is not None else None
        if row is None:
            row = session.execute(
                select(KnowledgeGapRow).where(KnowledgeGapRow.key == group.key)
            ).scalar_one_or_none()
        if row is None:
            session.add(
                KnowledgeGapRow(
                    key=group.key,
                    question=group.question,
                    suggested_answer=group.suggested,
                    examples=group.examples,
                    count=len(group.times),
                    status="open",
                    article_id=None,
                    reviewed_by=None,
                    first_seen=group.times[0],
                    last_seen=group.times[-1],
                    updated_at=now,
                )
            )
            session.flush()
            created += 1
            continue
        added = [t for t in group.times if t < row.first_seen or t > row.last_seen]
        examples = _merge_examples(list(row.examples or []), group.examples)
        if not added and examples == list(row.examples or []):
            continue
        row.count += len(added)
        row.first_seen = min(row.first_seen, group.times[0])
        row.last_seen = max(row.last_seen, group.times[-1])
        row.examples = examples
        if row.status == "open" and not row.suggested_answer and group.suggested:
            row.suggested_answer = group.suggested
        row.updated_at = now
        updated += 1
    return {"created": created, "updated": updated}


def _store_snapshot(
    session: Session, first: date, last: date, payload: dict[str, Any], groups: list[GapGroup]
) -> dict[str, Any]:
    counts = write_gaps(session, groups)
    session.flush()
    counts["open"] = len(
        session.execute(select(KnowledgeGapRow.id).where(KnowledgeGapRow.status == "open")).all()
    )
    payload = {**payload, "gaps": counts}
    session.add(
        InsightSnapshotRow(
            start=first.isoformat(), end=last.isoformat(), payload=payload, created_at=utcnow()
        )
    )
    session.flush()
    cutoff = session.execute(
        select(InsightSnapshotRow.id)
        .order_by(InsightSnapshotRow.id.desc())
        .offset(KEEP_SNAPSHOTS - 1)
        .limit(1)
    ).scalar_one_or_none()
    if cutoff is not None:
        session.execute(delete(InsightSnapshotRow).where(InsightSnapshotRow.id < cutoff))
    return payload


# --- the job ----------------------------------------------------------------------------------

# One refresh at a time, and one change of the accepted entries at a time, per service.
_locks: weakref.WeakKeyDictionary[Frontdesk, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


def _lock(fd: Frontdesk, name: str) -> asyncio.Lock:
    locks = _locks.setdefault(fd, {})
    if name not in locks:
        locks[name] = asyncio.Lock()
    return locks[name]


def resolve_range(fd: Frontdesk, start: date | None, end: date | None) -> tuple[date, date]:
    """The days to read (both included): by default the last DEFAULT_DAYS up to today, in the
    company's timezone; at most MAX_DAYS (the insights read messages, unlike the KPIs)."""
    zone = fd.guidelines.working_hours.timezone
    return date_range(zone, start, end, default_days=DEFAULT_DAYS, max_days=MAX_DAYS)


def _bounds(fd: Frontdesk, first: date, last: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(fd.guidelines.working_hours.timezone)
    since = datetime.combine(first, clock(), zone).astimezone(UTC)
    until = datetime.combine(last + timedelta(days=1), clock(), zone).astimezone(UTC)
    return since, until


def _cache_key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class VectorCache:
    """The vectors of the texts the last refresh embedded, kept in ``DATA_DIR/cache`` under a
    digest of each text (no text is stored), so that the next refresh of an overlapping range
    embeds only the new messages. Only what a refresh used is written back."""

    def __init__(self, path: Path, encoder: str) -> None:
        self.path = path
        self.encoder = encoder
        self.known: dict[str, Vector] = {}
        self.used: dict[str, Vector] = {}

    def load(self) -> None:
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if str(data["encoder"]) != self.encoder:
                    return
                keys, vectors = data["keys"], data["vectors"]
                self.known = {str(k): vectors[i] for i, k in enumerate(keys)}
        except (OSError, KeyError, ValueError):
            self.known = {}  # no cache yet, or an unreadable one: embed everything

    def save(self) -> None:
        if not self.used:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=self.path.parent, prefix=".vectors-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(
                    out,
                    encoder=np.array(self.encoder),
                    keys=np.array(list(self.used)),
                    vectors=np.vstack(list(self.used.values())),
                )
            os.replace(name, self.path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


async def embed_texts(
    fd: Frontdesk, texts: Sequence[str], cache: VectorCache | None = None
) -> Vector:
    """Vectors of the texts (tokens removed, cut to MAX_EMBED_CHARS): from the cache, or
    embedded on a worker thread in batches, so the service keeps answering meanwhile."""
    embedder = await asyncio.to_thread(lambda: fd.embedder)
    prepared = [clean(t)[:MAX_EMBED_CHARS] for t in texts]
    keys = [_cache_key(t) for t in prepared]
    result: Vector = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    missing: list[int] = []
    for index, key in enumerate(keys):
        known = cache.known.get(key) if cache is not None else None
        if known is not None and known.shape == (embedder.dimension,):
            result[index] = known
        else:
            missing.append(index)
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start : start + EMBED_BATCH]
        result[batch] = await asyncio.to_thread(embedder.embed, [prepared[i] for i in batch])
    if cache is not None:
        for index, key in enumerate(keys):
            cache.used[key] = result[index]
    return result


async def refresh_insights(
    fd: Frontdesk, start: date | None = None, end: date | None = None
) -> dict[str, Any]:
    """Compute the insights of a date range (default: the last 28 days, company timezone),
    store them as a snapshot, and upsert the knowledge gaps. Returns the snapshot."""
    first, last = resolve_range(fd, start, end)
    since, until = _bounds(fd, first, last)
    async with _lock(fd, "refresh"):
        started = time.perf_counter()
        source = await fd.db.run(lambda s: read_source(s, since, until, MAX_MESSAGES))
        _mark_context(source.asked, source.handoffs)
        questions = [a for a in source.asked if a.question and normal(a.text)]
        wordings = _wordings(questions)
        embedder = await asyncio.to_thread(lambda: fd.embedder)
        cache = VectorCache(fd.settings.data_dir / "cache" / CACHE_FILE, embedder.name)
        await asyncio.to_thread(cache.load)
        vectors = await embed_texts(fd, [w.text for w in wordings], cache)
        gap_texts = {
            gap.id: [t for t in dict.fromkeys((gap.question, *gap.examples)) if normal(t)]
            for gap in source.gaps
        }
        flat = [t for texts in gap_texts.values() for t in texts]
        flat_vectors = await embed_texts(fd, flat, cache)
        await asyncio.to_thread(cache.save)
        gap_vectors: dict[int, Vector] = {}
        offset = 0
        for gap_id, texts in gap_texts.items():
            if texts:
                gap_vectors[gap_id] = flat_vectors[offset : offset + len(texts)]
            offset += len(texts)

        def compute() -> tuple[dict[str, Any], list[GapGroup]]:
            topics, top, other = topics_and_questions(wordings, vectors, len(questions))
            unanswered = [
                (w, vectors[i])
                for i, w in enumerate(wordings)
                if any(item.unanswered for item in w.items)
            ]
            candidates = [
                Wording(w.key, w.text, [i for i in w.items if i.unanswered]) for w, _ in unanswered
            ]
            candidate_vectors = (
                np.vstack([v for _, v in unanswered])
                if unanswered
                else np.zeros((0, vectors.shape[1]), dtype=np.float32)
            )
            groups = knowledge_gaps(candidates, candidate_vectors, source, gap_vectors)
            payload = {
                "start": first.isoformat(),
                "end": last.isoformat(),
                "messages": len(source.asked),
                "questions": len(questions),
                "conversations": len({a.conversation_id for a in questions}),
                "capped": source.capped,
                "topics": topics,
                "other_messages": other,
                "top_questions": top,
                "pain_points": pain_points(topics),
                "low_csat": low_csat(source.ratings, source.titles),
            }
            return payload, groups

        payload, groups = await asyncio.to_thread(compute)
        payload["computed_at"] = utcnow().isoformat()
        payload["seconds"] = round(time.perf_counter() - started, 3)
        stored = await fd.db.run(lambda s: _store_snapshot(s, first, last, payload, groups))
    return stored


async def latest_insights(
    fd: Frontdesk, start: date | None = None, end: date | None = None
) -> dict[str, Any] | None:
    """The newest snapshot (of exactly ``start`` to ``end`` when they are given)."""

    def read(session: Session) -> dict[str, Any] | None:
        query = select(InsightSnapshotRow).order_by(InsightSnapshotRow.id.desc()).limit(1)
        if start is not None:
            query = query.where(InsightSnapshotRow.start == start.isoformat())
        if end is not None:
            query = query.where(InsightSnapshotRow.end == end.isoformat())
        row = session.execute(query).scalar_one_or_none()
        return None if row is None else dict(row.payload)

    return await fd.db.run(read)


# --- knowledge gaps: review -------------------------------------------------------------------


def _gap_public(row: KnowledgeGapRow, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": row.id,
        "key": row.key,
        "question": row.question,
        "suggested_answer": row.suggested_answer,
        "examples": list(row.examples or []),
        "count": row.count,
        "status": row.status,
        "article_id": row.article_id,
        "reviewed_by": (
            {"id": row.reviewed_by, "name": names.get(row.reviewed_by, row.reviewed_by)}
            if row.reviewed_by
            else None
        ),
        "first_seen": row.first_seen.isoformat(),
        "last_seen": row.last_seen.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def _gap(session: Session, gap_id: int) -> KnowledgeGapRow:
    row = session.get(KnowledgeGapRow, gap_id)
    if row is None:
        raise InsightsError("not_found", f"no knowledge gap with id {gap_id}", 404)
    return row


def _public(session: Session, row: KnowledgeGapRow) -> dict[str, Any]:
    session.refresh(row)
    return _gap_public(row, people.names(session, [row.reviewed_by] if row.reviewed_by else []))


async def list_gaps(fd: Frontdesk, status: str | None = "open") -> list[dict[str, Any]]:
    """The gaps with ``status`` (None: all), most asked first."""
    if status is not None and status not in GAP_STATUSES:
        raise InsightsError("invalid_status", f"status is one of {', '.join(GAP_STATUSES)}", 422)

    def read(session: Session) -> list[dict[str, Any]]:
        query = select(KnowledgeGapRow).order_by(
            KnowledgeGapRow.count.desc(), KnowledgeGapRow.last_seen.desc(), KnowledgeGapRow.id
        )
        if status is not None:
            query = query.where(KnowledgeGapRow.status == status)
        rows = list(session.execute(query).scalars())
        names = people.names(session, [r.reviewed_by for r in rows if r.reviewed_by])
        return [_gap_public(r, names) for r in rows]

    return await fd.db.run(read)


def faq_path(fd: Frontdesk) -> Path:
    """The FAQ file of accepted gaps (written by Frontdesk from the database)."""
    return (fd.settings.data_dir / "knowledge" / FAQ_FILE).resolve()


def article_id_for(question: str) -> str:
    """The id the knowledge base gives the accepted entry (as ``load_faq`` makes it)."""
    prefix = slugify(Path(FAQ_FILE).stem, 60)
    return f"{prefix}--{slugify(question, 100)}"


def _write_faq(path: Path, entries: Sequence[tuple[int, str, str]]) -> None:
    """Replace the file at once (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".accepted-", suffix=".csv")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["question", "answer", "gap"])
            for gap_id, question, answer in entries:
                writer.writerow([question, answer, gap_id])
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


async def sync_accepted_knowledge(fd: Frontdesk) -> int:
    """Write the accepted gaps to the FAQ file, bring the knowledge base in line with it (only
    its own articles: other sources are left alone) and reload the index. Returns how many
    entries there are."""

    def read(session: Session) -> list[tuple[int, str, str]]:
        rows = session.execute(
            select(KnowledgeGapRow.id, KnowledgeGapRow.question, KnowledgeGapRow.suggested_answer)
            .where(KnowledgeGapRow.status == "accepted")
            .order_by(KnowledgeGapRow.id)
        ).tuples()
        return [(int(i), q, a) for i, q, a in rows]

    entries = await fd.db.run(read)
    path = faq_path(fd)
    await asyncio.to_thread(_write_faq, path, entries)
    documents = await asyncio.to_thread(load_faq, path, path.parent)
    embedder = await asyncio.to_thread(lambda: fd.embedder)
    await ingest_documents(fd.db, documents, embedder, prune_prefix=f"{path}:")
    await fd.reload_knowledge()
    return len(documents)


def save_regression_test(path: Path, gap_id: int, question: str, article_id: str) -> Path:
    """Add (or replace) a conversation test: the question is answered, citing the entry."""
    conversation = {
        "name": f"knowledge gap {gap_id}: {question[:80]}",
        "tags": ["knowledge-gap"],
        "turns": [{"say": question, "expect": {"action": "answer", "citation": article_id}}],
    }
    header = (
        "# Questions the bot once could not answer, answered since from accepted knowledge\n"
        "# gaps. Written by Frontdesk (`frontdesk insights gaps accept --save-test`).\n"
    )
    return save_conversation(path, conversation, header)


async def accept_gap(
    fd: Frontdesk,
    gap_id: int,
    answer: str,
    *,
    question: str | None = None,
    user_id: str | None = None,
    save_test: Path | None = None,
) -> dict[str, Any]:
    """Accept a gap with the reviewer's answer (and question, if edited): it becomes an entry
    of the knowledge base at once, cited when the bot uses it. With ``save_test``, a
    conversation test that checks the bot answers it is added to that file."""
    answer = answer.strip()
    asked = (question or "").strip()
    if not answer:
        raise InsightsError("invalid_answer", "the answer must not be empty", 422)
    if len(answer) > MAX_ANSWER_CHARS:
        raise InsightsError("invalid_answer", f"answers are at most {MAX_ANSWER_CHARS} chars", 422)
    if len(asked) > MAX_QUESTION_CHARS:
        raise InsightsError(
            "invalid_question", f"questions are at most {MAX_QUESTION_CHARS} chars", 422
        )

    def mark(session: Session) -> tuple[dict[str, Any], tuple[str, str, str, str | None]]:
        row = _gap(session, gap_id)
        if row.status == "accepted":
            raise InsightsError("already_accepted", "this gap has been accepted already", 409)
        final = asked or clean(row.question)
        if not normal(final):
            raise InsightsError("invalid_question", "the question must have words", 422)
        article = article_id_for(final)
        taken = session.execute(
            select(KnowledgeGapRow.id).where(
                KnowledgeGapRow.status == "accepted",
                KnowledgeGapRow.article_id == article,
                KnowledgeGapRow.id != gap_id,
            )
        ).first()
        if taken is not None:
            raise InsightsError(
                "duplicate_question",
                f"gap {taken[0]} was accepted with the same question; edit the question",
                409,
            )
        before = (row.status, row.question, row.suggested_answer, row.reviewed_by)
        changed = session.execute(
            update(KnowledgeGapRow)
            .where(KnowledgeGapRow.id == gap_id, KnowledgeGapRow.status != "accepted")
            .values(
                status="accepted",
                question=final,
                suggested_answer=answer,
                reviewed_by=user_id,
                article_id=article,
                updated_at=utcnow(),
            )
        )
        if cast("CursorResult[Any]", changed).rowcount != 1:
            raise InsightsError("already_accepted", "this gap has been accepted already", 409)
        people.audit(session, user_id, "gap_accepted", None, {"gap": gap_id, "article": article})
        return _public(session, row), before

    async with _lock(fd, "knowledge"):
        gap, before = await fd.db.run(mark)

        def undo(session: Session) -> None:
            status, old_question, old_answer, reviewer = before
            session.execute(
                update(KnowledgeGapRow)
                .where(KnowledgeGapRow.id == gap_id)
                .values(
                    status=status,
                    question=old_question,
                    suggested_answer=old_answer,
                    reviewed_by=reviewer,
                    article_id=None,
                    updated_at=utcnow(),
                )
            )
            people.audit(session, user_id, "gap_accept_undone", None, {"gap": gap_id})

        try:
            await sync_accepted_knowledge(fd)
        except Exception:
            await fd.db.run(undo)
            with contextlib.suppress(Exception):  # the file and the index without it again
                await sync_accepted_knowledge(fd)
            raise
    if save_test is not None:
        try:
            written = await asyncio.to_thread(
                save_regression_test, save_test, gap_id, gap["question"], gap["article_id"]
            )
        except (OSError, SuiteError) as exc:
            raise InsightsError(
                "test_not_saved", f"the gap is accepted, but the test was not saved: {exc}", 500
            ) from exc
        gap["test_file"] = str(written)
    return gap


async def dismiss_gap(fd: Frontdesk, gap_id: int, *, user_id: str | None = None) -> dict[str, Any]:
    """Dismiss a gap: it stays dismissed when the same questions come again."""

    def work(session: Session) -> dict[str, Any]:
        row = _gap(session, gap_id)
        if row.status == "accepted":
            raise InsightsError(
                "already_accepted", "an accepted gap is in the knowledge base already", 409
            )
        if row.status != "dismissed":
            row.status = "dismissed"
            row.reviewed_by = user_id
            row.updated_at = utcnow()
            people.audit(session, user_id, "gap_dismissed", None, {"gap": gap_id})
            session.flush()
        return _public(session, row)

    return await fd.db.run(work)


def default_tests_path(fd: Frontdesk) -> Path:
    return fd.settings.data_dir / "tests" / TESTS_FILE
