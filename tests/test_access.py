"""The access matrix: every route of the service, called as anonymous, customer, agent,
reviewer and admin, answers as the matrix below says.

The matrix lists every HTTP and WebSocket route; a route added without a line here fails the
first test, so nobody adds a route without deciding who may use it.

Who is who:
- anonymous: no console session, and no conversation of its own: it tries a conversation id
  it does not hold (a made-up one).
- customer: no console session; it holds the id of the conversation it opened (the widget's
  capability) and uses it.
- agent, reviewer, admin: logged in to the console (cookie and CSRF header), using the
  customer's conversation id where a route takes one.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute
from tests.conftest import PASSWORD, Login, open_conversation, say

ROLES = ("anonymous", "customer", "agent", "reviewer", "admin")
PUBLIC = frozenset(ROLES)
CONVERSATION = frozenset({"customer", "agent", "reviewer", "admin"})  # holds the id
SESSION = frozenset({"agent", "reviewer", "admin"})
AGENT = frozenset({"agent", "admin"})
REVIEWER = frozenset({"reviewer", "admin"})
READER = frozenset({"agent", "reviewer", "admin"})
ADMIN = frozenset({"admin"})

# (method, path) -> who may use it. Conversation routes are reachable by whoever holds the
# conversation's id (the customer's widget, or a console user who got it from the queue).
MATRIX: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("GET", "/widget.js"): PUBLIC,
    ("GET", "/static/vendor/plotly.min.js"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/api/widget/config"): PUBLIC,
    ("POST", "/api/conversations"): PUBLIC,
    ("GET", "/api/conversations/{conversation_id}"): CONVERSATION,
    ("POST", "/api/conversations/{conversation_id}/messages"): CONVERSATION,
    ("POST", "/api/conversations/{conversation_id}/end"): CONVERSATION,
    ("POST", "/api/conversations/{conversation_id}/csat"): CONVERSATION,
    ("WS", "/api/conversations/{conversation_id}/ws"): CONVERSATION,
    # Pages: the HTML shells are public; everything they show comes from the API below.
    ("GET", "/console/login"): PUBLIC,
    ("GET", "/console"): PUBLIC,
    ("GET", "/console/analytics"): PUBLIC,
    ("POST", "/api/console/login"): PUBLIC,
    ("POST", "/api/console/logout"): SESSION,
    ("GET", "/api/console/me"): SESSION,
    ("WS", "/api/console/ws"): SESSION,
    ("GET", "/api/console/queue"): AGENT,
    ("GET", "/api/console/conversations/{conversation_id}"): READER,
    ("POST", "/api/console/conversations/{conversation_id}/take"): AGENT,
    ("POST", "/api/console/conversations/{conversation_id}/reveal"): AGENT,
    ("POST", "/api/console/conversations/{conversation_id}/reply"): AGENT,
    ("POST", "/api/console/conversations/{conversation_id}/notes"): AGENT,
    ("POST", "/api/console/conversations/{conversation_id}/handback"): AGENT,
    ("POST", "/api/console/conversations/{conversation_id}/resolve"): AGENT,
    ("GET", "/api/console/conversations/{conversation_id}/suggestions"): AGENT,
    ("GET", "/api/console/reviews/queue"): REVIEWER,
    ("POST", "/api/console/reviews"): REVIEWER,
    ("GET", "/api/console/approved-answers"): REVIEWER,
    ("GET", "/api/console/stats/handoffs"): ADMIN,
    ("GET", "/api/console/audit"): ADMIN,
    ("GET", "/api/analytics/kpis"): REVIEWER,
    ("GET", "/api/analytics/timeseries"): REVIEWER,
    ("GET", "/api/analytics/breakdown"): REVIEWER,
    ("GET", "/api/analytics/alerts"): REVIEWER,
    ("POST", "/api/analytics/rollup"): ADMIN,
    ("GET", "/api/analytics/experiments"): REVIEWER,
    ("POST", "/api/analytics/experiments"): ADMIN,
    ("POST", "/api/analytics/experiments/{name}/stop"): ADMIN,
    ("GET", "/api/analytics/insights"): REVIEWER,
    ("POST", "/api/analytics/insights/refresh"): REVIEWER,
    ("GET", "/api/analytics/gaps"): REVIEWER,
    ("POST", "/api/analytics/gaps/{gap_id}/accept"): REVIEWER,
    ("POST", "/api/analytics/gaps/{gap_id}/dismiss"): REVIEWER,
    ("POST", "/api/admin/customers/export"): ADMIN,
    ("POST", "/api/admin/customers/erase"): ADMIN,
}

# Bodies that pass validation where a route needs one, so that an allowed role gets past it.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/conversations"): {"channel": "web"},
    ("POST", "/api/conversations/{conversation_id}/messages"): {"text": "hello"},
    ("POST", "/api/conversations/{conversation_id}/csat"): {"score": 5},
    ("POST", "/api/console/login"): {"email": "ann@example.com", "password": PASSWORD},
    ("POST", "/api/console/conversations/{conversation_id}/reply"): {"text": "hi"},
    ("POST", "/api/console/conversations/{conversation_id}/notes"): {"text": "note"},
    ("POST", "/api/admin/customers/export"): {"ref": "conversation:no-such-conversation"},
    ("POST", "/api/admin/customers/erase"): {"ref": "conversation:no-such-conversation"},
}


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, HEAD and OPTIONS aside; WebSockets as ``WS``."""
    found: set[tuple[str, str]] = set()

    def add(route: Any, prefix: str) -> None:
        if isinstance(route, APIRoute):
            found.update((m, prefix + route.path) for m in route.methods - {"HEAD", "OPTIONS"})
        elif isinstance(route, APIWebSocketRoute):
            found.add(("WS", prefix + route.path))
        elif hasattr(route, "original_router"):  # an included router (FastAPI >= 0.165)
            for inner in route.original_router.routes:
                add(inner, prefix + route.include_context.prefix)
        elif getattr(route, "path", "") == "/openapi.json":
            found.add(("GET", "/openapi.json"))

    for route in app.routes:
        add(route, "")
    return found


