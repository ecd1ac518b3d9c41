"""A customer's data rights: export everything Frontdesk holds about them (one JSON document),
and erase it.

Who a customer is (the reference, ``REF``):

- ``c_...``: a store customer (the keyed id Frontdesk gives the store's customers);
- an email address: the store customer with that email (found by its keyed digest), and the
  conversations and sales leads in which that address was given;
- ``conversation:ID``: one conversation (an anonymous chat).

A store customer's conversations are those in which they were verified (the conversation's
state records the customer), those in which a tool wrote for them, and those in which their
email address was typed (its vault entry), with the sales leads given under their email.

Erasure deletes every row that belongs to them or identifies them, in one transaction, and
records ``customer_erased`` in the audit log with who, when and the number of rows per table,
under keyed marks of the reference instead of any identifying value. The audit entries about
them are kept (who looked at or changed what, and when) without the conversation or customer
they name. See docs/operations.md ("Retention, export and erasure").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from frontdesk.actions import ActionError
from frontdesk.adapters.crypto import SealError
from frontdesk.adapters.store import data_rights as store
from frontdesk.adapters.store import people
from frontdesk.adapters.store import shop as shop_repo
from frontdesk.adapters.store.tables import (
    AnalyticsConversationRow,
    ApprovedAnswerRow,
    ConversationRow,
    CsatRow,
    CustomerRow,
    EventRow,
    HandoffRow,
    InsightSnapshotRow,
    KnowledgeGapRow,
    MessageRow,
    NoteRow,
    PseudonymRow,
    ReviewRow,
    ShopActionRow,
    ShopCustomerRow,
    ShopOrderRow,
)
from frontdesk.core.types import ConversationId, Role, utcnow
from frontdesk.pipeline import privacy
from frontdesk.service import Frontdesk

EXPORT_FORMAT = "frontdesk-export/1"
CONVERSATION_PREFIX = "conversation:"
_CUSTOMER_ID = re.compile(r"c_[0-9a-f]{24}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class DataRightsError(ActionError):
    """A reference that names nobody Frontdesk knows, or that is not a reference at all."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Whom an export or an erasure is about, and where their data is."""

    reference: str  # customer | email | conversation
    customer_id: str | None
    email_digest: str | None
    marks: tuple[str, ...]  # keyed marks of every reference that names them
    conversation_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed: rows per table (``counts``), and what it changed outside the
    database."""

    reference: str
    counts: dict[str, int]
    conversation_ids: tuple[str, ...]
    files: dict[str, int]
    wal_truncated: bool | None  # SQLite only: the write-ahead log was emptied

    def public(self) -> dict[str, Any]:
        return {
            "erased": True,
            "reference": self.reference,
            "conversations": len(self.conversation_ids),
            "counts": dict(sorted(self.counts.items())),
            "files": self.files,
            "wal_truncated": self.wal_truncated,
        }


# --- references ----------------------------------------------------------------------------


def parse_ref(ref: str) -> tuple[str, str]:
    """(kind, value) of a reference: customer, email or conversation."""
    ref = ref.strip()
    if ref.startswith(CONVERSATION_PREFIX):
        conversation_id = ref[len(CONVERSATION_PREFIX) :].strip()
        if conversation_id and len(conversation_id) <= 64:
            return "conversation", conversation_id
    elif _CUSTOMER_ID.fullmatch(ref):
        return "customer", ref
    elif _EMAIL.fullmatch(ref) and len(ref) <= 254:
        return "email", ref
    raise DataRightsError(
        "bad_reference",
        "a customer is named by their id (c_ and 24 hex digits), their email address, or "
        "conversation:ID for one conversation",
        422,
    )


def mark(secret: bytes, kind: str, value: str) -> str:
    """A keyed mark of a reference (``customer:c_...``, ``email:...``, ``conversation:ID``):
    the audit log keeps it instead of the reference, so that asking again for an erased
    customer can be answered, while the log names nobody."""
    if kind == "email":
        value = privacy.normalise(privacy.EMAIL, value)
    message = f"ERASED:{kind}:{value}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _open_profile(session: Session, fd: Frontdesk, customer_id: str) -> Any:
    try:
        return shop_repo.profile(session, fd.sealer, customer_id)
    except SealError:
        return None


def resolve(session: Session, fd: Frontdesk, ref: str) -> Subject | None:
    """The customer a reference names, with every conversation of theirs; None if Frontdesk
    holds nothing about them."""
    kind, value = parse_ref(ref)
    if kind == "conversation":
        if not store.conversation_traces(session, value):
            return None
        return Subject("conversation", None, None, (mark(fd.secret, kind, value),), (value,))
    customer_id: str | None = None
    email_digest: str | None = None
    email: str | None = None
    if kind == "customer":
        customer_id = value
        row = session.get(ShopCustomerRow, value)
        if row is not None:
            email_digest = row.email_digest
            found = _open_profile(session, fd, value)
            email = found.email if found is not None else None
    else:
        email = value
        email_digest = shop_repo.email_digest(fd.secret, value)
        customer_id = shop_repo.customer_by_digest(session, email=email_digest)
    conversations: set[str] = set()
    if customer_id:
        conversations |= store.conversations_verified_as(session, customer_id)
    if email_digest:
        conversations |= store.conversations_with_value(session, privacy.EMAIL, email_digest)
    leads = store.leads_of(session, [], email_digest)
    conversations |= {lead.conversation_id for lead in leads if lead.conversation_id}
    in_store = customer_id is not None and (
        session.get(ShopCustomerRow, customer_id) is not None
        or session.execute(
            select(ShopOrderRow.id).where(ShopOrderRow.customer_id == customer_id).limit(1)
        ).first()
        is not None
    )
    if not (in_store or conversations or leads):
        return None
    marks = []
    if customer_id:
        marks.append(mark(fd.secret, "customer", customer_id))
    if email:
        marks.append(mark(fd.secret, "email", email))
    marks += [mark(fd.secret, "conversation", c) for c in sorted(conversations)]
    return Subject(
        "customer" if customer_id else "email",
        customer_id,
        email_digest,
        tuple(marks),
        tuple(sorted(conversations)),
    )


def _not_found(session: Session, fd: Frontdesk, ref: str) -> DataRightsError:
    kind, value = parse_ref(ref)
    wanted = mark(fd.secret, kind, value)
    for entry in store.erasure_entries(session):
        if wanted in (entry.detail or {}).get("subjects", []):
            return DataRightsError(
                "already_erased",
                f"this customer's data was erased on {entry.created_at.date().isoformat()}; "
                "nothing is left",
                404,
            )
    return DataRightsError("customer_not_found", "Frontdesk holds nothing about this customer", 404)


def _subject(session: Session, fd: Frontdesk, ref: str) -> Subject:
    found = resolve(session, fd, ref)
    if found is None:
        raise _not_found(session, fd, ref)
    return found


# --- export --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """A JSON value: times as ISO 8601, decimals as numbers, bytes left out."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return None
    return value


