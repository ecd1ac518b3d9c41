"""KPIs read from the count table the rollup fills: never from the messages.

A KPI of a date range is computed from the summed counts of the conversations opened in it:
rates over conversations, averages over what was measured (responses, ratings, messages), the
median first response from the histogram.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError
from frontdesk.adapters.store.tables import AnalyticsCountRow, AnalyticsCursorRow, EventRow
from frontdesk.analytics.rollup import CURSOR, TOP_BUCKET, bucket_bounds
from frontdesk.company.guidelines import KpiTargets
from frontdesk.core.types import utcnow

Metrics = dict[str, float]
DEFAULT_DAYS = 28
MAX_DAYS = 3660
DIMENSIONS = ("channel", "intent", "flow", "agent", "handoff_reason", "variant")
Grain = Literal["day", "week"]


@dataclass(frozen=True, slots=True)
class Kpi:
    """A KPI the dashboard tracks against a target: its label and which way is better."""

    key: str
    label: str
    direction: Literal["below", "above"]  # the value should stay below / above the target


TRACKED = (
    Kpi("first_response_seconds", "First response (median, s)", "below"),
    Kpi("average_response_seconds", "Average response (s)", "below"),
    Kpi("resolution_minutes", "Time to resolution (min)", "below"),
    Kpi("bot_resolution_rate", "Bot resolution rate", "above"),
    Kpi("handoff_rate", "Handoff rate", "below"),
    Kpi("csat_average", "CSAT (1-5)", "above"),
    Kpi("sentiment_average", "Sentiment (-1 to 1)", "above"),
    Kpi("conversion_rate", "Conversion rate", "above"),
)
# The KPI's value in the JSON of kpis(): the median is the tracked first response time.
VALUE_KEY = {
    "first_response_seconds": "first_response_seconds_p50",
    "resolution_minutes": "resolution_minutes_avg",
}


class RangeError(ActionError):
    """A date range that cannot be read (422 ``invalid_range``)."""

    def __init__(self, message: str) -> None:
        super().__init__("invalid_range", message, 422)


def today_in(timezone: str, now: datetime | None = None) -> date:
    """The date in the company's timezone (today, or at ``now``)."""
    return (now or utcnow()).astimezone(ZoneInfo(timezone)).date()


def date_range(
    timezone: str,
    start: date | None,
    end: date | None,
    *,
    default_days: int = DEFAULT_DAYS,
    max_days: int = MAX_DAYS,
) -> tuple[date, date]:
    """The days to read, both included: by default the last ``default_days`` up to today in
    the company's ``timezone``."""
    last = end or today_in(timezone)
    first = start or last - timedelta(days=default_days - 1)
    if first > last:
        raise RangeError("start must not be after end")
    if (last - first).days >= max_days:
        raise RangeError(f"a range is at most {max_days} days")
    return first, last


def _ratio(part: float, whole: float) -> float | None:
    return None if whole <= 0 else part / whole


def percentile(metrics: Mapping[str, float], prefix: str, share: float) -> float | None:
    """The ``share`` quantile of a histogram (``prefix`` + bucket index), interpolated on a
    log scale inside its bucket."""
    counts = [metrics.get(f"{prefix}{i}", 0.0) for i in range(TOP_BUCKET + 1)]
    total = sum(counts)
    if total <= 0:
        return None
    wanted = share * total
    seen = 0.0
    for index, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= wanted:
            low, high = bucket_bounds(index)
            inside = (wanted - seen) / count
            if index == 0:
                return high * inside
            return float(low * (high / low) ** inside)
        seen += count
    return bucket_bounds(TOP_BUCKET)[1]