def test_that_the_matrix_names_every_route(app: FastAPI) -> None:
    served = routes(app)
    assert served - set(MATRIX) == set(), "routes missing from the access matrix"
    assert set(MATRIX) - served == set(), "the matrix names routes that do not exist"


async def _socket_accepted(app: FastAPI, path: str, cookie: str | None) -> bool:
    """Open a WebSocket on the app at the ASGI level: accepted, or closed before accepting."""
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await incoming.put({"type": "websocket.connect"})
    headers = [(b"host", b"frontdesk.test")]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1234),
        "server": ("frontdesk.test", 80),
        "subprotocols": [],
        "app": app,
    }
    task = asyncio.create_task(app(scope, incoming.get, outgoing.put))
    try:
        first = await asyncio.wait_for(outgoing.get(), timeout=10)
        if first["type"] != "websocket.accept":
            return False
        # Accepted, then refused with an error frame and a close: refused all the same.
        try:
            second = await asyncio.wait_for(outgoing.get(), timeout=1)
        except TimeoutError:
            return True  # open and quiet (the console's socket speaks when something changes)
        return second["type"] == "websocket.send" and '"error"' not in str(second.get("text"))
    finally:
        await incoming.put({"type": "websocket.disconnect", "code": 1000})
        try:
            await asyncio.wait_for(task, timeout=10)
        except Exception:  # the app may end the socket its own way once the client left
            task.cancel()


@pytest.mark.parametrize("role", ROLES)
async def test_that_every_route_answers_each_role_as_the_matrix_says(
    role: str, app: FastAPI, customer: httpx.AsyncClient, login: Login
) -> None:
    own = await open_conversation(customer)
    await say(customer, own, "hello")
    client = customer if role in ("anonymous", "customer") else await login(f"{_email(role)}")
    conversation_id = own if role != "anonymous" else "00000000-0000-0000-0000-000000000000"
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items()) or None
    wrong: list[str] = []
    # Logging out ends the session: that route goes last.
    ordered = sorted(MATRIX, key=lambda r: r == ("POST", "/api/console/logout"))
    for method, template in ordered:
        allowed = role in MATRIX[(method, template)]
        path = template.format(conversation_id=conversation_id, name="nope", gap_id=999999)
        if method == "WS":
            accepted = await _socket_accepted(app, path, cookie)
            if accepted != allowed:
                wrong.append(f"WS {template}: accepted={accepted}")
            continue
        caller = client
        if template == "/api/console/login":  # logging in must not change who the caller is
            caller = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://frontdesk.test"
            )
        async with contextlib.AsyncExitStack() as stack:
            if caller is not client:
                await stack.enter_async_context(caller)
            response = await caller.request(method, path, json=BODIES.get((method, template)))
        status = response.status_code
        if allowed:
            ok = status not in (401, 403) and status < 500
        elif role in ("anonymous", "customer") and template.startswith("/api/conversations/"):
            ok = status == 404  # a conversation it does not hold does not exist for it
        elif role in ("anonymous", "customer"):
            ok = status == 401
        else:
            ok = status == 403
        if not ok:
            wrong.append(f"{method} {template}: {status} {response.text[:120]}")
    assert wrong == [], f"{role}: " + "\n".join(wrong)


def _email(role: str) -> str:
    return {"agent": "ann", "reviewer": "rita", "admin": "ada"}[role] + "@example.com"