def _row(row: Any, *leave_out: str) -> dict[str, Any]:
    return {
        column.key: _plain(getattr(row, column.key))
        for column in row.__table__.columns
        if column.key not in leave_out
    }


def _customer(session: Session, fd: Frontdesk, customer_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": customer_id, "profile": None, "orders": []}
    if session.get(ShopCustomerRow, customer_id) is not None:
        found = _open_profile(session, fd, customer_id)
        out["profile"] = (
            found.as_dict()
            if found is not None
            else {"error": "the profile is sealed under a key this service does not hold"}
        )
    try:
        orders = shop_repo.orders_of(session, fd.sealer, customer_id)
    except SealError:
        orders = []
        out["orders_error"] = "the orders are sealed under a key this service does not hold"
    out["orders"] = [
        {
            "id": o.id,
            "status": o.status,
            "items": [i.as_dict() for i in o.items],
            "tracking": list(o.tracking),
            "payments": _plain(list(o.payments)),
            "address": o.address.as_dict(),
            "details": _plain(o.details),
        }
        for o in orders
    ]
    return out


def _vault_value(fd: Frontdesk, sealed: str | None) -> dict[str, Any]:
    if sealed is None:
        return {"value": None, "note": "removed after the retention period"}
    try:
        return {"value": fd.sealer.open(sealed, "vault")}
    except SealError:
        return {"value": None, "note": "sealed under a key this service does not hold"}


def _by_conversation(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.conversation_id].append(row)
    return grouped


def export_document(session: Session, fd: Frontdesk, subject: Subject) -> dict[str, Any]:
    """Everything held about the subject, values opened from the vault and the sealed store
    records (the customer is entitled to them). Agents' notes and reviewers' ratings are
    included, marked internal."""
    ids = list(subject.conversation_ids)
    rows = store.rows_in
    conversations = {r.id: r for r in rows(session, ConversationRow, ConversationRow.id, ids)}
    messages = _by_conversation(
        rows(session, MessageRow, MessageRow.conversation_id, ids, MessageRow.seq)
    )
    vault = _by_conversation(
        rows(
            session,
            PseudonymRow,
            PseudonymRow.conversation_id,
            ids,
            PseudonymRow.kind,
            PseudonymRow.number,
        )
    )
    notes = _by_conversation(rows(session, NoteRow, NoteRow.conversation_id, ids, NoteRow.id))
    handoffs = _by_conversation(
        rows(session, HandoffRow, HandoffRow.conversation_id, ids, HandoffRow.id)
    )
    reviews = _by_conversation(
        rows(session, ReviewRow, ReviewRow.conversation_id, ids, ReviewRow.id)
    )
    csat = {r.conversation_id: r for r in rows(session, CsatRow, CsatRow.conversation_id, ids)}
    events = _by_conversation(rows(session, EventRow, EventRow.conversation_id, ids, EventRow.id))
    analytics = {
        r.conversation_id: r
        for r in rows(
            session, AnalyticsConversationRow, AnalyticsConversationRow.conversation_id, ids
        )
    }
    people_ids = [n.author_id for group in notes.values() for n in group]
    people_ids += [r.reviewer_id for group in reviews.values() for r in group]
    people_ids += [h.taken_by for group in handoffs.values() for h in group if h.taken_by]
    audit = store.audit_about(session, ids, subject.customer_id)
    people_ids += [a.user_id for a in audit if a.user_id]
    names = people.names(session, people_ids)

    def conversation(cid: str) -> dict[str, Any]:
        row = conversations.get(cid)
        found = (
            _row(row) if row is not None else {"id": cid, "note": "the conversation row is gone"}
        )
        rated = csat.get(cid)
        counted = analytics.get(cid)
        return {
            **found,
            "messages": [_row(m, "conversation_id") for m in messages.get(cid, [])],
            "vault": [
                {
                    "token": privacy.token(p.kind, p.number),
                    "kind": p.kind,
                    **_vault_value(fd, p.sealed),
                }
                for p in vault.get(cid, [])
            ],
            "notes": [
                {
                    "internal": True,
                    "author": names.get(n.author_id, n.author_id),
                    "text": n.text,
                    "created_at": _plain(n.created_at),
                }
                for n in notes.get(cid, [])
            ],
            "handoffs": [
                {
                    **_row(h, "conversation_id", "taken_by"),
                    "taken_by": names.get(h.taken_by, h.taken_by) if h.taken_by else None,
                }
                for h in handoffs.get(cid, [])
            ],
            "csat": _row(rated, "conversation_id") if rated is not None else None,
            "reviews": [
                {
                    "internal": True,
                    **_row(r, "conversation_id", "reviewer_id"),
                    "reviewer": names.get(r.reviewer_id, r.reviewer_id),
                }
                for r in reviews.get(cid, [])
            ],
            "events": [_row(e, "conversation_id") for e in events.get(cid, [])],
            "analytics": _row(counted, "conversation_id") if counted is not None else None,
        }

    actions: list[ShopActionRow] = rows(
        session, ShopActionRow, ShopActionRow.conversation_id, ids, ShopActionRow.id
    )
    if subject.customer_id:
        known = {a.id for a in actions}
        actions += [
            a
            for a in session.execute(
                select(ShopActionRow)
                .where(ShopActionRow.customer_id == subject.customer_id)
                .order_by(ShopActionRow.id)
            ).scalars()
            if a.id not in known
        ]
    leads = []
    for lead in store.leads_of(session, ids, subject.email_digest):
        try:
            contact = fd.sealer.open_json(lead.contact, shop_repo.LEAD_CONTACT)
        except SealError:
            contact = {"error": "sealed under a key this service does not hold"}
        leads.append({**_row(lead, "contact", "email_digest"), "contact": contact})
    ordered = sorted(
        ids, key=lambda c: (str(_plain(getattr(conversations.get(c), "created_at", ""))), c)
    )
    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "reference": subject.reference,
        "customer": (_customer(session, fd, subject.customer_id) if subject.customer_id else None),
        "shop_actions": [_row(a) for a in sorted(actions, key=lambda a: a.id)],
        "leads": leads,
        "conversations": [conversation(c) for c in ordered],
        "audit": [
            {
                "at": _plain(a.created_at),
                "user": names.get(a.user_id, a.user_id) if a.user_id else None,
                "action": a.action,
                "conversation_id": a.conversation_id,
                "detail": _plain(a.detail),
            }
            for a in audit
        ],
        "notes": (
            "Message texts are as stored: personal data in them is replaced by tokens such as "
            "<EMAIL_1>, and each conversation's vault gives the value behind each token. Notes "
            "and reviews marked internal were written by the company's staff."
        ),
    }


