"""Satisfaction and insight: CSAT, the rollup's cursor, state and count tables, knowledge gaps,
insight snapshots and A/B experiments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "csat",
        sa.Column(
            "conversation_id", sa.String(36), sa.ForeignKey("conversations.id"), primary_key=True
        ),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("resolved_by", sa.String(16), nullable=False),
        sa.Column("agent_id", sa.String(36)),
        sa.Column("flow", sa.String(64)),
        sa.Column("article", sa.String(200)),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "analytics_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_event_id", BIGID, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "analytics_conversations",
        sa.Column("conversation_id", sa.String(36), primary_key=True),
        sa.Column("day", sa.String(10), nullable=False, index=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("awaiting_since", TS),
        sa.Column("first_response_done", sa.Boolean(), nullable=False),
        sa.Column("intent", sa.String(100)),
        sa.Column("flow", sa.String(64)),
        sa.Column("agent", sa.String(36)),
        sa.Column("handed_off", sa.Boolean(), nullable=False),
        sa.Column("resolved_at", TS),
        sa.Column("resolved_by", sa.String(16)),
        sa.Column("bot_counted", sa.Boolean(), nullable=False),
        sa.Column("converted", sa.Boolean(), nullable=False),
        sa.Column("variant", sa.String(128)),
    )
    # Read by dimension and range of days: the key starts with them, and on SQLite the rows
    # are stored in key order (WITHOUT ROWID).
    op.create_table(
        "analytics_counts",
        sa.Column("dimension", sa.String(16), primary_key=True),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("value", sa.String(128), primary_key=True),
        sa.Column("metric", sa.String(40), primary_key=True),
        sa.Column("amount", sa.Float(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "knowledge_gaps",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("suggested_answer", sa.Text(), nullable=False),
        sa.Column("examples", sa.JSON(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("article_id", sa.String(200)),
        sa.Column("reviewed_by", sa.String(36)),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("stopped_at", TS),
        sa.Column("winner", sa.String(64)),
        sa.Column("promotion", sa.JSON()),
    )
    op.create_table(
        "analytics_insights",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("start", sa.String(10), nullable=False),
        sa.Column("end", sa.String(10), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "analytics_insights",
        "experiments",
        "knowledge_gaps",
        "analytics_counts",
        "analytics_conversations",
        "analytics_cursor",
        "csat",
    ):
        op.drop_table(table)
