"""Comparing the variants of an A/B experiment, from the rollup's counts by variant.

For each variant against the control, on bot resolution rate, handoff rate, conversion rate
and CSAT: the value with its 95% confidence interval (Wilson for rates, normal for the CSAT
mean), the difference with its 95% interval (normal approximation), and a verdict in plain
words: ``better`` or ``worse`` when the interval of the difference excludes zero, else
``not yet known`` (also while either side has too few conversations or ratings).
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from frontdesk.analytics.kpis import read_counts

Z95 = 1.959964
MIN_CONVERSATIONS = 30
MIN_RATINGS = 20

# metric, label, count metric (None: a mean), higher is better
METRICS = (
    ("bot_resolution_rate", "bot resolution", "bot_resolved", True),
    ("handoff_rate", "handoffs", "handoffs", False),
    ("conversion_rate", "conversion", "conversions", True),
    ("csat_average", "CSAT", None, True),
)


def wilson(successes: float, n: float) -> tuple[float, float] | None:
    if n <= 0:
        return None
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _mean(total: float, squares: float, n: float) -> tuple[float, float] | None:
    """Mean and variance of the mean (the sample variance over n)."""
    if n < 2:
        return None
    mean = total / n
    variance = max(0.0, (squares - n * mean * mean) / (n - 1))
    return mean, variance / n


def _rate_side(m: dict[str, float], count: str) -> dict[str, Any]:
    n = m.get("conversations", 0.0)
    x = m.get(count, 0.0)
    interval = wilson(x, n)
    return {
        "value": None if n <= 0 else x / n,
        "low": None if interval is None else interval[0],
        "high": None if interval is None else interval[1],
        "n": int(n),
    }


def _csat_side(m: dict[str, float]) -> dict[str, Any]:
    n = m.get("csat_n", 0.0)
    found = _mean(m.get("csat_sum", 0.0), m.get("csat_sq", 0.0), n)
    if found is None:
        value = m.get("csat_sum", 0.0) / n if n else None
        return {"value": value, "low": None, "high": None, "n": int(n)}
    mean, var = found
    half = Z95 * math.sqrt(var)
    return {"value": mean, "low": max(1.0, mean - half), "high": min(5.0, mean + half), "n": int(n)}


def _difference(
    control: dict[str, float], variant: dict[str, float], count: str | None
) -> tuple[float, float, float] | None:
    """(difference, low, high) of variant minus control."""
    if count is None:
        a = _mean(
            control.get("csat_sum", 0.0), control.get("csat_sq", 0.0), control.get("csat_n", 0.0)
        )
        b = _mean(
            variant.get("csat_sum", 0.0), variant.get("csat_sq", 0.0), variant.get("csat_n", 0.0)
        )
        if a is None or b is None:
            return None
        diff, se = b[0] - a[0], math.sqrt(a[1] + b[1])
    else:
        na, nb = control.get("conversations", 0.0), variant.get("conversations", 0.0)
        if na <= 0 or nb <= 0:
            return None
        pa, pb = control.get(count, 0.0) / na, variant.get(count, 0.0) / nb
        diff, se = pb - pa, math.sqrt(pa * (1 - pa) / na + pb * (1 - pb) / nb)
    return diff, diff - Z95 * se, diff + Z95 * se


def verdict(
    control: dict[str, float],
    variant: dict[str, float],
    count: str | None,
    higher: bool,
) -> tuple[str, tuple[float, float, float] | None]:
    enough = (
        control.get("conversations", 0.0) >= MIN_CONVERSATIONS
        and variant.get("conversations", 0.0) >= MIN_CONVERSATIONS
    )
    if count is None:
        enough = (
            control.get("csat_n", 0.0) >= MIN_RATINGS and variant.get("csat_n", 0.0) >= MIN_RATINGS
        )
    diff = _difference(control, variant, count)
    if not enough or diff is None:
        return "not yet known", diff
    _, low, high = diff
    if low > 0:
        return ("better" if higher else "worse"), diff
    if high < 0:
        return ("worse" if higher else "better"), diff
    return "not yet known", diff


def _describe(variant: str, control: str, outcomes: list[dict[str, Any]]) -> str:
    better = [o["label"] for o in outcomes if o["verdict"] == "better"]
    worse = [o["label"] for o in outcomes if o["verdict"] == "worse"]
    unknown = [o["label"] for o in outcomes if o["verdict"] == "not yet known"]
    parts = []
    if better:
        parts.append(f"better on {', '.join(better)}")
    if worse:
        parts.append(f"worse on {', '.join(worse)}")
    if unknown:
        parts.append(f"not yet known on {', '.join(unknown)}")
    return f"{variant} compared with {control}: " + "; ".join(parts) + "."


def compare(
    session: Session, name: str, control: str, variants: list[str], start: date, end: date
) -> dict[str, Any]:
    """Every variant's KPIs with intervals, and each non-control variant against the
    control."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    prefix = f"{name}:"
    for _day, value, metric, amount in read_counts(session, start, end, "variant"):
        if value.startswith(prefix):
            counts[value[len(prefix) :]][metric] += amount
    sides = {}
    for variant in variants:
        m = counts.get(variant, {})
        side: dict[str, Any] = {"conversations": int(m.get("conversations", 0.0))}
        for key, _label, count, _higher in METRICS:
            side[key] = _csat_side(m) if count is None else _rate_side(m, count)
        sides[variant] = side
    comparisons = []
    for variant in variants:
        if variant == control:
            continue
        outcomes = []
        for key, label, count, higher in METRICS:
            said, diff = verdict(counts.get(control, {}), counts.get(variant, {}), count, higher)
            outcomes.append(
                {
                    "metric": key,
                    "label": label,
                    "verdict": said,
                    "difference": None if diff is None else diff[0],
                    "low": None if diff is None else diff[1],
                    "high": None if diff is None else diff[2],
                }
            )
        comparisons.append(
            {
                "variant": variant,
                "against": control,
                "metrics": outcomes,
                "summary": _describe(variant, control, outcomes),
            }
        )
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "variants": sides,
        "comparisons": comparisons,
    }