async def do_export(
    fd: Frontdesk, ref: str, user_id: str | None, via: str = "api"
) -> dict[str, Any]:
    """The export document of a customer (``DataRightsError`` 404 if none), audited as
    ``customer_exported`` (with the keyed mark of the customer, not who they are)."""

    def work(session: Session) -> dict[str, Any]:
        subject = _subject(session, fd, ref)
        document = export_document(session, fd, subject)
        people.audit(
            session,
            user_id,
            "customer_exported",
            None,
            {"subject": subject.marks[0], "reference": subject.reference, "via": via},
        )
        return document

    return await fd.db.run(work)


# --- erasure -------------------------------------------------------------------------------


def _scrub(value: Any, wanted: set[str], removed: list[int]) -> Any:
    """``value`` (an insight snapshot's JSON) without the strings in ``wanted``: taken out of
    lists; a field holding one gets the first of its entry's examples or variants instead
    (or nothing)."""
    if isinstance(value, list):
        kept = []
        for item in value:
            if isinstance(item, str) and item.strip() in wanted:
                removed[0] += 1
                continue
            kept.append(_scrub(item, wanted, removed))
        return kept
    if isinstance(value, dict):
        out = {k: _scrub(v, wanted, removed) for k, v in value.items()}
        for key, item in list(out.items()):
            if isinstance(item, str) and item.strip() in wanted:
                removed[0] += 1
                out[key] = ""
                for alternatives in ("examples", "variants"):
                    others = out.get(alternatives)
                    if isinstance(others, list) and others and isinstance(others[0], str):
                        out[key], out[alternatives] = others[0], others[1:]
                        break
        return out
    return value


