"""The agent console's API and pages: login, the queue, conversations, agent actions, reviews,
statistics and the audit log; a WebSocket that tells open consoles what changed.

Every route names the roles it serves (``Agent``, ``Reviewer``, ``Admin`` dependencies); a
request without a live session gets 401, a role that may not use the route 403, and a request
that changes something without the session's CSRF token in ``X-CSRF-Token`` 403. Views of a
customer's data and every agent action are audited."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
from datetime import timedelta
from typing import Annotated, Any

import nh3
from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError, accounts, console, reviews
from frontdesk.adapters.store import people
from frontdesk.adapters.store import repository as repo
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.api.errors import error_body
from frontdesk.api.routes import FrontdeskDep
from frontdesk.api.web import WEB
from frontdesk.core.types import utcnow
from frontdesk.pipeline.respond import clean_passage
from frontdesk.service import Frontdesk
from frontdesk.shop.records import dollars

COOKIE = "fd_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

router = APIRouter(prefix="/api/console", tags=["console"])
pages = APIRouter(include_in_schema=False)


class ConsoleAuthError(ActionError):
    """Not logged in, a wrong CSRF token, or a role that may not do this (401 or 403)."""


def install(app: FastAPI) -> None:
    @app.exception_handler(reviews.ReviewError)
    async def _review(_request: Request, exc: reviews.ReviewError) -> JSONResponse:
        return JSONResponse(error_body("invalid_review", str(exc)), status_code=422)


async def _session(request: Request, fd: Frontdesk) -> tuple[people.User, str, str]:
    token = request.cookies.get(COOKIE)
    found = await accounts.session_of(fd, token) if token else None
    if found is None or token is None:
        raise ConsoleAuthError("not_logged_in", "log in to the console first", 401)
    user, csrf = found
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent, csrf):
            raise ConsoleAuthError("csrf_failed", "missing or wrong X-CSRF-Token header", 403)
    return user, csrf, token


def _role(*roles: str) -> Any:
    async def check(request: Request, fd: FrontdeskDep) -> people.User:
        user, _, _ = await _session(request, fd)
        if not user.can(*roles):
            raise ConsoleAuthError(
                "forbidden", f"this needs the role {' or '.join(roles) or 'admin'}", 403
            )
        return user

    return Depends(check)


Agent = Annotated[people.User, _role("agent")]
Reviewer = Annotated[people.User, _role("reviewer")]
Reader = Annotated[people.User, _role("agent", "reviewer")]
Admin = Annotated[people.User, _role()]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Login(_Body):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1000)


class Take(_Body):
    force: bool = False


class Text(_Body):
    text: str = Field(min_length=1, max_length=4000)


class Review(_Body):
    message_id: str = Field(min_length=1, max_length=36)
    rating: str
    correction: str | None = Field(default=None, max_length=4000)
    save_test: bool = Field(
        default=False, description="Also save the correction as a regression test."
    )


# --- pages ---------------------------------------------------------------------------------


@pages.get("/console")
@pages.get("/console/login")
async def console_page() -> FileResponse:
    return FileResponse(
        WEB / "templates" / "console.html",
        media_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


@pages.get("/console/analytics")
async def analytics_page() -> FileResponse:
    """The KPI dashboard (admins and reviewers; its script sends others to sign in)."""
    return FileResponse(
        WEB / "templates" / "analytics.html",
        media_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


# --- sessions ------------------------------------------------------------------------------


@router.post("/login")
async def login(body: Login, fd: FrontdeskDep, response: Response) -> dict[str, Any]:
    logged = await accounts.do_login(fd, body.email, body.password)
    if logged is None:
        raise ConsoleAuthError("bad_credentials", "wrong email or password", 401)
    response.set_cookie(
        COOKIE,
        logged.token,
        max_age=int(timedelta(hours=fd.settings.session_hours).total_seconds()),
        httponly=True,
        samesite="strict",
        secure=fd.settings.cookie_secure,
        path="/",
    )
    return {"user": logged.user.public(), "csrf": logged.csrf}


@router.post("/logout", status_code=204)
async def logout(request: Request, fd: FrontdeskDep) -> Response:
    user, _, token = await _session(request, fd)
    await accounts.do_logout(fd, token, user)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/me")
async def me(request: Request, fd: FrontdeskDep) -> dict[str, Any]:
    user, csrf, _ = await _session(request, fd)
    return {"user": user.public(), "csrf": csrf}


# --- queue and conversations -----------------------------------------------------------------


@router.get("/queue")
async def queue(
    user: Agent,
    fd: FrontdeskDep,
    view: Annotated[str, Query(pattern="^(waiting|mine|all)$")] = "waiting",
) -> dict[str, Any]:
    items = await fd.db.run(lambda s: people.queue(s, view, user.id))
    return {"conversations": items}


def safe_html(text: str) -> str:
    """Text as HTML that shows exactly what was typed and cannot carry markup: escaped, then
    passed through nh3 with no tags allowed (a second line of defence)."""
    return nh3.clean(html.escape(text, quote=False), tags=set())


# What the console shows of a stored message's meta: how the bot decided, the guard checks that
# changed the reply before it was sent, and which model wrote it (or that it fell back).
_META_KEYS = ("action", "confidence", "flow", "reason")
_MODEL_KEYS = ("backend", "model", "prompt_tokens", "completion_tokens", "fallback")


def reply_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The part of a message's meta an agent sees (never sent to customers)."""
    shown = {k: meta[k] for k in _META_KEYS if k in meta}
    interventions = meta.get("interventions")
    if isinstance(interventions, list) and interventions:
        shown["interventions"] = [str(i) for i in interventions]
    model = meta.get("model")
    if isinstance(model, dict):
        shown["model"] = {k: model[k] for k in _MODEL_KEYS if model.get(k) is not None}
    return shown


