"""Customer insights through the real pipeline: topics and top questions from paraphrases,
knowledge gaps (grouped, with an agent's answer, not duplicated by a second run), accepting a
gap into the knowledge base (answered and cited at once, kept by a re-ingest, a regression
test written), dismissing, low CSAT by article and flow, CSV downloads, access rules and the
CLI."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy import func, select
from tests.conftest import DEMO, Login, ServiceCli, open_conversation, say

from frontdesk.adapters.store.tables import AuditRow, KnowledgeGapRow
from frontdesk.analytics import insights
from frontdesk.analytics.kpis import RangeError, today_in
from frontdesk.api import insights as insights_api
from frontdesk.config import Settings
from frontdesk.service import Frontdesk
from frontdesk.testing.suites import parse_suite

REFUNDS = [
    "How long do refunds take?",
    "When will I get my money back?",
    "how long until my refund arrives",
]
SHIPPING = ["How much is shipping?", "What does delivery cost?"]
CRYPTO = [
    "Can I pay with bitcoin?",
    "Do you accept cryptocurrency?",
    "Do you take Ethereum or other crypto coins?",
    "Do you take cryptocurrency like bitcoin?",
]
GREEN = ["Are your products sustainable?", "Are your products eco friendly?"]
AGENT_ANSWER = "We don't take cryptocurrency yet: you can pay by card, PayPal or a gift card."


@dataclass
class Seeded:
    reviewer: httpx.AsyncClient
    customer: httpx.AsyncClient
    conversations: dict[str, str] = field(default_factory=dict)  # first message -> id


@pytest.fixture
def insights_router(app: FastAPI) -> FastAPI:
    """The app with the insights API (until the app factory includes it)."""
    if not any(getattr(r, "path", "") == "/api/analytics/insights" for r in app.routes):
        app.include_router(insights_api.router)
    return app


async def ask(customer: httpx.AsyncClient, text: str) -> tuple[str, dict[str, Any]]:
    cid = await open_conversation(customer)
    return cid, await say(customer, cid, text)


async def rate(customer: httpx.AsyncClient, cid: str, score: int) -> None:
    ended = await customer.post(f"/api/conversations/{cid}/end")
    assert ended.status_code == 200, ended.text
    rated = await customer.post(f"/api/conversations/{cid}/csat", json={"score": score})
    assert rated.status_code == 201, rated.text


@pytest.fixture
async def seeded(insights_router: FastAPI, customer: httpx.AsyncClient, login: Login) -> Seeded:
    """Answerable questions (refunds, shipping) in paraphrases, unanswerable ones (crypto,
    sustainability), a handoff an agent answers, two orders asked about, and ratings:

    - refunds: one rating of 5 (article ``refunds``)
    - shipping: ratings 1 and 2 (article ``shipping-costs``)
    - "Where is my order?": ratings 1 and 4 (the flow waiting, ``authenticate``)"""
    seeded = Seeded(await login("rita@example.com"), customer)
    for text in REFUNDS + SHIPPING + CRYPTO + GREEN:
        cid, result = await ask(customer, text)
        seeded.conversations[text] = cid
        cited = result["replies"][-1]["citations"] != []
        assert cited == (text in REFUNDS + SHIPPING), (text, result)  # answered, or not
    # The first crypto question goes to a person, who answers it.
    bitcoin = seeded.conversations[CRYPTO[0]]
    assert (await say(customer, bitcoin, "Can I talk to a person please?"))["handoff"] is True
    ann = await login("ann@example.com")
    assert (await ann.post(f"/api/console/conversations/{bitcoin}/take")).status_code == 200
    sent = await ann.post(
        f"/api/console/conversations/{bitcoin}/reply", json={"text": AGENT_ANSWER}
    )
    assert sent.status_code == 201, sent.text
    await rate(customer, seeded.conversations[REFUNDS[0]], 5)
    await rate(customer, seeded.conversations[SHIPPING[0]], 1)
    await rate(customer, seeded.conversations[SHIPPING[1]], 2)
    for score in (1, 4):
        cid, result = await ask(customer, "Where is my order?")
        assert result["replies"][-1]["citations"] == []
        await rate(customer, cid, score)
    return seeded


async def refresh(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post("/api/analytics/insights/refresh", json={})
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


async def open_gaps(client: httpx.AsyncClient, status: str = "open") -> list[dict[str, Any]]:
    response = await client.get("/api/analytics/gaps", params={"status": status})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["gaps"]
    return found


def topic_of(payload: dict[str, Any], text: str) -> dict[str, Any]:
    for topic in payload["topics"]:
        if text in [topic["question"], *topic["examples"]]:
            return topic
    raise AssertionError(f"{text!r} is in no topic: {payload['topics']}")


def gap_of(gaps: list[dict[str, Any]], text: str) -> dict[str, Any]:
    found = [g for g in gaps if text in [g["question"], *g["examples"]]]
    assert len(found) == 1, (text, gaps)
    return found[0]


# --- insights and gaps -----------------------------------------------------------------------


async def test_paraphrases_form_topics_and_unanswered_ones_form_one_gap(
    seeded: Seeded, frontdesk: Frontdesk
) -> None:
    client = seeded.reviewer
    missing = await client.get("/api/analytics/insights")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_insights"
    payload = await refresh(client)

    refunds = topic_of(payload, REFUNDS[0])
    assert {refunds["question"], *refunds["examples"]} == set(REFUNDS)
    assert "refund" in refunds["terms"] and refunds["size"] == 3
    assert refunds["low_confidence_share"] == 0 and refunds["handoff_rate"] == 0
    crypto = topic_of(payload, CRYPTO[0])
    assert crypto["size"] == 4 and crypto["low_confidence_share"] == 1.0
    assert crypto["handoff_rate"] == 0.25  # the first question led to a person
    assert {crypto["question"], *crypto["examples"]} <= set(CRYPTO)
    assert "crypto" in crypto["label"] or "cryptocurrency" in crypto["label"]
    assert "<" not in " ".join(t["label"] for t in payload["topics"])
    shipping = topic_of(payload, SHIPPING[0])
    assert shipping is not refunds and shipping is not crypto
    # The flow's questions and the small talk are not questions; "Where is my order?" is.
    assert payload["questions"] == len(REFUNDS + SHIPPING + CRYPTO + GREEN) + 1 + 2
    assert payload["top_questions"][0] == {
        "question": "Where is my order?",
        "count": 2,
        "share": round(2 / payload["questions"], 4),
        "variants": [],
        "low_confidence_share": 0.0,
        "topic": payload["top_questions"][0]["topic"],
    }
    assert any(p["topic"] == crypto["id"] for p in payload["pain_points"])

    gaps = await open_gaps(client)
    bitcoin = gap_of(gaps, CRYPTO[0])
    assert set(bitcoin["examples"]) == set(CRYPTO) and bitcoin["count"] == 4
    assert bitcoin["suggested_answer"] == AGENT_ANSWER
    green = gap_of(gaps, GREEN[0])
    assert green["count"] == 2 and green["suggested_answer"] == ""
    assert payload["gaps"] == {"created": 2, "updated": 0, "open": 2}

    # Low CSAT, hand-computed: shipping 1 and 2, refunds 5; the verification flow 1 and 4.
    low = payload["low_csat"]
    assert low["ratings"] == 5
    assert low["articles"] == [
        {
            "article": "shipping-costs",
            "title": "Shipping costs",
            "ratings": 2,
            "average": 1.5,
            "low": 2,
            "low_share": 1.0,
        },
        {
            "article": "refunds",
            "title": "Refunds",
            "ratings": 1,
            "average": 5.0,
            "low": 0,
            "low_share": 0.0,
        },
    ]
    assert low["flows"] == [
        {"flow": "authenticate", "ratings": 2, "average": 2.5, "low": 1, "low_share": 0.5}
    ]

    # A second run over the same days changes no gap and adds none.
    again = await refresh(client)
    assert again["gaps"] == {"created": 0, "updated": 0, "open": 2}
    assert await open_gaps(client) == gaps
    count = await frontdesk.db.run(
        lambda s: s.execute(select(func.count()).select_from(KnowledgeGapRow)).scalar_one()
    )
    assert count == 2
    latest = await client.get("/api/analytics/insights")
    assert latest.status_code == 200 and latest.json()["computed_at"] == again["computed_at"]
    ranged = await client.get(
        "/api/analytics/insights", params={"start": again["start"], "end": again["end"]}
    )
    assert ranged.json()["computed_at"] == again["computed_at"]
    other = await client.get("/api/analytics/insights", params={"start": "2020-01-01"})
    assert other.status_code == 404
    await check_csv(seeded)


async def test_accepting_a_gap_makes_the_bot_answer_it_with_a_citation(
    seeded: Seeded, frontdesk: Frontdesk, tmp_path: Path
) -> None:
    client = seeded.reviewer
    await refresh(client)
    gap = gap_of(await open_gaps(client), CRYPTO[0])
    before = await ask(seeded.customer, "Can I pay with bitcoin?")
    assert before[1]["replies"][-1]["citations"] == []

    answer = "We do not accept bitcoin or other cryptocurrency. Pay by card, PayPal or gift card."
    question = "Can I pay with bitcoin or other cryptocurrency?"
    empty = await client.post(f"/api/analytics/gaps/{gap['id']}/accept", json={"answer": "  "})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "invalid_answer"
    unknown = await client.post("/api/analytics/gaps/999999/accept", json={"answer": answer})
    assert unknown.status_code == 404
    accepted = await client.post(
        f"/api/analytics/gaps/{gap['id']}/accept",
        json={"question": question, "answer": answer, "save_test": True},
    )
    assert accepted.status_code == 200, accepted.text
    entry = accepted.json()["gap"]
    assert entry["status"] == "accepted" and entry["question"] == question
    assert entry["article_id"] == "accepted-gaps--can-i-pay-with-bitcoin-or-other-cryptocurrency"
    assert entry["reviewed_by"]["name"] == "Rita"
    twice = await client.post(f"/api/analytics/gaps/{gap['id']}/accept", json={"answer": answer})
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "already_accepted"

    async def answered(text: str) -> None:
        _, result = await ask(seeded.customer, text)
        reply = result["replies"][-1]
        assert [c["id"] for c in reply["citations"]] == [entry["article_id"]], reply
        assert "cryptocurrency" in reply["text"]

    await answered("Can I pay with bitcoin?")
    # The company's help centre is ingested again: the accepted entry stays.
    report = await frontdesk.ingest(DEMO / "knowledge")
    assert report.removed_articles == 0
    await answered("Can I pay with bitcoin?")

    # The regression test: the question, answered with a citation of the entry.
    test_file = Path(entry["test_file"])
    assert test_file == frontdesk.settings.data_dir / "tests" / "knowledge-gaps.yaml"
    suite = parse_suite(test_file.read_text(encoding="utf-8"), str(test_file))
    (case,) = suite.conversations
    assert case.turns[0].say == question
    assert case.turns[0].expect.action == "answer"
    assert case.turns[0].expect.citation == entry["article_id"]
    faq = frontdesk.settings.data_dir / "knowledge" / "accepted-gaps.csv"
    rows = list(csv.DictReader(io.StringIO(faq.read_text(encoding="utf-8"))))
    assert [(r["question"], r["answer"]) for r in rows] == [(question, answer)]

    # A later run keeps the gap accepted and does not open a new one for its questions.
    payload = await refresh(client)
    assert payload["gaps"]["created"] == 0
    assert [g["id"] for g in await open_gaps(client, "accepted")] == [gap["id"]]
    assert all(CRYPTO[0] not in g["examples"] for g in await open_gaps(client))
    actions = await frontdesk.db.run(
        lambda s: list(s.execute(select(AuditRow.action, AuditRow.detail)).tuples())
    )
    assert ("gap_accepted", {"gap": gap["id"], "article": entry["article_id"]}) in actions


async def test_new_questions_update_the_gaps_and_a_dismissed_one_stays_dismissed(
    seeded: Seeded, frontdesk: Frontdesk
) -> None:
    client = seeded.reviewer
    await refresh(client)
    gaps = await open_gaps(client)
    bitcoin, green = gap_of(gaps, CRYPTO[0]), gap_of(gaps, GREEN[0])
    dismissed = await client.post(f"/api/analytics/gaps/{green['id']}/dismiss")
    assert dismissed.status_code == 200 and dismissed.json()["gap"]["status"] == "dismissed"
    assert (await client.post("/api/analytics/gaps/999999/dismiss")).status_code == 404

    await ask(seeded.customer, CRYPTO[1])  # asked again, in a new conversation
    await ask(seeded.customer, "Can I check out with Dogecoin?")  # a new wording
    await ask(seeded.customer, "Is your company eco friendly?")
    payload = await refresh(client)
    assert payload["gaps"] == {"created": 0, "updated": 2, "open": 1}
    (updated,) = await open_gaps(client)
    assert updated["id"] == bitcoin["id"] and updated["count"] == 6
    assert "Can I check out with Dogecoin?" in updated["examples"]
    (still,) = await open_gaps(client, "dismissed")
    assert still["id"] == green["id"] and still["count"] == 3
    assert "Is your company eco friendly?" in still["examples"]
    actions = await frontdesk.db.run(lambda s: list(s.execute(select(AuditRow.action)).scalars()))
    assert "gap_dismissed" in actions


async def check_csv(seeded: Seeded) -> None:
    """The CSV downloads, with a question that a spreadsheet would take for a formula."""
    client = seeded.reviewer
    await ask(seeded.customer, "=1+2 how long do refunds take?")
    await ask(seeded.customer, "=1+2 how long do refunds take?")
    await refresh(client)
    response = await client.get(
        "/api/analytics/insights", params={"format": "csv", "table": "top_questions"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment; filename=" in response.headers["content-disposition"]
    assert "insights-top_questions-" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert "'=1+2 how long do refunds take?" in [r["question"] for r in rows]
    assert not any(r["question"].startswith(("=", "+", "-", "@")) for r in rows)
    for table in ("topics", "pain_points", "low_csat_articles", "low_csat_flows"):
        found = await client.get(
            "/api/analytics/insights", params={"format": "csv", "table": table}
        )
        assert found.status_code == 200 and found.text.splitlines()[0], table
    articles = await client.get(
        "/api/analytics/insights", params={"format": "csv", "table": "low_csat_articles"}
    )
    assert next(csv.DictReader(io.StringIO(articles.text)))["article"] == "shipping-costs"
    gaps = await client.get("/api/analytics/gaps", params={"format": "csv", "status": "all"})
    assert gaps.status_code == 200 and gaps.headers["content-type"].startswith("text/csv")
    assert {r["question"] for r in csv.DictReader(io.StringIO(gaps.text))} & set(CRYPTO)


# --- access ----------------------------------------------------------------------------------


async def test_only_reviewers_and_admins_reach_the_insights(
    insights_router: FastAPI, customer: httpx.AsyncClient, login: Login
) -> None:
    routes = (
        ("GET", "/api/analytics/insights"),
        ("POST", "/api/analytics/insights/refresh"),
        ("GET", "/api/analytics/gaps"),
        ("POST", "/api/analytics/gaps/1/accept"),
        ("POST", "/api/analytics/gaps/1/dismiss"),
    )
    for method, path in routes:
        response = await customer.request(method, path, json={"answer": "x"})
        assert response.status_code == 401, (path, response.text)
    agent = await login("ann@example.com")
    for method, path in routes:
        response = await agent.request(method, path, json={"answer": "x"})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    reviewer = await login("rita@example.com")
    no_csrf = reviewer.headers.pop("X-CSRF-Token")
    for method, path in routes:
        if method == "POST":
            response = await reviewer.request(method, path, json={"answer": "x"})
            assert response.status_code == 403, (path, response.text)
            assert response.json()["error"]["code"] == "csrf_failed"
    reviewer.headers["X-CSRF-Token"] = no_csrf
    assert (await reviewer.get("/api/analytics/gaps")).json() == {"gaps": []}
    admin = await login("ada@example.com")
    refreshed = await admin.post(
        "/api/analytics/insights/refresh", json={"start": "2026-01-10", "end": "2026-01-01"}
    )
    assert refreshed.status_code == 422 and refreshed.json()["error"]["code"] == "invalid_range"
    empty = await admin.post("/api/analytics/insights/refresh")
    assert empty.status_code == 200 and empty.json()["topics"] == []


# --- pieces ----------------------------------------------------------------------------------


def test_labels_are_the_distinctive_words_without_tokens_or_stop_words() -> None:
    labels = insights.label_terms(
        [
            ["How long do refunds take?", "When is my refund coming <EMAIL_1>", "refund time"],
            ["How much is shipping?", "shipping costs to Canada", "what does shipping cost"],
        ]
    )
    assert labels[0][0] == "refund" and labels[1][0] == "shipping"
    assert not {"email", "how", "is", "my"} & {w for label in labels for w in label}
    assert insights.normal("Can I pay <EMAIL_1> with Bitcoin?!") == "can i pay with bitcoin"


def test_a_regression_test_is_added_to_the_file_and_replaced_by_the_same_gap(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tests" / "gaps.yaml"
    insights.save_regression_test(path, 1, "Can I pay with bitcoin?", "accepted-gaps--a")
    insights.save_regression_test(path, 2, "Do you gift wrap?", "accepted-gaps--b")
    insights.save_regression_test(path, 1, "Can I pay with bitcoin?", "accepted-gaps--c")
    suite = parse_suite(path.read_text(encoding="utf-8"), str(path))
    assert [c.turns[0].expect.citation for c in suite.conversations] == [
        "accepted-gaps--b",
        "accepted-gaps--c",
    ]
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["conversations"][0]["tags"] == [
        "knowledge-gap"
    ]


# --- the CLI ---------------------------------------------------------------------------------


async def test_the_cli_refreshes_lists_accepts_and_dismisses(
    seeded: Seeded, frontdesk: Frontdesk, service_cli: ServiceCli
) -> None:
    async def cli(*args: str) -> str:
        result = await service_cli("insights", *args)
        assert result.exit_code == 0, (args, result.output, result.exception)
        return str(result.output)

    shown = await cli("refresh")
    assert "questions in" in shown and "knowledge gaps: 2 open (2 new, 0 updated)" in shown
    assert "refund" in shown
    listed = await cli("gaps", "list")
    ids = {text: g["id"] for g in await insights.list_gaps(frontdesk) for text in g["examples"]}
    assert f"#{ids[CRYPTO[0]]}" in listed and AGENT_ANSWER in listed
    await cli("gaps", "dismiss", str(ids[GREEN[0]]))
    test_file = frontdesk.settings.data_dir / "cli-tests.yaml"
    accepted = await cli(
        "gaps", "accept", str(ids[CRYPTO[0]]), "--answer", AGENT_ANSWER, "--save-test",
        str(test_file),
    )  # fmt: skip
    assert "is now accepted-gaps--" in accepted and test_file.exists()
    assert "no open knowledge gaps" in await cli("gaps", "list")
    failed = await service_cli("insights", "gaps", "accept", "999999", "--answer", "x")
    assert failed.exit_code == 1 and "no knowledge gap with id 999999" in failed.output
    # The service that did not run the command sees the entry once it reloads.
    await frontdesk.reload_knowledge()
    (entry,) = await insights.list_gaps(frontdesk, "accepted")
    _, result = await ask(seeded.customer, entry["question"])
    assert result["replies"][-1]["citations"][0]["id"] == entry["article_id"]


def test_the_range_defaults_to_the_last_28_days(tmp_path: Path) -> None:
    fd = Frontdesk(Settings(data_dir=tmp_path, secret_key="test-secret"))
    first, last = insights.resolve_range(fd, None, None)
    assert last == today_in(fd.guidelines.working_hours.timezone)
    assert last - first == timedelta(days=27)
    with pytest.raises(RangeError, match="at most 366 days") as caught:
        insights.resolve_range(fd, last - timedelta(days=400), last)
    assert (caught.value.code, caught.value.status) == ("invalid_range", 422)


def test_an_agents_hello_is_not_a_suggested_answer() -> None:
    from frontdesk.analytics.insights import pleasantry

    assert pleasantry("Hi, Sam here from the Northwind team. What can I help you with?")
    assert pleasantry("Hi, this is Priya following up on your message from yesterday.")
    assert pleasantry("Hello there, Ann here.")
    assert not pleasantry("Hi! Yes, we gift-wrap any order for $4.99: choose it at checkout.")
    assert not pleasantry("We do not price match, sorry.")