def _scrub_insights(
    session: Session, questions: Sequence[str], answers: Sequence[str]
) -> Counter[str]:
    """Take the customer's texts out of the knowledge gaps and the insight snapshots. An open
    or dismissed gap whose question was theirs gets another of its examples as its question,
    or goes; an agent's answer from their conversations stops being a suggested answer. An
    accepted gap's question and answer are in the knowledge base already (reviewed by a person)
    and stay; only its examples change. Nothing is recomputed."""
    counts: Counter[str] = Counter()
    wanted = {t.strip() for t in questions if t.strip()}
    replies = {t.strip() for t in answers if t.strip()}
    if not wanted and not replies:
        return counts
    from frontdesk.analytics.insights import gap_key

    for gap in list(session.execute(select(KnowledgeGapRow)).scalars()):
        examples = [e for e in gap.examples or [] if str(e).strip() not in wanted]
        changed = len(examples) != len(gap.examples or [])
        if gap.status != "accepted":
            if gap.question.strip() in wanted:
                if not examples:
                    session.delete(gap)
                    counts["knowledge_gaps"] += 1
                    continue
                gap.question = str(examples[0])
                key = gap_key(gap.question)
                taken = session.execute(
                    select(KnowledgeGapRow.id).where(
                        KnowledgeGapRow.key == key, KnowledgeGapRow.id != gap.id
                    )
                ).first()
                gap.key = key if taken is None else f"erased-{gap.id}"
                changed = True
            if gap.suggested_answer.strip() in replies:
                gap.suggested_answer = ""
                changed = True
        if changed:
            gap.examples = examples
            counts["knowledge_gaps (edited)"] += 1
    for snapshot in session.execute(select(InsightSnapshotRow)).scalars():
        removed = [0]
        payload = _scrub(dict(snapshot.payload or {}), wanted, removed)
        if removed[0]:
            snapshot.payload = payload
            counts["analytics_insights (entries)"] += removed[0]
    session.flush()
    return counts


