"""The A/B experiments section of the analytics dashboard, in a real browser against a real
server: an admin starts an experiment through the API, live conversations are split between
the control and a warmer fallback text, the rollup counts them, and the page shows each
variant with its intervals, verdicts and summary under the strict CSP; the Start form shows
the API's refusals; the admin stops the experiment from the page, naming the winner.

So that the verdicts are decided (they need 30 conversations a side), the store also holds a
day of made-up conversations of the same experiment, as events. Screenshot of the section:
analytics-experiments.png in test-artifacts/ (or FRONTDESK_SCREENSHOTS=docs/images)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import SharedEmbedder
from tests.e2e.conftest import ADMIN, NewPage, needs_chromium, run_server
from tests.e2e.test_analytics import _admin, _login, _watch

from frontdesk.adapters.store import repository as repo
from frontdesk.core.types import simulated_clock
from frontdesk.service import Frontdesk

pytestmark = [pytest.mark.e2e, needs_chromium]

NAME = "warm-fallback"
WARM = "Sorry, I didn't catch that one. Could you put it another way?"
DEFINITION: dict[str, Any] = {
    "name": NAME,
    "description": "Does a warmer fallback keep customers with the bot?",
    "control": "control",
    "variants": {"control": {}, "warm": {"guidelines": {"texts": {"fallback": WARM}}}},
    "weights": {"control": 1, "warm": 1},
}
# Made-up conversations a side: (how many, resolved by the bot, handed off, converted, ratings)
SEEDED = {
    "control": (80, 36, 24, 12, (3, 3, 4, 4, 5) * 5),
    "warm": (80, 52, 12, 3, (3, 4, 4, 5, 5) * 5),
}


def _events() -> list[tuple[str, str, dict[str, Any]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    for variant, (count, bot, handed, converted, ratings) in SEEDED.items():
        for n in range(count):
            cid = f"seeded-{variant}-{n:03d}"
            events += [
                (cid, "conversation_opened", {"channel": "web"}),
                (cid, "experiment_assigned", {"experiment": NAME, "variant": variant}),
                (cid, "message_received", {}),
                (cid, "reply_sent", {"action": "answer", "intent": "order_status"}),
            ]
            if n < bot:
                events.append((cid, "conversation_resolved", {"by": "bot", "how": "goodbye"}))
            elif n < bot + handed:
                events += [
                    (cid, "handoff_requested", {"reason": "asked_for_human"}),
                    (cid, "conversation_resolved", {"by": "agent"}),
                ]
            if n % (count // converted) == 0:
                events.append((cid, "conversion", {"revenue": 80.0}))
            if n < len(ratings):
                events.append((cid, "csat_submitted", {"score": ratings[n]}))
    return events


async def _seed(fd: Frontdesk) -> None:
    await fd.start(load_knowledge=False)
    try:
        now = datetime.now(UTC)
        with simulated_clock(lambda: now):
            for cid, kind, payload in _events():
                await fd.db.run(lambda s, c=cid, k=kind, p=payload: repo.append_event(s, k, p, c))
    finally:
        await fd.close()


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path, shared_embedder: SharedEmbedder) -> Iterator[str]:
    """The e2e server (see conftest), with the console accounts and the made-up day."""
    yield from run_server(sqlite_template, tmp_path, shared_embedder, _seed)


def _gibberish(server: str, conversations: int) -> Counter[str]:
    """Conversations the bot cannot understand: each gets its variant's fallback text."""
    seen: Counter[str] = Counter()
    with httpx.Client(base_url=server, timeout=60) as client:
        for n in range(conversations):
            opened = client.post("/api/conversations", json={"channel": "web"})
            assert opened.status_code == 201, opened.text
            cid = opened.json()["id"]
            sent = client.post(
                f"/api/conversations/{cid}/messages",
                json={"text": "qwzx blorp", "client_message_id": f"{cid}-{n}"},
            )
            assert sent.status_code in (200, 201), sent.text
            seen["warm" if sent.json()["replies"][0]["text"] == WARM else "control"] += 1
    return seen


