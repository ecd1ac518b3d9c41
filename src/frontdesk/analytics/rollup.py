"""The rollup: domain events in, additive KPI counts out.

The events table is append-only. The rollup reads it in id order, in batches; each batch
updates the per-conversation state it needs (``analytics_conversations``), adds its numbers
to the count table (``analytics_counts``) and moves the cursor (``analytics_cursor``), all in
one transaction. A rollup killed mid-batch leaves nothing of that batch behind, and the next
run starts at the cursor: nothing is counted twice or lost.

Every number belongs to the day the conversation was opened (in the company's timezone), so
that the rates of a date range are taken over the conversations opened in it. Each event adds
to the row of every dimension the conversation has by then: all, channel, and, once known,
its intent, flow, agent and A/B variant (and for handoffs, the reason).

Response times go into a log-scale histogram (20 buckets a decade) as well as into sums, so
that medians come from counts too (within 6% of the exact value).
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from frontdesk.adapters.store.tables import (
    AnalyticsConversationRow,
    AnalyticsCountRow,
    AnalyticsCursorRow,
    EventRow,
)
from frontdesk.core.types import utcnow

CURSOR = "kpis"
BATCH_EVENTS = 50_000

# Histogram of response times: bucket i holds values in [10^((i-1)/20), 10^(i/20)) * FLOOR.
BUCKETS_PER_DECADE = 20
FLOOR_SECONDS = 0.01
TOP_BUCKET = 7 * BUCKETS_PER_DECADE  # 0.01 s .. 100,000 s; anything above goes in the last
NEGATIVE_SENTIMENT = -0.3
UNANSWERED_ACTIONS = frozenset({"rephrase", "offer_human"})

ALL = ("all", "")


def bucket_of(seconds: float) -> int:
    """The histogram bucket of a duration (0 for anything under 10 ms)."""
    if seconds <= FLOOR_SECONDS:
        return 0
    index = math.floor(math.log10(seconds / FLOOR_SECONDS) * BUCKETS_PER_DECADE) + 1
    return min(index, TOP_BUCKET)


def bucket_bounds(index: int) -> tuple[float, float]:
    if index == 0:
        return 0.0, FLOOR_SECONDS
    low = FLOOR_SECONDS * 10 ** ((index - 1) / BUCKETS_PER_DECADE)
    high = FLOOR_SECONDS * 10 ** (index / BUCKETS_PER_DECADE)
    return low, high


@dataclass(slots=True)
class _State:
    """One conversation as the rollup follows it (a row of analytics_conversations)."""

    conversation_id: str
    day: str
    channel: str
    opened_at: datetime
    awaiting_since: datetime | None = None
    first_response_done: bool = False
    intent: str | None = None
    flow: str | None = None
    agent: str | None = None
    handed_off: bool = False
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    bot_counted: bool = False
    converted: bool = False
    variant: str | None = None  # "experiment:variant" of an A/B experiment
    known: list[tuple[str, str]] | None = None  # dims(), until a dimension is set

    def dims(self) -> list[tuple[str, str]]:
        if self.known is None:
            found = [ALL, ("channel", self.channel)]
            if self.intent:
                found.append(("intent", self.intent))
            if self.flow:
                found.append(("flow", self.flow))
            if self.agent:
                found.append(("agent", self.agent))
            if self.variant:
                found.append(("variant", self.variant))
            self.known = found
        return self.known

    def row(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            "day": self.day,
            "channel": self.channel,
            "opened_at": self.opened_at,
            "awaiting_since": self.awaiting_since,
            "first_response_done": self.first_response_done,
            "intent": self.intent,
            "flow": self.flow,
            "agent": self.agent,
            "handed_off": self.handed_off,
            "resolved_at": self.resolved_at,
            "resolved_by": self.resolved_by,
            "bot_counted": self.bot_counted,
            "converted": self.converted,
            "variant": self.variant,
        }


Counts = defaultdict[tuple[str, str, str, str], float]


@dataclass(frozen=True, slots=True)
class RollupReport:
    events: int
    conversations: int
    batches: int
    cursor: int
    skipped: int

    def public(self) -> dict[str, int]:
        return {
            "events": self.events,
            "conversations": self.conversations,
            "batches": self.batches,
            "cursor": self.cursor,
            "skipped": self.skipped,
        }


class _Batch:
    """Applies a batch of events to conversation states and collects the count deltas."""

    def __init__(self, states: dict[str, _State], zone: ZoneInfo, reopen_days: int) -> None:
        self.states = states
        self.zone = zone
        self.reopen = timedelta(days=reopen_days)
        self.counts: Counts = defaultdict(float)
        self.touched: set[str] = set()
        self.skipped = 0

    def add(self, state: _State, metric: str, amount: float = 1.0, dims: Any = None) -> None:
        counts, day = self.counts, state.day
        for dimension, value in dims if dims is not None else state.dims():
            counts[(day, dimension, value, metric)] += amount

    def _response(self, state: _State, at: datetime) -> None:
        if state.awaiting_since is None:
            return
        seconds = max(0.0, (at - state.awaiting_since).total_seconds())
        state.awaiting_since = None
        self.add(state, "resp_n")
        self.add(state, "resp_sum", seconds)
        if not state.first_response_done:
            state.first_response_done = True
            self.add(state, "fr_n")
            self.add(state, "fr_sum", seconds)
            self.add(state, f"fr_h{bucket_of(seconds)}")

    def _dimension(self, state: _State, dimension: str, value: str | None) -> None:
        """Set the conversation's intent, flow or agent the first time it is seen: from then
        on its numbers also go to that dimension's row."""
        if not value or getattr(state, dimension) is not None:
            return
        setattr(state, dimension, str(value)[:128])
        state.known = None
        self.add(state, "conversations", dims=[(dimension, str(value)[:128])])

    def apply(
        self, kind: str, conversation_id: str | None, payload: dict[str, Any], at: datetime
    ) -> None:
        if conversation_id is None:
            return
        state = self.states.get(conversation_id)
        if kind == "conversation_opened":
            if state is not None:
                return
            day = at.astimezone(self.zone).date().isoformat()
            channel = str(payload.get("channel") or "web")[:32]
            state = _State(conversation_id, day, channel, at)
            self.states[conversation_id] = state
            self.touched.add(conversation_id)
            self.add(state, "conversations")
            return
        if state is None:
            self.skipped += 1  # an event of a conversation opened before any event was kept
            return
        self.touched.add(conversation_id)
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, state, payload, at)

    # --- one method per event type -------------------------------------------------------

    def message_received(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self.add(state, "customer_messages")
        if state.awaiting_since is None:
            state.awaiting_since = at

    def reply_sent(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self._dimension(state, "intent", payload.get("intent"))
        self._dimension(state, "flow", payload.get("flow"))
        self._response(state, at)
        sentiment = payload.get("sentiment")
        if isinstance(sentiment, int | float):
            self.add(state, "sent_n")
            self.add(state, "sent_sum", float(sentiment))
            if sentiment <= NEGATIVE_SENTIMENT:
                self.add(state, "negative")
        if payload.get("action") in UNANSWERED_ACTIONS:
            self.add(state, "unanswered")

    def agent_took_over(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self._dimension(state, "agent", payload.get("agent"))

    def agent_replied(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self._dimension(state, "agent", payload.get("agent"))
        self._response(state, at)

    def handoff_requested(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        if state.bot_counted:
            state.bot_counted = False
            self.add(state, "bot_resolved", -1)
        if state.handed_off:
            return
        state.handed_off = True
        reason = str(payload.get("reason") or "unknown")[:128]
        self.add(state, "handoffs", dims=[*state.dims(), ("handoff_reason", reason)])

    def conversation_resolved(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        by = str(payload.get("by") or "agent")
        if by == "agent":
            self._dimension(state, "agent", payload.get("agent"))
        if state.resolved_at is None:
            self.add(state, "resolved")
            seconds = max(0.0, (at - state.opened_at).total_seconds())
            self.add(state, "resolution_sum", seconds)
            if by == "agent":
                self.add(state, "agent_resolved")
        state.resolved_at = at
        state.resolved_by = by
        if by == "bot" and not state.handed_off and not state.bot_counted:
            state.bot_counted = True
            self.add(state, "bot_resolved")

    def conversation_reopened(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self.add(state, "reopened")
        within = state.resolved_at is not None and at - state.resolved_at <= self.reopen
        if state.bot_counted and within:
            state.bot_counted = False
            self.add(state, "bot_resolved", -1)

    def csat_submitted(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        score = payload.get("score")
        if not isinstance(score, int) or not 1 <= score <= 5:
            return
        self.add(state, "csat_n")
        self.add(state, "csat_sum", score)
        self.add(state, "csat_sq", score * score)
        self.add(state, f"csat_{score}")

    def conversion(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        revenue = payload.get("revenue")
        if isinstance(revenue, int | float) and revenue > 0:
            self.add(state, "revenue", float(revenue))
        if not state.converted:
            state.converted = True
            self.add(state, "conversions")

    def experiment_assigned(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        name, variant = payload.get("experiment"), payload.get("variant")
        if name and variant:
            self._dimension(state, "variant", f"{name}:{variant}")

    def lead_captured(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self.add(state, "leads")

    def guard_intervened(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self.add(state, "guard_interventions")

    def model_called(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        """A turn's model calls: their count, tokens and cost (usage and cost per day)."""
        self.add(state, "model_calls", float(payload.get("calls") or 1))
        for key in ("prompt_tokens", "completion_tokens", "cost"):
            value = payload.get(key)
            if isinstance(value, int | float) and value > 0:
                self.add(state, f"model_{key}", float(value))

    def model_fallback(self, state: _State, payload: dict[str, Any], at: datetime) -> None:
        self.add(state, "model_fallbacks")


_HANDLERS: dict[str, Callable[[_Batch, _State, dict[str, Any], datetime], None]] = {
    name: getattr(_Batch, name)
    for name in (
        "message_received",
        "reply_sent",
        "agent_took_over",
        "agent_replied",
        "handoff_requested",
        "conversation_resolved",
        "conversation_reopened",
        "csat_submitted",
        "conversion",
        "experiment_assigned",
        "lead_captured",
        "guard_intervened",
        "model_called",
        "model_fallback",
    )
}
ROLLED_UP = frozenset({"conversation_opened", *_HANDLERS})


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT DO UPDATE on both databases."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _load_states(session: Session, ids: Sequence[str]) -> dict[str, _State]:
    states: dict[str, _State] = {}
    for chunk in _chunks(ids, 5000):
        rows = session.execute(
            select(AnalyticsConversationRow).where(
                AnalyticsConversationRow.conversation_id.in_(chunk)
            )
        ).scalars()
        for row in rows:
            states[row.conversation_id] = _State(
                conversation_id=row.conversation_id,
                day=row.day,
                channel=row.channel,
                opened_at=row.opened_at,
                awaiting_since=row.awaiting_since,
                first_response_done=row.first_response_done,
                intent=row.intent,
                flow=row.flow,
                agent=row.agent,
                handed_off=row.handed_off,
                resolved_at=row.resolved_at,
                resolved_by=row.resolved_by,
                bot_counted=row.bot_counted,
                converted=row.converted,
                variant=row.variant,
            )
    return states


def _save(session: Session, batch: _Batch) -> None:
    """Upsert the touched states and add the count deltas (one compiled statement each,
    executed for many rows)."""
    insert = _insert(session)
    rows = [batch.states[cid].row() for cid in batch.touched]
    if rows:
        table = AnalyticsConversationRow.__table__
        statement = insert(table)
        columns = {c: statement.excluded[c] for c in rows[0] if c != "conversation_id"}
        session.execute(
            statement.on_conflict_do_update(index_elements=["conversation_id"], set_=columns),
            rows,
        )
    counts = [
        {"day": day, "dimension": dimension, "value": value, "metric": metric, "amount": amount}
        for (day, dimension, value, metric), amount in batch.counts.items()
        if amount != 0
    ]
    if counts:
        count_table = AnalyticsCountRow.__table__
        statement = insert(count_table)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["dimension", "day", "value", "metric"],
                set_={"amount": count_table.c.amount + statement.excluded.amount},
            ),
            counts,
        )


def _lock_cursor(session: Session, name: str) -> int:
    """Take the cursor for this transaction (its row is written first, so a second rollup
    waits here, on SQLite and PostgreSQL alike) and return where it stands."""
    now = utcnow()
    changed = session.execute(
        update(AnalyticsCursorRow).where(AnalyticsCursorRow.name == name).values(updated_at=now)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        session.add(AnalyticsCursorRow(name=name, last_event_id=0, updated_at=now))
        session.flush()
        return 0
    found = session.execute(
        select(AnalyticsCursorRow.last_event_id).where(AnalyticsCursorRow.name == name)
    ).scalar_one()
    return int(found)


# The events whose payload the rollup reads (the others count by their type alone).
NO_PAYLOAD = frozenset({"message_received", "conversation_reopened"})


def _payload(kind: str, raw: Any) -> dict[str, Any]:
    if kind in NO_PAYLOAD or raw is None:
        return {}
    if isinstance(raw, str):
        found = json.loads(raw)
        return found if isinstance(found, dict) else {}
    return dict(raw)


def _time(raw: Any) -> datetime:
    """An event's time as stored: text on SQLite (UTC without a zone), a datetime on
    PostgreSQL."""
    at = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def rollup_batch(
    session: Session,
    *,
    zone: ZoneInfo,
    reopen_days: int,
    batch_size: int = BATCH_EVENTS,
    lag_seconds: float = 0.0,
    name: str = CURSOR,
    before_commit: Callable[[int], None] | None = None,
) -> tuple[int, int, int, int]:
    """One batch, in the caller's transaction: (events read, conversations touched, skipped,
    new cursor). 0 events read: the rollup is up to date."""
    cursor = _lock_cursor(session, name)
    table = EventRow.__table__.c
    # The payload and the time come back as the driver gives them (no per-row type work):
    # payloads are decoded only for the events that read them, times parsed here.
    query = (
        select(
            table.id,
            table.type,
            table.conversation_id,
            type_coerce(table.payload, String),
            type_coerce(table.created_at, String),
        )
        .where(table.id > cursor)
        .order_by(table.id)
        .limit(batch_size)
    )
    if lag_seconds > 0:
        query = query.where(table.created_at <= utcnow() - timedelta(seconds=lag_seconds))
    events = session.connection().execute(query).tuples().all()
    if not events:
        return 0, 0, 0, cursor
    ids = sorted({cid for _, kind, cid, _, _ in events if cid and kind in ROLLED_UP})
    batch = _Batch(_load_states(session, ids), zone, reopen_days)
    for _, kind, cid, payload, at in events:
        if kind in ROLLED_UP:
            batch.apply(kind, cid, _payload(kind, payload), _time(at))
    _save(session, batch)
    last = int(events[-1][0])
    session.execute(
        update(AnalyticsCursorRow).where(AnalyticsCursorRow.name == name).values(last_event_id=last)
    )
    if before_commit is not None:
        before_commit(last)
    return len(events), len(batch.touched), batch.skipped, last


async def run_rollup(
    fd: Any,
    *,
    batch_size: int = BATCH_EVENTS,
    lag_seconds: float | None = None,
    max_batches: int | None = None,
    progress: Callable[[int], None] | None = None,
    before_commit: Callable[[int], None] | None = None,
) -> RollupReport:
    """Roll the events up to now (or ``max_batches`` batches), one transaction a batch."""
    zone = ZoneInfo(fd.guidelines.working_hours.timezone)
    reopen_days = fd.guidelines.analytics.reopen_days
    lag = fd.settings.analytics_lag_seconds if lag_seconds is None else lag_seconds
    events = conversations = batches = skipped = 0
    cursor = 0
    while max_batches is None or batches < max_batches:
        read, touched, missed, cursor = await fd.db.run(
            lambda session: rollup_batch(
                session,
                zone=zone,
                reopen_days=reopen_days,
                batch_size=batch_size,
                lag_seconds=lag,
                before_commit=before_commit,
            )
        )
        if read == 0:
            break
        batches += 1
        events += read
        conversations += touched
        skipped += missed
        if progress is not None:
            progress(read)
        if read < batch_size:
            break
    return RollupReport(events, conversations, batches, cursor, skipped)