def _drop_approved(session: Session, review_ids: Sequence[int]) -> int:
    """Delete the approved answers that came from the reviews; a question whose active
    version went gets its newest remaining version back."""
    found = [
        row
        for part in range(0, len(review_ids), store.CHUNK)
        for row in session.execute(
            select(ApprovedAnswerRow).where(
                ApprovedAnswerRow.review_id.in_(review_ids[part : part + store.CHUNK])
            )
        ).scalars()
    ]
    keys = {row.key for row in found}
    for row in found:
        session.delete(row)
    session.flush()
    for key in keys:
        remaining = list(
            session.execute(
                select(ApprovedAnswerRow)
                .where(ApprovedAnswerRow.key == key)
                .order_by(ApprovedAnswerRow.version.desc())
            ).scalars()
        )
        if remaining and not any(r.active for r in remaining):
            remaining[0].active = True
    return len(found)


def erase_rows(
    session: Session, fd: Frontdesk, ref: str, user_id: str | None, via: str = "api"
) -> tuple[Subject, Counter[str], list[str], list[int]]:
    """The database part of an erasure, in the caller's one transaction. Returns the subject,
    the rows per table, the customer's message texts and their reviews' ids (for the files
    outside the database)."""
    subject = _subject(session, fd, ref)
    ids = list(subject.conversation_ids)
    store.lock_conversations(session, ids)
    counts: Counter[str] = Counter()
    questions = store.customer_texts(session, ids, Role.CUSTOMER.value)
    answers = store.customer_texts(session, ids, Role.AGENT.value)
    review_ids = [r.id for r in store.rows_in(session, ReviewRow, ReviewRow.conversation_id, ids)]
    counts["approved_answers"] += _drop_approved(session, review_ids)
    counts["training_examples"] += store.delete_in(
        session, store.table("training_examples"), "review_id", review_ids
    )
    counts.update(_scrub_insights(session, questions, answers))
    audit = store.audit_about(session, ids, subject.customer_id)
    counts["audit_log (de-identified)"] += store.deidentify_audit(
        session, [a.id for a in audit], subject.marks[0]
    )
    if subject.customer_id:
        counts["events"] += store.delete_in(
            session,
            store.table("events"),
            "id",
            store.customer_events(session, subject.customer_id),
        )
        counts["shop_actions"] += store.delete_where(
            session,
            store.table("shop_actions"),
            ShopActionRow.customer_id == subject.customer_id,
        )
    if subject.email_digest:
        counts["leads"] += store.delete_where(
            session,
            store.table("leads"),
            store.table("leads").c.email_digest == subject.email_digest,
        )
    linked = {
        c
        for part in store.chunks(ids)
        for c in session.execute(
            select(ConversationRow.customer_id).where(ConversationRow.id.in_(part))
        ).scalars()
        if c
    }
    if subject.email_digest:
        linked |= set(
            session.execute(
                select(CustomerRow.id).where(CustomerRow.email_digest == subject.email_digest)
            ).scalars()
        )
    for found in store.conversation_tables():
        if found.name != "audit_log":
            counts[found.name] += store.delete_in(session, found, "conversation_id", ids)
    counts["conversations"] += store.delete_in(session, store.table("conversations"), "id", ids)
    counts["customers"] += store.delete_in(session, store.table("customers"), "id", linked)
    if subject.customer_id:
        counts["shop_orders"] += store.delete_where(
            session,
            store.table("shop_orders"),
            ShopOrderRow.customer_id == subject.customer_id,
        )
        counts["shop_customers"] += store.delete_where(
            session,
            store.table("shop_customers"),
            ShopCustomerRow.id == subject.customer_id,
        )
    counts = Counter({k: v for k, v in counts.items() if v})
    people.audit(
        session,
        user_id,
        "customer_erased",
        None,
        {
            "subjects": list(subject.marks),
            "reference": subject.reference,
            "via": via,
            "counts": dict(sorted(counts.items())),
        },
    )
    return subject, counts, questions, review_ids


