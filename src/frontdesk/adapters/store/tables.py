"""Table definitions. Alembic migrations under frontdesk/migrations create them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from frontdesk.adapters.store.sealed import SealedJSON, SealedText


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every database (SQLite stores no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use frontdesk.core.types.utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite only auto-increments INTEGER PRIMARY KEY columns.
AutoBigInt = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class CustomerRow(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    external_ref: Mapped[str | None] = mapped_column(String(128), unique=True)
    email_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime]


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), index=True)
    assigned_to: Mapped[str | None] = mapped_column(String(36), index=True)
    # The flows' slots hold what the customer typed (a name and zip to verify, an address).
    state: Mapped[dict[str, Any]] = mapped_column(SealedJSON("conversations.state"))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        UniqueConstraint(
            "conversation_id", "client_message_id", name="uq_messages_conversation_client_id"
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(SealedText("messages.text"))
    client_message_id: Mapped[str | None] = mapped_column(String(128))
    reply_to: Mapped[str | None] = mapped_column(String(36), index=True)
    citations: Mapped[list[Any]]
    meta: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class EventRow(Base):
    __tablename__ = "events"
    __table_args__ = (Index("ix_events_type_created", "type", "created_at"),)

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class PseudonymRow(Base):
    """Which token stands for which value in a conversation: a keyed digest, never the value."""

    __tablename__ = "pseudonyms"

    conversation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    number: Mapped[int] = mapped_column(Integer)
    # The raw value, sealed by its own code (the vault).
    sealed: Mapped[str | None] = mapped_column(Text, info={"sealed": "vault"})


class ArticleRow(Base):
    __tablename__ = "knowledge_articles"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(500))
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime]


class ChunkRow(Base):
    __tablename__ = "knowledge_chunks"

    id: Mapped[str] = mapped_column(String(220), primary_key=True)
    article_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_articles.id", ondelete="CASCADE"), index=True
    )
    ord: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    text: Mapped[str] = mapped_column(Text)
    cite_id: Mapped[str] = mapped_column(String(200))
    cite_title: Mapped[str] = mapped_column(String(300))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    embedder: Mapped[str] = mapped_column(String(100))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)


# --- the store's own data (orders, customers, products), imported from the company's data ---


class ShopCustomerRow(Base):
    """A store customer. Lookups go by keyed digests; the profile itself is sealed."""

    __tablename__ = "shop_customers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email_digest: Mapped[str] = mapped_column(String(64), index=True)
    name_zip_digest: Mapped[str] = mapped_column(String(64), index=True)
    profile: Mapped[str] = mapped_column(Text, info={"sealed": "shop_customers.profile"})
    updated_at: Mapped[datetime]


class ShopProductRow(Base):
    __tablename__ = "shop_products"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    variants: Mapped[dict[str, Any]]


class ShopOrderRow(Base):
    __tablename__ = "shop_orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(40))
    items: Mapped[list[Any]]
    fulfillments: Mapped[list[Any]]
    payments: Mapped[list[Any]]
    address: Mapped[str] = mapped_column(Text, info={"sealed": "shop_orders.address"})
    details: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class ShopActionRow(Base):
    """Every executed write, once: the key makes a repeated request return the first result."""

    __tablename__ = "shop_actions"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(64), index=True)
    tool: Mapped[str] = mapped_column(String(64))
    args: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class LeadRow(Base):
    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    conversation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    contact: Mapped[str] = mapped_column(Text, info={"sealed": "leads.contact"})  # name, email
    email_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    interest: Mapped[str] = mapped_column(String(300))
    budget: Mapped[str | None] = mapped_column(String(32))
    score: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


# --- people: accounts, sessions, audit; handoffs, notes, reviews ---------------------------


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime]


class SessionRow(Base):
    __tablename__ = "sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[str | None] = mapped_column(String(36), index=True)
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class HandoffRow(Base):
    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(36), index=True)
    reason: Mapped[str] = mapped_column(String(120))
    summary: Mapped[dict[str, Any]] = mapped_column(SealedJSON("handoffs.summary"))
    created_at: Mapped[datetime]
    taken_by: Mapped[str | None] = mapped_column(String(36))
    taken_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]


class NoteRow(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(String(36), index=True)
    author_id: Mapped[str] = mapped_column(String(36))
    text: Mapped[str] = mapped_column(SealedText("notes.text"))
    created_at: Mapped[datetime]


class ReviewRow(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), index=True)
    conversation_id: Mapped[str] = mapped_column(String(36))
    reviewer_id: Mapped[str] = mapped_column(String(36))
    rating: Mapped[str] = mapped_column(String(16))
    correction: Mapped[str | None] = mapped_column(SealedText("reviews.correction"))
    created_at: Mapped[datetime]


class ApprovedAnswerRow(Base):
    """A reviewed answer to a question, used before retrieval. Each correction of the same
    question (``key``) is a new version; only the newest is active."""

    __tablename__ = "approved_answers"
    __table_args__ = (UniqueConstraint("key", "version", name="uq_approved_answers_key_version"),)

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(SealedText("approved_answers.question"))
    answer: Mapped[str] = mapped_column(SealedText("approved_answers.answer"))
    version: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean)
    embedder: Mapped[str] = mapped_column(String(100))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    review_id: Mapped[int | None] = mapped_column(AutoBigInt)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]


class TrainingExampleRow(Base):
    __tablename__ = "training_examples"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(SealedText("training_examples.text"))
    label: Mapped[str | None] = mapped_column(String(100))
    answer: Mapped[str | None] = mapped_column(SealedText("training_examples.answer"))
    source: Mapped[str] = mapped_column(String(32))
    review_id: Mapped[int | None] = mapped_column(AutoBigInt)
    created_by: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]


class CsatRow(Base):
    """The customer's rating of a resolved conversation, attributed to who resolved it and to
    what served it. The comment is pseudonymized like every customer text."""

    __tablename__ = "csat"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(SealedText("csat.comment"))
    resolved_by: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str | None] = mapped_column(String(36))
    flow: Mapped[str | None] = mapped_column(String(64))
    article: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime]


class AnalyticsCursorRow(Base):
    """How far a rollup has read the events table (committed with the counts it produced)."""

    __tablename__ = "analytics_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(AutoBigInt)
    updated_at: Mapped[datetime]


class AnalyticsConversationRow(Base):
    """What the rollup remembers about one conversation between batches."""

    __tablename__ = "analytics_conversations"

    conversation_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[datetime]
    awaiting_since: Mapped[datetime | None]
    first_response_done: Mapped[bool] = mapped_column(Boolean)
    intent: Mapped[str | None] = mapped_column(String(100))
    flow: Mapped[str | None] = mapped_column(String(64))
    agent: Mapped[str | None] = mapped_column(String(36))
    handed_off: Mapped[bool] = mapped_column(Boolean)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(16))
    bot_counted: Mapped[bool] = mapped_column(Boolean)
    converted: Mapped[bool] = mapped_column(Boolean)
    variant: Mapped[str | None] = mapped_column(String(128))  # "experiment:variant"


class AnalyticsCountRow(Base):
    """One additive number: ``metric`` of the conversations opened on ``day`` (the company's
    timezone) whose ``dimension`` had ``value`` (``all``/empty for every conversation)."""

    __tablename__ = "analytics_counts"
    __table_args__ = {"sqlite_with_rowid": False}  # noqa: RUF012 - SQLAlchemy's own attribute

    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    amount: Mapped[float]


class KnowledgeGapRow(Base):
    """A group of questions the bot could not answer, with a suggested FAQ entry."""

    __tablename__ = "knowledge_gaps"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    question: Mapped[str] = mapped_column(SealedText("knowledge_gaps.question"))
    suggested_answer: Mapped[str] = mapped_column(SealedText("knowledge_gaps.suggested_answer"))
    examples: Mapped[list[Any]] = mapped_column(SealedJSON("knowledge_gaps.examples"))
    count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    article_id: Mapped[str | None] = mapped_column(String(200))
    reviewed_by: Mapped[str | None] = mapped_column(String(36))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    updated_at: Mapped[datetime]


class InsightSnapshotRow(Base):
    """The insights computed by the insights job for a date range (JSON, pseudonymized)."""

    __tablename__ = "analytics_insights"

    id: Mapped[int] = mapped_column(AutoBigInt, primary_key=True, autoincrement=True)
    start: Mapped[str] = mapped_column(String(10))
    end: Mapped[str] = mapped_column(String(10))
    # Topics and gaps quote customer questions.
    payload: Mapped[dict[str, Any]] = mapped_column(SealedJSON("analytics_insights.payload"))
    created_at: Mapped[datetime]


class ExperimentRow(Base):
    """An A/B experiment: its variants and split (the definition), and how it ended."""

    __tablename__ = "experiments"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    definition: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))  # running | stopped
    started_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]
    winner: Mapped[str | None] = mapped_column(String(64))
    promotion: Mapped[dict[str, Any] | None]


class SealingPendingRow(Base):
    """A sealed column that may still hold values written in clear before it was sealed: the
    service seals them on start, then removes the row (see adapters/store/sealed.py)."""

    __tablename__ = "sealing_pending"

    table_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    column_name: Mapped[str] = mapped_column(String(64), primary_key=True)