def derive(metrics: Mapping[str, float]) -> dict[str, Any]:
    """The KPIs of one set of summed counts."""
    m = metrics
    conversations = m.get("conversations", 0.0)
    resolved = m.get("resolved", 0.0)
    resolution = _ratio(m.get("resolution_sum", 0.0), resolved)
    return {
        "conversations": int(conversations),
        "customer_messages": int(m.get("customer_messages", 0.0)),
        "first_response_seconds_p50": percentile(m, "fr_h", 0.5),
        "first_response_seconds_p90": percentile(m, "fr_h", 0.9),
        "first_response_seconds_avg": _ratio(m.get("fr_sum", 0.0), m.get("fr_n", 0.0)),
        "average_response_seconds": _ratio(m.get("resp_sum", 0.0), m.get("resp_n", 0.0)),
        "resolution_minutes_avg": None if resolution is None else resolution / 60,
        "resolved": int(resolved),
        "bot_resolved": int(m.get("bot_resolved", 0.0)),
        "agent_resolved": int(m.get("agent_resolved", 0.0)),
        "bot_resolution_rate": _ratio(m.get("bot_resolved", 0.0), conversations),
        "handoffs": int(m.get("handoffs", 0.0)),
        "handoff_rate": _ratio(m.get("handoffs", 0.0), conversations),
        "reopened": int(m.get("reopened", 0.0)),
        "unanswered": int(m.get("unanswered", 0.0)),
        "csat_average": _ratio(m.get("csat_sum", 0.0), m.get("csat_n", 0.0)),
        "csat_count": int(m.get("csat_n", 0.0)),
        "csat_distribution": {str(s): int(m.get(f"csat_{s}", 0.0)) for s in range(1, 6)},
        "sentiment_average": _ratio(m.get("sent_sum", 0.0), m.get("sent_n", 0.0)),
        "negative_share": _ratio(m.get("negative", 0.0), m.get("sent_n", 0.0)),
        "conversions": int(m.get("conversions", 0.0)),
        "conversion_rate": _ratio(m.get("conversions", 0.0), conversations),
        "revenue": round(m.get("revenue", 0.0), 2),
        "leads": int(m.get("leads", 0.0)),
        "guard_interventions": int(m.get("guard_interventions", 0.0)),
        "model_calls": int(m.get("model_calls", 0.0)),
        "model_tokens": int(
            m.get("model_prompt_tokens", 0.0) + m.get("model_completion_tokens", 0.0)
        ),
        "model_prompt_tokens": int(m.get("model_prompt_tokens", 0.0)),
        "model_completion_tokens": int(m.get("model_completion_tokens", 0.0)),
        "model_cost": round(m.get("model_cost", 0.0), 4),
        "model_fallbacks": int(m.get("model_fallbacks", 0.0)),
    }


def read_counts(
    session: Session, start: date, end: date, dimension: str = "all", *, by_day: bool = False
) -> list[tuple[str, str, str, float]]:
    """(day, value, metric, amount) of one dimension over the days from start to end
    (included), summed in the database: per value and metric, and per day when ``by_day``
    (otherwise the day is returned empty)."""
    table = AnalyticsCountRow
    day = table.day if by_day else literal("")
    query = (
        select(day, table.value, table.metric, func.sum(table.amount))
        .where(
            table.dimension == dimension,
            table.day >= start.isoformat(),
            table.day <= end.isoformat(),
        )
        .group_by(*((table.day,) if by_day else ()), table.value, table.metric)
    )
    return [(str(d), v, m, float(a)) for d, v, m, a in session.execute(query).tuples()]


def _sum(rows: Iterable[tuple[str, str, str, float]]) -> Metrics:
    total: Metrics = defaultdict(float)
    for _day, _value, metric, amount in rows:
        total[metric] += amount
    return total


def targets_of(values: Mapping[str, Any], targets: KpiTargets) -> list[dict[str, Any]]:
    """Each tracked KPI against its target: met, missed, or no data."""
    out = []
    for kpi in TRACKED:
        target = getattr(targets, kpi.key)
        if target is None:
            continue
        value = values.get(VALUE_KEY.get(kpi.key, kpi.key))
        if value is None:
            status = "no_data"
        elif kpi.direction == "below":
            status = "met" if value <= target else "missed"
        else:
            status = "met" if value >= target else "missed"
        out.append(
            {
                "kpi": kpi.key,
                "label": kpi.label,
                "value": value,
                "target": target,
                "direction": kpi.direction,
                "status": status,
            }
        )
    return out


def rolled_up_to(session: Session) -> str | None:
    """The time of the newest event the rollup has read."""
    cursor = session.get(AnalyticsCursorRow, CURSOR)
    if cursor is None or cursor.last_event_id == 0:
        return None
    at = session.execute(
        select(EventRow.created_at).where(EventRow.id == cursor.last_event_id)
    ).scalar_one_or_none()
    return None if at is None else at.isoformat()


