"""The KPI rollup and the dashboard API at scale.

Fills a fresh database with the events of ``--conversations`` synthetic conversations (100,000
by default, about 10 messages each: 1,000,000 messages) spread over 90 days, then:

1. rolls them all up (``run_rollup``, batches of 50,000 events, one transaction each) and
   reports the time and the rate;
2. calls the dashboard's API (KPIs, daily and weekly series, breakdowns by intent and agent,
   90-day range) ``--requests`` times each through the ASGI app as a logged-in admin, and
   reports p50 and p95 per endpoint.

Targets on this machine (2 cores): the rollup under 60 s, every endpoint p95 <= 200 ms.
The events are inserted directly (the rollup reads only the events table); the messages
themselves are not written, since nothing here reads them.

    .venv/bin/python benchmarks/analytics_rollup.py [--conversations 100000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from frontdesk.actions.accounts import do_add_user
from frontdesk.adapters.store.tables import EventRow
from frontdesk.analytics.kpis import today_in
from frontdesk.analytics.rollup import run_rollup
from frontdesk.api.app import create_app
from frontdesk.config import Settings
from frontdesk.demo import demo_store_dir
from frontdesk.service import Frontdesk

SEED = 20261129
DAYS = 90
TARGET_ROLLUP_S = 60.0
TARGET_P95_MS = 200.0
INTENTS = [f"intent_{i:02d}" for i in range(30)]
FLOWS = ["order_status", "return_item", "exchange_item", "cancel_order", "product_search"]
AGENTS = [f"agent-{i}" for i in range(6)]
CHANNELS = ["web", "web", "web", "email", "sms"]
REASONS = ["customer_request", "frustration", "sensitive:legal", "low_confidence", "loop"]


def conversation_events(n: int, rng: random.Random, end: datetime) -> list[dict[str, Any]]:
    """The events of one conversation of about 10 messages (5 customer, 5 replies)."""
    cid = f"bench-{n:07d}"
    at = end - timedelta(seconds=rng.uniform(0, DAYS * 86_400))
    out: list[dict[str, Any]] = []

    def add(kind: str, payload: dict[str, Any]) -> None:
        out.append({"type": kind, "conversation_id": cid, "payload": payload, "created_at": at})

    add("conversation_opened", {"channel": rng.choice(CHANNELS)})
    intent = rng.choice(INTENTS)
    flow = rng.choice(FLOWS) if rng.random() < 0.3 else None
    handoff = rng.random() < 0.15
    agent = rng.choice(AGENTS)
    turns = rng.randint(3, 7)
    for turn in range(turns):
        add("message_received", {"seq": 2 * turn + 1})
        if handoff and turn >= 1:
            if turn == 1:
                add("handoff_requested", {"reason": rng.choice(REASONS)})
                at += timedelta(seconds=rng.uniform(30, 900))
                add("agent_took_over", {"agent": agent})
            at += timedelta(seconds=rng.uniform(5, 120))
            add("agent_replied", {"agent": agent})
        else:
            at += timedelta(seconds=rng.uniform(0.005, 0.05))
            action = "answer" if rng.random() < 0.85 else "rephrase"
            add(
                "reply_sent",
                {
                    "action": action,
                    "intent": intent,
                    "flow": flow,
                    "sentiment": round(rng.uniform(-0.8, 0.9), 3),
                    "confidence": round(rng.random(), 3),
                },
            )
        at += timedelta(seconds=rng.uniform(10, 180))
    if flow and rng.random() < 0.3:
        add("conversion", {"revenue": round(rng.uniform(5, 300), 2)})
    if rng.random() < 0.05:
        add("lead_captured", {"score": 0.5})
    if rng.random() < 0.85:
        add("conversation_resolved", {"by": "agent" if handoff else "bot", "agent": agent})
        if rng.random() < 0.45:
            add("csat_submitted", {"score": rng.choices([1, 2, 3, 4, 5], [1, 1, 2, 4, 6])[0]})
        if rng.random() < 0.05:
            at += timedelta(days=rng.uniform(0.1, 5))
            add("message_received", {"seq": 99})
            add("reply_sent", {"action": "answer", "intent": intent, "sentiment": 0.0})
            add("conversation_reopened", {})
    return out


async def fill(fd: Frontdesk, conversations: int) -> tuple[int, int, float]:
    """Insert the events in time order (as a live service would have); (events, messages, s)."""
    rng = random.Random(SEED)
    end = datetime.now(UTC) - timedelta(minutes=5)
    started = time.perf_counter()
    events: list[dict[str, Any]] = []
    for n in range(conversations):
        events += conversation_events(n, rng, end)
    events.sort(key=lambda e: e["created_at"])
    messages = sum(
        1 for e in events if e["type"] in ("message_received", "reply_sent", "agent_replied")
    )
    table = EventRow.__table__
    for start in range(0, len(events), 50_000):
        chunk = events[start : start + 50_000]
        await fd.db.run(lambda s, c=chunk: s.execute(table.insert(), c))  # type: ignore[misc]
        print(f"\r  inserted {start + len(chunk):,} events", end="", file=sys.stderr)
    print(file=sys.stderr)
    return len(events), messages, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


async def measure_api(fd: Frontdesk, requests: int) -> dict[str, dict[str, float]]:
    await do_add_user(fd, "bench@example.com", "Bench", "admin", "benchmark password 1")
    app = create_app(frontdesk=fd)
    transport = httpx.ASGITransport(app=app)
    end = today_in(fd.guidelines.working_hours.timezone)
    start = end - timedelta(days=DAYS)  # every conversation of the last 90 days
    span = {"start": start.isoformat(), "end": end.isoformat()}
    endpoints = {
        "kpis": ("/api/analytics/kpis", span),
        "timeseries_day": ("/api/analytics/timeseries", {**span, "grain": "day"}),
        "timeseries_week": ("/api/analytics/timeseries", {**span, "grain": "week"}),
        "breakdown_intent": ("/api/analytics/breakdown", {**span, "by": "intent"}),
        "breakdown_agent": ("/api/analytics/breakdown", {**span, "by": "agent"}),
        "kpis_csv": ("/api/analytics/kpis", {**span, "format": "csv"}),
    }
    results: dict[str, dict[str, float]] = {}
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        login = await client.post(
            "/api/console/login",
            json={"email": "bench@example.com", "password": "benchmark password 1"},
        )
        login.raise_for_status()
        for name, (path, params) in endpoints.items():
            (await client.get(path, params=params)).raise_for_status()  # warm
            times = []
            for _ in range(requests):
                began = time.perf_counter()
                response = await client.get(path, params=params)
                times.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
            results[name] = {
                "p50_ms": round(percentile(times, 50), 2),
                "p95_ms": round(percentile(times, 95), 2),
            }
        body = (await client.get("/api/analytics/kpis", params=span)).json()
    results["_kpis"] = {k: body[k] for k in ("conversations", "customer_messages")}
    return results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--database-url", help="Default: SQLite in a temporary folder.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fd-rollup-") as folder:
        settings = Settings(
            data_dir=Path(folder),
            database_url=args.database_url,
            company_dir=demo_store_dir(),
            secret_key="benchmark-secret-key",
            analytics_rollup_seconds=0,
            rate_limit_per_ip=0,
            rate_limit_logins=0,
        )
        fd = Frontdesk(settings)
        await fd.start(load_knowledge=False)
        try:
            print(f"filling {args.conversations:,} conversations ...", file=sys.stderr)
            events, messages, fill_s = await fill(fd, args.conversations)
            print(f"  {events:,} events, {messages:,} messages in {fill_s:.1f} s", file=sys.stderr)
            began = time.perf_counter()
            report = await run_rollup(fd, lag_seconds=0)
            rollup_s = time.perf_counter() - began
            api = await measure_api(fd, args.requests)
        finally:
            await fd.close()

    kpis = api.pop("_kpis")
    result = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "database": "postgresql" if args.database_url else "sqlite",
        "conversations": args.conversations,
        "events": events,
        "messages": messages,
        "rollup_seconds": round(rollup_s, 2),
        "events_per_second": round(report.events / rollup_s),
        "batches": report.batches,
        "kpis_conversations": kpis["conversations"],
        "api": api,
    }
    print(json.dumps(result, indent=2))
    print(
        f"rollup: {rollup_s:.1f} s for {events:,} events "
        f"({'PASS' if rollup_s < TARGET_ROLLUP_S else 'MISS'}: target < {TARGET_ROLLUP_S:.0f} s)"
    )
    worst = max(v["p95_ms"] for v in api.values())
    print(
        f"dashboard API: worst p95 {worst:.1f} ms "
        f"({'PASS' if worst <= TARGET_P95_MS else 'MISS'}: target <= {TARGET_P95_MS:.0f} ms)"
    )
    if kpis["conversations"] != args.conversations:
        print(f"ERROR: the KPIs count {kpis['conversations']} conversations", file=sys.stderr)
        return 1
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
