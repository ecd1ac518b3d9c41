"""Human oversight through the API: handoff rules and what the agent gets, accounts and
access, the console's actions with several agents at once, and the review loop."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update
from tests.conftest import PASSWORD, Login, open_conversation, say

from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store.tables import (
    ApprovedAnswerRow,
    EventRow,
    ReviewRow,
    SessionRow,
    TrainingExampleRow,
)
from frontdesk.core.types import Role, utcnow
from frontdesk.service import Frontdesk


async def handed_over(customer: httpx.AsyncClient, text: str = "can I talk to a person?") -> str:
    cid = await open_conversation(customer)
    result = await say(customer, cid, text)
    assert result["handoff"] is True, result
    return cid


async def events(fd: Frontdesk, kind: str) -> list[dict[str, Any]]:
    rows = await fd.db.run(
        lambda s: list(s.execute(select(EventRow.payload).where(EventRow.type == kind)).scalars())
    )
    return [dict(r) for r in rows]


# --- accounts and access ---------------------------------------------------------------------


async def test_that_anonymous_and_customer_requests_cannot_reach_the_console(
    customer: httpx.AsyncClient,
) -> None:
    cid = await handed_over(customer)
    for method, path in (
        ("GET", "/api/console/me"),
        ("GET", "/api/console/queue"),
        ("GET", f"/api/console/conversations/{cid}"),
        ("POST", f"/api/console/conversations/{cid}/take"),
        ("GET", "/api/console/audit"),
        ("GET", "/api/console/reviews/queue"),
    ):
        response = await customer.request(method, path)
        assert response.status_code == 401, (path, response.text)
        assert response.json()["error"]["code"] == "not_logged_in"


async def test_that_a_login_sets_a_private_cookie_and_a_wrong_password_is_refused(
    app: FastAPI,
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://frontdesk.test"
    ) as c:
        wrong = await c.post(
            "/api/console/login", json={"email": "ann@example.com", "password": "nope"}
        )
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_credentials"
        unknown = await c.post(
            "/api/console/login", json={"email": "eve@example.com", "password": PASSWORD}
        )
        assert unknown.status_code == 401
        ok = await c.post(
            "/api/console/login", json={"email": "ANN@example.com", "password": PASSWORD}
        )
        assert ok.status_code == 200
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        me = await c.get("/api/console/me")
        assert me.json()["user"]["role"] == "agent" and me.json()["csrf"]


async def test_that_a_change_without_the_csrf_token_is_refused(
    login: Login, customer: httpx.AsyncClient
) -> None:
    cid = await handed_over(customer)
    ann = await login("ann@example.com")
    del ann.headers["X-CSRF-Token"]
    response = await ann.post(f"/api/console/conversations/{cid}/take")
    assert response.status_code == 403 and response.json()["error"]["code"] == "csrf_failed"
    ann.headers["X-CSRF-Token"] = "forged"
    assert (await ann.post(f"/api/console/conversations/{cid}/take")).status_code == 403


async def test_that_each_route_checks_the_role(login: Login) -> None:
    rita = await login("rita@example.com")
    ann = await login("ann@example.com")
    ada = await login("ada@example.com")
    assert (await rita.get("/api/console/queue")).status_code == 403
    assert (await ann.get("/api/console/reviews/queue")).status_code == 403
    assert (await ann.get("/api/console/audit")).status_code == 403
    assert (await ann.get("/api/console/stats/handoffs")).status_code == 403
    assert (await rita.get("/api/console/reviews/queue")).status_code == 200
    for path in ("/api/console/queue", "/api/console/audit", "/api/console/reviews/queue"):
        assert (await ada.get(path)).status_code == 200, path


async def test_that_an_expired_session_is_refused(login: Login, frontdesk: Frontdesk) -> None:
    ann = await login("ann@example.com")
    assert (await ann.get("/api/console/me")).status_code == 200
    await frontdesk.db.run(
        lambda s: s.execute(update(SessionRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    )
    expired = await ann.get("/api/console/me")
    assert expired.status_code == 401 and expired.json()["error"]["code"] == "not_logged_in"


# --- handoff and the agent's view ------------------------------------------------------------


async def test_that_a_handoff_waits_in_the_queue_with_a_summary_and_the_expected_wait(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await open_conversation(customer)
    await say(customer, cid, "where is my order?")
    await say(customer, cid, "raj.sanchez2046@example.com")
    result = await say(customer, cid, "this is useless, I want to talk to a real person")
    assert result["handoff"] is True
    assert "as soon as someone from the team is free" in result["replies"][0]["text"]
    ann = await login("ann@example.com")
    [item] = (await ann.get("/api/console/queue?view=waiting")).json()["conversations"]
    assert item["id"] == cid and item["status"] == "waiting" and item["mode"] == "human"
    assert item["reason"] == "customer_request" and item["waiting_since"]
    detail = (await ann.get(f"/api/console/conversations/{cid}")).json()
    summary = detail["handoff"]["summary"]
    assert "talk to a real person" in summary["wants"]
    assert "Verified the customer." in summary["bot_did"]
    assert summary["customer"] == "Raj Sanchez"
    assert summary["sentiment"] in ("negative", "frustrated")
    assert detail["customer"]["email"] == "raj.sanchez2046@example.com"
    assert any(o["id"] == "#W4566809" for o in detail["customer"]["orders"])
    # the customer's email in the history is the token, as stored
    assert any("&lt;EMAIL_1&gt;" in m["html"] for m in detail["messages"])


async def test_that_two_agents_taking_one_conversation_get_one_winner(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await handed_over(customer)
    ann, bob = await login("ann@example.com"), await login("bob@example.com")
    first, second = await asyncio.gather(
        ann.post(f"/api/console/conversations/{cid}/take"),
        bob.post(f"/api/console/conversations/{cid}/take"),
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409]
    winner, loser = (ann, bob) if first.status_code == 200 else (bob, ann)
    lost = second if first.status_code == 200 else first
    assert lost.json()["error"]["code"] == "taken"
    assert "has already taken this conversation" in lost.json()["error"]["message"]
    refused = await loser.post(f"/api/console/conversations/{cid}/reply", json={"text": "hi"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_assigned"
    assert (await loser.post(f"/api/console/conversations/{cid}/handback")).status_code == 409
    forced = await loser.post(f"/api/console/conversations/{cid}/take", json={"force": True})
    assert forced.status_code == 200
    taken_over = await winner.post(f"/api/console/conversations/{cid}/reply", json={"text": "x"})
    assert taken_over.status_code == 409


async def test_that_an_agent_replies_notes_hands_back_and_the_bot_answers_again(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await handed_over(customer, "How long do refunds take? I want a human")
    ann = await login("ann@example.com")
    taken = await ann.post(f"/api/console/conversations/{cid}/take")
    assert taken.json()["conversation"]["assigned_to"]["name"] == "Ann"
    suggestions = (await ann.get(f"/api/console/conversations/{cid}/suggestions")).json()
    assert any(s["source"] == "Refunds" for s in suggestions["suggestions"])
    sent = await ann.post(
        f"/api/console/conversations/{cid}/reply", json={"text": "Hi, Ann here. 5 to 7 days."}
    )
    assert sent.status_code == 201 and sent.json()["message"]["role"] == "agent"
    note = await ann.post(
        f"/api/console/conversations/{cid}/notes", json={"text": "VIP, wrote from ann@example.org"}
    )
    assert note.status_code == 201
    assert note.json()["note"]["text"] == "VIP, wrote from <EMAIL_1>"  # never stored in clear
    seen = (await customer.get(f"/api/conversations/{cid}")).json()
    assert seen["messages"][-1]["text"] == "Hi, Ann here. 5 to 7 days."
    assert all("VIP" not in m["text"] for m in seen["messages"])  # notes stay internal
    quiet = await say(customer, cid, "thanks, and what about exchanges?")
    assert quiet["replies"] == []  # a person has it: the bot stays quiet
    back = await ann.post(f"/api/console/conversations/{cid}/handback")
    assert back.json()["conversation"]["mode"] == "bot"
    again = await say(customer, cid, "How long do refunds take?")
    assert again["replies"][0]["citations"][0]["title"] == "Refunds"
    resolved = await ann.post(f"/api/console/conversations/{cid}/resolve")
    assert resolved.status_code == 409  # handed back: no longer Ann's
    ada = await login("ada@example.com")
    done = await ada.post(f"/api/console/conversations/{cid}/resolve")
    assert done.json()["conversation"]["status"] == "resolved"
    audit = (await ada.get("/api/console/audit")).json()["entries"]
    actions = [e["action"] for e in audit]
    assert {"take_over", "reply", "note", "handed_back", "resolved"} <= set(actions)


async def test_that_a_handoff_goes_to_the_least_loaded_online_agent(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    ann = await login("ann@example.com")
    bob = await login("bob@example.com")
    ann_id = (await ann.get("/api/console/me")).json()["user"]["id"]
    bob_id = (await bob.get("/api/console/me")).json()["user"]["id"]
    frontdesk.presence.update({ann_id: 1, bob_id: 1})  # both have the console open
    first = await handed_over(customer)
    second = await handed_over(customer)
    holders = []
    for cid in (first, second):
        detail = (await ann.get(f"/api/console/conversations/{cid}")).json()
        holders.append(detail["conversation"]["assigned_to"]["id"])
    assert sorted(holders) == sorted([ann_id, bob_id])  # one each
    [mine] = (await ann.get("/api/console/queue?view=mine")).json()["conversations"]
    assert mine["assigned_to"]["id"] == ann_id
    third = await say(customer, await open_conversation(customer), "I want a human")
    assert "in about" in third["replies"][0]["text"] and "minutes" in third["replies"][0]["text"]


async def test_that_customer_markup_is_shown_as_text_in_the_console(
    login: Login, customer: httpx.AsyncClient
) -> None:
    cid = await open_conversation(customer)
    await say(
        customer, cid, 'a <b>bold</b> claim <img src=x onerror="alert(1)"><script>x()</script>'
    )
    await say(customer, cid, "I want a human")
    ann = await login("ann@example.com")
    detail = (await ann.get(f"/api/console/conversations/{cid}")).json()
    html = detail["messages"][0]["html"]
    assert "<" not in html  # no element can come of it: every bracket is escaped
    assert "a &lt;b&gt;bold&lt;/b&gt; claim" in html  # and it reads as what was typed
    assert "&lt;script&gt;x()&lt;/script&gt;" in html


# --- handoff rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("My lawyer says I should sue you over this", "sensitive:legal"),
        ("the kettle caught fire in my kitchen", "sensitive:safety"),
        ("there is an unauthorized charge on my card", "sensitive:fraud"),
        ("my husband passed away, I need to close his account", "sensitive:bereavement"),
    ],
)
async def test_that_sensitive_topics_go_to_a_person_with_their_reason(
    customer: httpx.AsyncClient, frontdesk: Frontdesk, text: str, reason: str
) -> None:
    cid = await open_conversation(customer)
    result = await say(customer, cid, text)
    assert result["handoff"] is True
    [handoff] = await events(frontdesk, "handoff_requested")
    assert handoff["reason"] == reason


async def test_that_the_same_unanswered_question_twice_goes_to_a_person(
    customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await open_conversation(customer)
    first = await say(customer, cid, "what is the airspeed of an unladen swallow")
    assert first["handoff"] is False
    second = await say(customer, cid, "what is the airspeed of an unladen swallow?")
    assert second["handoff"] is True
    [handoff] = await events(frontdesk, "handoff_requested")
    assert handoff["reason"] == "loop"


async def test_that_an_action_on_a_high_value_order_goes_to_a_person(
    customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    escalation = frontdesk.guidelines.escalation.model_copy(update={"high_value_order": 1000.0})
    frontdesk.guidelines = frontdesk.guidelines.model_copy(update={"escalation": escalation})
    cid = await open_conversation(customer)
    await say(customer, cid, "I want to return order #W1067251")
    result = await say(customer, cid, "raj.sanchez2046@example.com")
    assert result["handoff"] is True
    assert "is a large one ($1,201.55)" in result["replies"][0]["text"]
    [handoff] = await events(frontdesk, "handoff_requested")
    assert handoff["reason"] == "high_value_order"


async def test_that_outside_working_hours_the_customer_is_offered_an_email_follow_up(
    customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    closed = frontdesk.guidelines.working_hours.model_copy(update={"days": {}})
    frontdesk.guidelines = frontdesk.guidelines.model_copy(update={"working_hours": closed})
    cid = await open_conversation(customer)
    result = await say(customer, cid, "can I talk to a person?")
    assert "follow up by email" in result["replies"][0]["text"]
    ack = await say(customer, cid, "sure, it's jo@example.com")
    assert "follow up by email at the address you gave" in ack["replies"][0]["text"]
    [request] = await events(frontdesk, "followup_requested")
    assert request == {"email_token": "<EMAIL_1>"}


async def test_that_admins_see_handoff_reasons_and_counts(
    login: Login, customer: httpx.AsyncClient
) -> None:
    await handed_over(customer)
    await handed_over(customer, "I want a human")
    await handed_over(customer, "I will sue you")
    ada = await login("ada@example.com")
    stats = (await ada.get("/api/console/stats/handoffs?days=7")).json()
    assert stats["total"] == 3
    assert {"reason": "customer_request", "count": 2} in stats["reasons"]
    assert {"reason": "sensitive:legal", "count": 1} in stats["reasons"]


# --- what the guard and the model did, for the agent's eyes only -------------------------------


async def test_that_a_reply_the_guard_changed_shows_the_check_to_agents_and_not_to_customers(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    # The Refunds answer says "business days": as a forbidden phrase, the tone check fires.
    phrases = (*frontdesk.guidelines.forbidden_phrases, "business days")
    frontdesk.guidelines = frontdesk.guidelines.model_copy(update={"forbidden_phrases": phrases})
    cid = await open_conversation(customer)
    result = await say(customer, cid, "How long do refunds take?")
    [reply] = result["replies"]
    assert reply["text"] == frontdesk.guidelines.texts.fallback
    assert await events(frontdesk, "guard_intervened") == [{"check": "tone", "seq": reply["seq"]}]

    ann = await login("ann@example.com")
    detail = (await ann.get(f"/api/console/conversations/{cid}")).json()
    [bot] = [m for m in detail["messages"] if m["role"] == "bot"]
    assert bot["seq"] == reply["seq"] and bot["meta"]["interventions"] == ["tone"]
    [asked] = [m for m in detail["messages"] if m["role"] == "customer"]
    assert "interventions" not in asked["meta"]

    # The customer's API shows no meta at all: not in the reply, not in the history.
    assert all("meta" not in m for m in (result["message"], reply))
    history = (await customer.get(f"/api/conversations/{cid}")).json()["messages"]
    assert len(history) == 2 and all("meta" not in m for m in history)
    assert "interventions" not in str(result) and "interventions" not in str(history)


async def test_that_the_console_names_the_model_that_wrote_a_reply_and_its_fallback(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await open_conversation(customer)
    await say(customer, cid, "How long do refunds take?")
    model = {
        "backend": "openai",
        "model": "gpt-4o-mini",
        "prompt_tokens": 812,
        "completion_tokens": 64,
        "fallback": "timeout",
        "base_url": "http://10.0.0.5:8000/v1",  # not the console's business
    }
    await frontdesk.db.run(
        lambda s: repo.append_message(
            s, cid, Role.BOT, "Refunds take 5-10 days.", meta={"model": model, "secret": 1}
        )
    )
    ann = await login("ann@example.com")
    detail = (await ann.get(f"/api/console/conversations/{cid}")).json()
    last = detail["messages"][-1]
    assert last["meta"] == {
        "model": {
            "backend": "openai",
            "model": "gpt-4o-mini",
            "prompt_tokens": 812,
            "completion_tokens": 64,
            "fallback": "timeout",
        }
    }
    history = (await customer.get(f"/api/conversations/{cid}")).json()["messages"]
    assert "gpt-4o-mini" not in str(history)


# --- the review loop -------------------------------------------------------------------------


async def test_that_a_correction_becomes_a_versioned_approved_answer_used_before_retrieval(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    question = "Do you price match other stores?"
    cid = await open_conversation(customer)
    first = await say(customer, cid, question)
    assert first["replies"][0]["citations"] == [] or True  # whatever the bot said
    rita = await login("rita@example.com")
    items = (await rita.get("/api/console/reviews/queue")).json()["items"]
    item = next(i for i in items if i["question"] == question)
    assert "low_confidence" in item["reasons"]
    saved = await rita.post(
        "/api/console/reviews",
        json={
            "message_id": item["message_id"],
            "rating": "wrong",
            "correction": "We don't price match, but we do run seasonal sales.",
        },
    )
    assert saved.status_code == 201 and saved.json()["approved_answer"]["version"] == 1
    assert all(
        i["message_id"] != item["message_id"]
        for i in (await rita.get("/api/console/reviews/queue")).json()["items"]
    )
    later = await say(
        customer, await open_conversation(customer), "do you price match other stores"
    )
    reply = later["replies"][0]
    assert reply["text"] == "We don't price match, but we do run seasonal sales."
    assert reply["citations"][0]["title"] == "Approved answer"
    second = await rita.post(
        "/api/console/reviews",
        json={
            "message_id": reply["id"],
            "rating": "outdated",
            "correction": "We price match major retailers since May.",
        },
    )
    assert second.json()["approved_answer"]["version"] == 2
    newest = await say(customer, await open_conversation(customer), question)
    assert newest["replies"][0]["text"] == "We price match major retailers since May."
    answers = (await rita.get("/api/console/approved-answers")).json()["answers"]
    assert [(a["version"], a["active"], a["created_by"]) for a in answers] == [
        (1, False, "Rita"),
        (2, True, "Rita"),
    ]
    examples = await frontdesk.db.run(
        lambda s: list(s.execute(select(TrainingExampleRow)).scalars())
    )
    assert [e.answer for e in examples] == [
        "We don't price match, but we do run seasonal sales.",
        "We price match major retailers since May.",
    ]


async def test_that_a_correction_with_a_customers_personal_data_is_refused(
    login: Login, customer: httpx.AsyncClient, frontdesk: Frontdesk
) -> None:
    cid = await open_conversation(customer)
    await say(customer, cid, "Do you price match other stores?")
    rita = await login("rita@example.com")
    items = (await rita.get("/api/console/reviews/queue")).json()["items"]
    item = next(i for i in items if i["question"] == "Do you price match other stores?")
    refused = await rita.post(
        "/api/console/reviews",
        json={
            "message_id": item["message_id"],
            "rating": "wrong",
            "correction": "Ask jane.doe@gmail.com or call 415-555-0132, she handled it.",
        },
    )
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert "EMAIL" in error["message"] and "PHONE" in error["message"]
    assert "jane.doe" not in refused.text  # the error names kinds, never the values
    # Nothing was stored: no review, no approved answer, no training example.
    for table in (ReviewRow, ApprovedAnswerRow, TrainingExampleRow):
        rows = await frontdesk.db.run(lambda s, t=table: list(s.execute(select(t)).scalars()))
        assert rows == [], table
    # The company's own address, published in its help centre, is fine.
    saved = await rita.post(
        "/api/console/reviews",
        json={
            "message_id": item["message_id"],
            "rating": "wrong",
            "correction": "We don't price match; write to support@northwind-outfitters.example.",
        },
    )
    assert saved.status_code == 201, saved.text


async def test_that_a_wrong_rating_needs_a_correction(login: Login) -> None:
    rita = await login("rita@example.com")
    bad = await rita.post("/api/console/reviews", json={"message_id": "nope", "rating": "meh"})
    assert bad.status_code == 422
    missing = await rita.post("/api/console/reviews", json={"message_id": "x", "rating": "wrong"})
    assert missing.status_code == 422


async def test_that_the_console_page_is_served_without_outside_resources(
    customer: httpx.AsyncClient,
) -> None:
    for path in ("/console", "/console/login", "/static/console.js", "/static/console.css"):
        response = await customer.get(path)
        assert response.status_code == 200, path
        assert "http://" not in response.text and "https://" not in response.text, path
    page = (await customer.get("/console")).text
    assert '<script src="/static/console.js"' in page


async def test_that_repeated_login_attempts_are_slowed_down(app: FastAPI) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://frontdesk.test"
    ) as c:
        codes = []
        for _ in range(11):
            response = await c.post(
                "/api/console/login", json={"email": "ann@example.com", "password": "guess"}
            )
            codes.append(response.status_code)
        assert codes[:10] == [401] * 10 and codes[10] == 429
        assert response.headers["retry-after"]


async def test_that_personal_data_is_revealed_only_to_the_agent_holding_it_and_audited(
    customer: httpx.AsyncClient, login: Login
) -> None:
    cid = await handed_over(customer, "I'm jo@example.com, call me on 415-555-2671. A human please")
    ann, bob = await login("ann@example.com"), await login("bob@example.com")
    rita, ada = await login("rita@example.com"), await login("ada@example.com")
    detail = (await ann.get(f"/api/console/conversations/{cid}")).json()
    assert "jo@example.com" not in str(detail) and "&lt;EMAIL_1&gt;" in str(detail)
    # Before taking it over, an agent sees tokens only; a reviewer never sees values.
    refused = await ann.post(f"/api/console/conversations/{cid}/reveal")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "reveal_forbidden"
    assert (await rita.post(f"/api/console/conversations/{cid}/reveal")).status_code == 403
    assert (await ann.post(f"/api/console/conversations/{cid}/take")).status_code == 200
    shown = await ann.post(f"/api/console/conversations/{cid}/reveal")
    assert shown.status_code == 200
    assert shown.json()["values"] == {"<EMAIL_1>": "jo@example.com", "<PHONE_1>": "415-555-2671"}
    assert (await bob.post(f"/api/console/conversations/{cid}/reveal")).status_code == 403
    assert (await ada.post(f"/api/console/conversations/{cid}/reveal")).status_code == 200
    unknown = await ada.post("/api/console/conversations/nope/reveal")
    assert unknown.status_code == 404
    entries = (await ada.get("/api/console/audit")).json()["entries"]
    reveals = [e for e in entries if e["action"] == "reveal_values"]
    assert len(reveals) == 2 and {e["detail"]["count"] for e in reveals} == {2}
    assert "jo@example.com" not in str(entries)