def recent_alerts(session: Session, start: date, end: date, limit: int = 50) -> list[Any]:
    rows = session.execute(
        select(EventRow.payload, EventRow.created_at)
        .where(EventRow.type == "kpi_alert")
        .order_by(EventRow.id.desc())
        .limit(limit)
    ).tuples()
    found = []
    for payload, at in rows:
        if payload.get("window_end", "") < start.isoformat():
            continue
        if payload.get("window_start", "9999") > end.isoformat():
            continue
        found.append({**payload, "raised_at": at.isoformat()})
    return found


def kpis(session: Session, start: date, end: date, targets: KpiTargets) -> dict[str, Any]:
    """Every KPI of the conversations opened from ``start`` to ``end`` (days included)."""
    values = derive(_sum(read_counts(session, start, end)))
    reasons = _sum(
        (day, "", value, amount)
        for day, value, metric, amount in read_counts(session, start, end, "handoff_reason")
        if metric == "handoffs"
    )
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        **values,
        "handoff_reasons": [
            {"reason": reason, "count": int(count)}
            for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
            if count > 0
        ],
        "targets": targets_of(values, targets),
        "rolled_up_to": rolled_up_to(session),
        "alerts": recent_alerts(session, start, end),
    }


def period_of(day: str, grain: Grain) -> str:
    if grain == "day":
        return day
    parsed = date.fromisoformat(day)
    return (parsed - timedelta(days=parsed.weekday())).isoformat()  # the week's Monday


SERIES_KEYS = (
    "conversations",
    "first_response_seconds_p50",
    "average_response_seconds",
    "bot_resolution_rate",
    "handoff_rate",
    "csat_average",
    "csat_count",
    "sentiment_average",
    "conversions",
    "conversion_rate",
    "revenue",
    "leads",
    "model_calls",
    "model_tokens",
    "model_cost",
)


def timeseries(session: Session, start: date, end: date, grain: Grain) -> dict[str, Any]:
    """The KPIs per day or per week (weeks start on Monday), every period present."""
    periods: dict[str, Metrics] = {}
    day = start
    while day <= end:
        periods.setdefault(period_of(day.isoformat(), grain), defaultdict(float))
        day += timedelta(days=1)
    for day_text, _value, metric, amount in read_counts(session, start, end, by_day=True):
        periods[period_of(day_text, grain)][metric] += amount
    rows = []
    for period in sorted(periods):
        values = derive(periods[period])
        rows.append({"period": period, **{key: values[key] for key in SERIES_KEYS}})
    return {"grain": grain, "start": start.isoformat(), "end": end.isoformat(), "rows": rows}


def breakdown(session: Session, start: date, end: date, by: str) -> dict[str, Any]:
    """The KPIs per value of one dimension (channel, intent, flow, agent, handoff reason)."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}: use one of {', '.join(DIMENSIONS)}")
    grouped: dict[str, Metrics] = defaultdict(lambda: defaultdict(float))
    for _day, value, metric, amount in read_counts(session, start, end, by):
        grouped[value][metric] += amount
    rows: list[dict[str, Any]] = []
    for value, metrics in grouped.items():
        if by == "handoff_reason":
            rows.append({"value": value, "handoffs": int(metrics.get("handoffs", 0.0))})
            continue
        values = derive(metrics)
        rows.append(
            {
                "value": value,
                "conversations": values["conversations"],
                "bot_resolution_rate": values["bot_resolution_rate"],
                "handoff_rate": values["handoff_rate"],
                "csat_average": values["csat_average"],
                "csat_count": values["csat_count"],
                "conversion_rate": values["conversion_rate"],
                "first_response_seconds_p50": values["first_response_seconds_p50"],
            }
        )
    key = "handoffs" if by == "handoff_reason" else "conversations"
    rows.sort(key=lambda row: (-row[key], row["value"]))
    return {"by": by, "start": start.isoformat(), "end": end.isoformat(), "rows": rows}


def window_values(session: Session, end: date, days: int) -> tuple[date, dict[str, Any]]:
    start = end - timedelta(days=days - 1)
    return start, derive(_sum(read_counts(session, start, end)))


def count_rows(session: Session) -> int:
    return int(session.execute(select(func.count()).select_from(AnalyticsCountRow)).scalar_one())