def _detail(session: Session, fd: Frontdesk, conversation_id: str, user: people.User) -> Any:
    conversation = repo.get_conversation(session, conversation_id)
    if conversation is None:
        raise console.ConsoleError("not_found", f"no conversation with id {conversation_id!r}", 404)
    messages = [
        {
            "id": m.id,
            "seq": m.seq,
            "role": m.role,
            "html": safe_html(m.text),
            "created_at": m.created_at.isoformat(),
            "citations": m.citations,
            "meta": reply_meta(m.meta or {}),
        }
        for m in people.message_rows(session, conversation_id)
    ]
    handoff = people.latest_handoff(session, conversation_id)
    customer = None
    customer_id = (conversation.state.get("auth") or {}).get("customer_id")
    if customer_id:
        profile = shop_repo.profile(session, fd.sealer, customer_id)
        if profile is not None:
            orders = shop_repo.orders_of(session, fd.sealer, customer_id)
            customer = {
                "name": f"{profile.first_name} {profile.last_name}",
                "email": profile.email,
                "address": profile.address.text(),
                "payment_methods": [m.label() for m in profile.payment_methods],
                "orders": [
                    {
                        "id": o.id,
                        "status": o.status,
                        "total": dollars(o.total),
                        "items": [i.label() for i in o.items],
                    }
                    for o in orders
                ],
            }
            people.audit(
                session, user.id, "view_customer", conversation_id, {"customer": customer_id}
            )
    summary = dict(handoff.summary) if handoff else None
    if summary is not None:
        summary["customer"] = customer["name"] if customer else None
        summary.pop("customer_id", None)
    assigned = conversation.assigned_to
    return {
        "conversation": {
            "id": conversation.id,
            "mode": conversation.mode.value,
            "status": conversation.status.value,
            "channel": conversation.channel,
            "created_at": conversation.created_at.isoformat(),
            "assigned_to": (
                {"id": assigned, "name": people.names(session, [assigned]).get(assigned, "?")}
                if assigned
                else None
            ),
        },
        "messages": messages,
        "handoff": (
            {
                "reason": handoff.reason,
                "created_at": handoff.created_at.isoformat(),
                "summary": summary,
            }
            if handoff
            else None
        ),
        "customer": customer,
        "notes": people.notes(session, conversation_id),
    }


async def _detail_of(fd: Frontdesk, conversation_id: str, user: people.User) -> Any:
    return await fd.db.run(lambda s: _detail(s, fd, conversation_id, user))


@router.get("/conversations/{conversation_id}")
async def conversation(conversation_id: str, user: Reader, fd: FrontdeskDep) -> Any:
    return await _detail_of(fd, conversation_id, user)


@router.post("/conversations/{conversation_id}/take")
async def take(
    conversation_id: str, user: Agent, fd: FrontdeskDep, body: Take | None = None
) -> Any:
    await console.do_take(fd, conversation_id, user, force=bool(body and body.force))
    return await _detail_of(fd, conversation_id, user)


@router.post("/conversations/{conversation_id}/reveal")
async def reveal(conversation_id: str, user: Agent, fd: FrontdeskDep) -> Any:
    """The raw values behind the tokens in this conversation (``<EMAIL_1>`` and the like), for
    the agent who has taken it over or an admin. Each reveal is written to the audit log."""
    return {"values": await console.do_reveal(fd, conversation_id, user)}


@router.post("/conversations/{conversation_id}/reply", status_code=201)
async def reply(conversation_id: str, body: Text, user: Agent, fd: FrontdeskDep) -> Any:
    message = await console.do_agent_reply(fd, conversation_id, user, body.text.strip())
    return {"message": message.public()}


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def note(conversation_id: str, body: Text, user: Agent, fd: FrontdeskDep) -> Any:
    return {"note": await console.do_add_note(fd, conversation_id, user, body.text.strip())}


@router.post("/conversations/{conversation_id}/handback")
async def handback(conversation_id: str, user: Agent, fd: FrontdeskDep) -> Any:
    await console.do_hand_back(fd, conversation_id, user)
    return await _detail_of(fd, conversation_id, user)


@router.post("/conversations/{conversation_id}/resolve")
async def resolve(conversation_id: str, user: Agent, fd: FrontdeskDep) -> Any:
    await console.do_resolve(fd, conversation_id, user)
    return await _detail_of(fd, conversation_id, user)


