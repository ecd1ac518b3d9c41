"""KPI alerts: a KPI that drifts past its target raises an alert, once a day.

Each tracked KPI is averaged over the last ``analytics.alert_window_days`` days (the company's
timezone). When it misses its target by more than ``analytics.alert_tolerance`` (a share of
the target) on at least ``analytics.alert_min_conversations`` conversations, a ``kpi_alert``
event is recorded and, when ``FRONTDESK_ALERT_WEBHOOK_URL`` is set, POSTed there as JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.tables import EventRow
from frontdesk.analytics.kpis import targets_of, today_in, window_values

log = logging.getLogger("frontdesk.analytics")
WEBHOOK_TIMEOUT_SECONDS = 5.0


def drift(value: float, target: float) -> float:
    """How far past the target a value is, as a share of the target (absolute if it is 0)."""
    gap = abs(value - target)
    return gap / abs(target) if target else gap


def _raised_today(session: Session, kpi: str, day: str) -> bool:
    rows = session.execute(
        select(EventRow.payload)
        .where(EventRow.type == "kpi_alert")
        .order_by(EventRow.id.desc())
        .limit(200)
    ).scalars()
    return any(p.get("kpi") == kpi and p.get("window_end") == day for p in rows)


def check(session: Session, fd: Any, today: date) -> list[dict[str, Any]]:
    """Raise the alerts due on ``today`` (in the caller's transaction); returns them."""
    settings = fd.guidelines.analytics
    start, values = window_values(session, today, settings.alert_window_days)
    if values["conversations"] < settings.alert_min_conversations:
        return []
    raised = []
    for entry in targets_of(values, fd.guidelines.kpi_targets):
        if entry["status"] != "missed":
            continue
        if drift(entry["value"], entry["target"]) <= settings.alert_tolerance:
            continue
        if _raised_today(session, entry["kpi"], today.isoformat()):
            continue
        alert = {
            "kpi": entry["kpi"],
            "label": entry["label"],
            "value": entry["value"],
            "target": entry["target"],
            "direction": entry["direction"],
            "window_start": start.isoformat(),
            "window_end": today.isoformat(),
            "conversations": values["conversations"],
        }
        repo.append_event(session, "kpi_alert", alert)
        raised.append(alert)
    return raised


def _post(url: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(  # noqa: S310 - the operator's own configured URL
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "frontdesk-alerts"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
        response.read()


async def notify(url: str | None, alerts: list[dict[str, Any]]) -> int:
    """POST each alert to the webhook; a failure is logged, never raised. Returns how many
    were delivered."""
    if not url:
        return 0
    delivered = 0
    for alert in alerts:
        body = {"type": "kpi_alert", "text": describe(alert), "alert": alert}
        try:
            await asyncio.to_thread(_post, url, body)
            delivered += 1
        except Exception as exc:  # the alert stays recorded as an event
            log.warning("the alert webhook failed: %s", exc)
    return delivered


def describe(alert: dict[str, Any]) -> str:
    side = "below" if alert["direction"] == "above" else "above"
    return (
        f"{alert['label']} is {alert['value']:.3g}, {side} its target of {alert['target']:.3g} "
        f"({alert['window_start']} to {alert['window_end']}, "
        f"{alert['conversations']} conversations)"
    )


async def check_alerts(fd: Any, today: date | None = None) -> list[dict[str, Any]]:
    day = today or today_in(fd.guidelines.working_hours.timezone)
    raised: list[dict[str, Any]] = await fd.db.run(lambda session: check(session, fd, day))
    await notify(fd.settings.alert_webhook_url, raised)
    return raised