def test_that_an_admin_compares_and_stops_an_experiment(
    new_page: NewPage, server: str, shots: Path
) -> None:
    with _admin(server) as admin:
        started = admin.post("/api/analytics/experiments", json=DEFINITION)
        assert started.status_code == 201, started.text
    seen = _gibberish(server, 10)
    assert set(seen) == {"control", "warm"}, seen  # both texts were served
    with _admin(server) as admin:
        assert admin.post("/api/analytics/rollup").status_code == 200
        listed = admin.get("/api/analytics/experiments").json()["experiments"]
    (api_experiment,) = listed
    sides = api_experiment["comparison"]["variants"]
    for variant, (count, *_rest) in SEEDED.items():
        assert sides[variant]["conversations"] == count + seen[variant]
    verdicts = {
        m["metric"]: m["verdict"] for m in api_experiment["comparison"]["comparisons"][0]["metrics"]
    }
    assert verdicts["bot_resolution_rate"] == "better" and verdicts["handoff_rate"] == "better"
    assert verdicts["conversion_rate"] == "worse"

    page = new_page("/console/analytics")
    page.wait_for_url("**/console/login?next=*")
    # The sign-in page first asks whether a session exists (a 401 it expects); watch after.
    page.get_by_test_id("login-form").wait_for(state="visible")
    errors = _watch(page, ("insights", "gaps"))
    _login(page, ADMIN)
    page.wait_for_url("**/console/analytics?*")
    section = page.get_by_test_id("experiments")
    item = section.locator(f'[data-testid="experiment"][data-name="{NAME}"]')
    item.wait_for()
    assert item.get_attribute("data-status") == "running"
    assert item.get_attribute("open") is not None  # the running one is open
    assert item.get_by_test_id("exp-status").inner_text() == "Running"

    # Both variants, with the API's conversation counts.
    for variant in ("control", "warm"):
        count = item.locator(f'[data-testid="exp-conversations"][data-variant="{variant}"]')
        assert count.get_attribute("data-count") == str(sides[variant]["conversations"])
        assert f"{sides[variant]['conversations']} conversations" in count.inner_text()
    # A table per metric: the value with its interval, the difference, the verdict badge.
    assert item.get_by_test_id("exp-table").count() == 4
    for metric, verdict in verdicts.items():
        row = item.locator(f'[data-testid="exp-row"][data-variant="warm"][data-metric="{metric}"]')
        badge = row.get_by_test_id("exp-verdict")
        assert badge.get_attribute("data-verdict") == verdict, metric
        value = row.get_by_test_id("exp-value").inner_text()
        assert "(" in value and "–" in value, value  # "65% (56–73%)"
    handoff = item.locator(
        '[data-testid="exp-row"][data-variant="warm"][data-metric="handoff_rate"]'
    )
    assert handoff.get_by_test_id("exp-verdict").inner_text() == "Better"  # lower is better
    bot = item.locator(
        '[data-testid="exp-row"][data-variant="warm"][data-metric="bot_resolution_rate"]'
    )
    warm_bot = sides["warm"]["bot_resolution_rate"]
    assert (
        bot.get_by_test_id("exp-value")
        .inner_text()
        .startswith(f"{round(warm_bot['value'] * 100)}% (")
    )
    summary = api_experiment["comparison"]["comparisons"][0]["summary"]
    assert item.get_by_test_id("exp-summary").inner_text() == summary
    # plotly drew the four charts (error bars), under the CSP.
    charts = item.locator(".an-exp-chart")
    assert charts.count() == 4
    for n in range(4):
        charts.nth(n).locator("svg.main-svg").first.wait_for(timeout=15_000)
    assert item.locator(".an-exp-chart .errorbar").count() >= 2

    # CSV export.
    href = section.get_by_test_id("export-experiments").get_attribute("href")
    exported = page.request.get(server + str(href))
    assert exported.ok and exported.headers["content-type"].startswith("text/csv")
    assert exported.text().startswith("experiment,variant,metric,value")

    # The Start form: prefilled with an example, and shows the API's refusals.
    page.get_by_test_id("exp-new").click()
    form = page.get_by_test_id("exp-form")
    assert "variants:" in page.get_by_test_id("exp-definition").input_value()
    page.get_by_test_id("exp-name").fill("second-try")
    page.get_by_test_id("exp-start").click()
    error = page.get_by_test_id("exp-form-error")
    error.filter(has_text="is running").wait_for()  # 409: one at a time
    page.get_by_test_id("exp-definition").fill("variants:\n  a: {}\n  b: {}\ncontrol: nope\n")
    page.get_by_test_id("exp-start").click()
    error.filter(has_text="not one of the variants").wait_for()  # 422
    page.get_by_test_id("exp-definition").fill("variants:\n  a: {\n")
    page.get_by_test_id("exp-start").click()
    error.filter(has_text="could not be read").wait_for()  # not even YAML
    page.locator("#exp-cancel").click()
    assert form.is_hidden()

    # The screenshot of the section, in a wider window.
    if page.locator("#notice-close").is_visible():
        page.locator("#notice-close").click()
    page.set_viewport_size({"width": 1280, "height": 900})
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(800)  # plotly follows the new width
    box = section.bounding_box()  # from the page's top: the sticky toolbar stays up there
    assert box is not None
    clip = {
        "x": box["x"] - 8,
        "y": box["y"] - 8,
        "width": box["width"] + 16,
        "height": box["height"] + 16,
    }
    page.screenshot(path=str(shots / "analytics-experiments.png"), full_page=True, clip=clip)

    # Stop it from the page, naming the winner (no promotion: the release gate is slow).
    stop = item.get_by_test_id("exp-stop-form")
    assert stop.get_by_test_id("exp-stop-promote").is_disabled()  # no winner chosen yet
    stop.get_by_test_id("exp-stop-winner").select_option("warm")
    assert stop.get_by_test_id("exp-stop-promote").is_enabled()
    stop.get_by_test_id("exp-stop").click()
    confirm = stop.get_by_test_id("exp-stop-confirm")
    confirm.wait_for()
    assert "Winner: warm" in stop.locator(".an-confirm").inner_text()
    confirm.click()
    stopped = page.locator(f'[data-testid="experiment"][data-name="{NAME}"][data-status="stopped"]')
    stopped.wait_for()
    assert stopped.get_by_test_id("exp-winner").inner_text() == "Winner: warm"
    assert stopped.get_by_test_id("exp-stop-form").count() == 0
    page.get_by_test_id("an-notice").filter(has_text="Stopped").wait_for()
    with _admin(server) as admin:
        (after,) = admin.get("/api/analytics/experiments").json()["experiments"]
    assert after["status"] == "stopped" and after["winner"] == "warm"
    assert after["promotion"] is None and after["stopped_at"]

    assert page.evaluate("() => window.__csp") == []
    # The browser logs the refusals above (409, 422) as failed loads: expected.
    refused = [
        e for e in errors if "/api/analytics/experiments)" in e and ("409" in e or "422" in e)
    ]
    assert len(refused) == 2 and [e for e in errors if e not in refused] == []