@router.get("/conversations/{conversation_id}/suggestions")
async def suggestions(conversation_id: str, user: Agent, fd: FrontdeskDep) -> Any:
    """Replies an agent may send: the help centre's best passages for the customer's last
    message, a reviewer's approved answer, and the status of the order being discussed."""

    def read(session: Session) -> tuple[Any, list[Any]]:
        found = repo.get_conversation(session, conversation_id)
        if found is None:
            raise console.ConsoleError("not_found", "no such conversation", 404)
        return found, people.message_rows(session, conversation_id)

    found, rows = await fd.db.run(read)
    last = next((m.text for m in reversed(rows) if m.role == "customer"), None)
    out: list[dict[str, str]] = []
    if last:
        vector = await fd.embedder.embed_one(last)
        approved = fd.approved_answer(vector)
        if approved is not None:
            out.append({"kind": "approved", "text": approved.answer, "source": "Approved answer"})
        for passage in fd.retriever.search_vector(last, vector, 3):
            out.append(
                {
                    "kind": "knowledge",
                    "text": clean_passage(passage.text),
                    "source": passage.cite_title,
                }
            )
    order_id = (found.state.get("memory") or {}).get("order_id")
    customer_id = (found.state.get("auth") or {}).get("customer_id")
    if order_id and customer_id:
        order = await fd.db.run(lambda s: shop_repo.order(s, fd.sealer, order_id))
        if order is not None and order.customer_id == customer_id:
            items = ", ".join(i.name for i in order.items)
            tracking = f" Tracking number: {', '.join(order.tracking)}." if order.tracking else ""
            out.append(
                {
                    "kind": "order",
                    "text": f"Order {order.id} is {order.status} ({items}).{tracking}",
                    "source": f"order {order.id}",
                }
            )
    return {"suggestions": out}


# --- reviews -------------------------------------------------------------------------------


@router.get("/reviews/queue")
async def review_queue(user: Reviewer, fd: FrontdeskDep) -> Any:
    return {"items": [i.public() for i in await reviews.review_queue(fd)]}


@router.post("/reviews", status_code=201)
async def review(body: Review, user: Reviewer, fd: FrontdeskDep) -> Any:
    return await reviews.do_review(
        fd, user, body.message_id, body.rating, body.correction, save_test=body.save_test
    )


@router.get("/approved-answers")
async def approved_answers(user: Reviewer, fd: FrontdeskDep) -> Any:
    def read(session: Session) -> list[dict[str, Any]]:
        rows = people.approved_answers(session, active_only=False)
        authors = people.names(session, [r.created_by for r in rows])
        return [
            {
                "id": r.id,
                "question": r.question,
                "answer": r.answer,
                "version": r.version,
                "active": r.active,
                "created_by": authors.get(r.created_by, r.created_by),
                "created_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    return {"answers": await fd.db.run(read)}


# --- admin ---------------------------------------------------------------------------------


@router.get("/stats/handoffs")
async def handoff_stats(
    user: Admin, fd: FrontdeskDep, days: Annotated[int, Query(ge=1, le=3650)] = 30
) -> Any:
    since = utcnow() - timedelta(days=days)
    counts = await fd.db.run(lambda s: people.handoff_counts(s, since))
    return {
        "days": days,
        "total": sum(c for _, c in counts),
        "reasons": [{"reason": r, "count": c} for r, c in counts],
    }


@router.get("/audit")
async def audit(
    user: Admin, fd: FrontdeskDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> Any:
    return {"entries": await fd.db.run(lambda s: people.audit_entries(s, limit))}


# --- live updates --------------------------------------------------------------------------


@router.websocket("/ws")
async def console_socket(websocket: WebSocket) -> None:
    """Tells an open console which conversation changed; the console refetches. An agent with
    a socket open counts as online for assignment."""
    fd: Frontdesk = websocket.app.state.frontdesk
    token = websocket.cookies.get(COOKIE)
    found = await accounts.session_of(fd, token) if token else None
    if found is None:
        await websocket.close(code=4401)
        return
    user, _ = found
    await websocket.accept()
    online = user.can("agent")
    if online:
        fd.presence[user.id] = fd.presence.get(user.id, 0) + 1
    try:
        async with fd.bus.subscribe(console.CONSOLE) as feed:
            receiver = asyncio.ensure_future(websocket.receive())
            while True:
                getter = asyncio.ensure_future(feed.get())
                done, _ = await asyncio.wait(
                    {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiver in done:
                    getter.cancel()
                    message = receiver.result()
                    if message["type"] == "websocket.disconnect":
                        return
                    receiver = asyncio.ensure_future(websocket.receive())
                    continue
                await websocket.send_json(getter.result())
    except WebSocketDisconnect:
        return
    finally:
        if online:
            fd.presence[user.id] = fd.presence.get(user.id, 1) - 1
            if fd.presence[user.id] <= 0:
                fd.presence.pop(user.id, None)
        with contextlib.suppress(Exception):
            await websocket.close()
