"""Human oversight: users, sessions, the audit log, handoffs, notes, assignment, reviews,
approved answers and curated training examples.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.String(36), index=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.String(36), index=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "handoffs",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(36), nullable=False, index=True),
        sa.Column("reason", sa.String(120), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("taken_by", sa.String(36)),
        sa.Column("taken_at", TS),
        sa.Column("closed_at", TS),
    )
    op.create_table(
        "notes",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(36), nullable=False, index=True),
        sa.Column("author_id", sa.String(36), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "reviews",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False, index=True),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("reviewer_id", sa.String(36), nullable=False),
        sa.Column("rating", sa.String(16), nullable=False),
        sa.Column("correction", sa.Text()),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "approved_answers",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, index=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("embedder", sa.String(100), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("review_id", BIGID),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("key", "version", name="uq_approved_answers_key_version"),
    )
    op.create_table(
        "training_examples",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("label", sa.String(100)),
        sa.Column("answer", sa.Text()),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("review_id", BIGID),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("assigned_to", sa.String(36)))
        batch.create_index("ix_conversations_assigned_to", ["assigned_to"])


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_assigned_to")
        batch.drop_column("assigned_to")
    for table in (
        "training_examples",
        "approved_answers",
        "reviews",
        "notes",
        "handoffs",
        "audit_log",
        "sessions",
        "users",
    ):
        op.drop_table(table)