def _drop_cached_vectors(fd: Frontdesk, texts: Sequence[str]) -> int:
    """Take the customer's questions out of the insights' vector cache (keyed by a digest of
    each text)."""
    from frontdesk.analytics import insights

    path = fd.settings.data_dir / "cache" / insights.CACHE_FILE
    if not texts or not path.exists():
        return 0
    wanted = {insights._cache_key(insights.clean(t)[: insights.MAX_EMBED_CHARS]) for t in texts}
    try:
        with np.load(path, allow_pickle=False) as data:
            encoder = str(data["encoder"])
            keys = [str(k) for k in data["keys"]]
            vectors = np.asarray(data["vectors"])
    except (OSError, KeyError, ValueError):
        path.unlink(missing_ok=True)  # unreadable: the next refresh embeds again
        return 0
    kept = [i for i, k in enumerate(keys) if k not in wanted]
    dropped = len(keys) - len(kept)
    if not dropped:
        return 0
    if not kept:
        path.unlink(missing_ok=True)
        return dropped
    cache = insights.VectorCache(path, encoder)
    cache.used = {keys[i]: vectors[i] for i in kept}
    cache.save()
    return dropped


def _drop_review_tests(path: Path, review_ids: Sequence[int]) -> int:
    """Remove the regression tests saved from the reviews (they quote the customer)."""
    if not review_ids or not path.exists():
        return 0
    from frontdesk.testing.regressions import REVIEW_HEADER

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    conversations = list(data.get("conversations") or [])
    prefixes = tuple(f"reviewed answer {i}:" for i in review_ids)
    kept = [c for c in conversations if not str(c.get("name", "")).startswith(prefixes)]
    dropped = len(conversations) - len(kept)
    if not dropped:
        return 0
    if not kept:
        path.unlink()
        return dropped
    body = yaml.safe_dump({"conversations": kept}, sort_keys=False, allow_unicode=True)
    path.write_text(REVIEW_HEADER + body, encoding="utf-8")
    return dropped


async def truncate_sqlite_log(fd: Frontdesk) -> bool | None:
    """On SQLite, copy the write-ahead log into the database and empty it, so that the pages
    the erasure overwrote (``secure_delete``) leave no older copy behind. None elsewhere; False
    when another connection kept it busy."""
    if fd.db.dialect != "sqlite":
        return None

    def work(session: Session) -> bool:
        row = session.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
        return row is not None and int(row[0]) == 0

    return await fd.db.run(work)


async def do_erase(fd: Frontdesk, ref: str, user_id: str | None, via: str = "api") -> Erasure:
    """Erase everything held about a customer (``DataRightsError`` 404 when nothing is left).

    The conversations' locks are held meanwhile, so a turn in progress finishes first and a
    later message to an erased conversation gets 404; an insights refresh waits too, so it
    cannot write back what it read before."""
    from frontdesk.actions.console import announce
    from frontdesk.actions.reviews import default_tests_path
    from frontdesk.analytics.insights import _lock as insights_lock

    async with insights_lock(fd, "refresh"), contextlib.AsyncExitStack() as stack:
        found = await fd.db.run(lambda s: _subject(s, fd, ref))
        for conversation_id in found.conversation_ids:
            await stack.enter_async_context(fd.conversation_lock(conversation_id))
        subject, counts, questions, review_ids = await fd.db.run(
            lambda s: erase_rows(s, fd, ref, user_id, via)
        )
        files = {
            "insight vector cache entries": await asyncio.to_thread(
                _drop_cached_vectors, fd, questions
            ),
            "review regression tests": await asyncio.to_thread(
                _drop_review_tests, default_tests_path(fd), review_ids
            ),
        }
    if counts.get("approved_answers"):
        await fd.load_approved_answers()
    truncated = await truncate_sqlite_log(fd)
    for conversation_id in subject.conversation_ids:
        await fd.bus.publish(
            ConversationId(conversation_id),
            {
                "type": "error",
                "error": {
                    "code": "conversation_not_found",
                    "message": "this conversation was erased",
                },
                "client_message_id": None,
            },
        )
        await announce(fd, conversation_id)
    return Erasure(
        subject.reference,
        dict(counts),
        subject.conversation_ids,
        {k: v for k, v in files.items() if v},
        truncated,
    )


async def preview_erase(fd: Frontdesk, ref: str) -> dict[str, Any]:
    """What an erasure would take (for a confirmation): conversations and store records."""

    def work(session: Session) -> dict[str, Any]:
        subject = _subject(session, fd, ref)
        orders = 0
        if subject.customer_id:
            orders = len(
                session.execute(
                    select(ShopOrderRow.id).where(ShopOrderRow.customer_id == subject.customer_id)
                ).all()
            )
        return {
            "reference": subject.reference,
            "store_customer": subject.customer_id is not None,
            "conversations": len(subject.conversation_ids),
            "orders": orders,
        }

    return await fd.db.run(work)
