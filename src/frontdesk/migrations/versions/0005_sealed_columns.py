"""Encryption at rest: message texts, notes, ratings' comments, reviews, knowledge gaps, training
examples, approved answers, handoff summaries, conversation state and insight snapshots are
sealed from now on. The values written in clear before are sealed by the service on its next
start (it needs the keys, which a migration does not hold): this migration lists the columns in
``sealing_pending``, and the service removes each one once it is sealed. A downgrade does not
open the sealed values again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEALED = (
    ("conversations", "state"),
    ("messages", "text"),
    ("handoffs", "summary"),
    ("notes", "text"),
    ("reviews", "correction"),
    ("approved_answers", "question"),
    ("approved_answers", "answer"),
    ("training_examples", "text"),
    ("training_examples", "answer"),
    ("csat", "comment"),
    ("knowledge_gaps", "question"),
    ("knowledge_gaps", "suggested_answer"),
    ("knowledge_gaps", "examples"),
    ("analytics_insights", "payload"),
)


def upgrade() -> None:
    pending = op.create_table(
        "sealing_pending",
        sa.Column("table_name", sa.String(64), primary_key=True),
        sa.Column("column_name", sa.String(64), primary_key=True),
    )
    op.bulk_insert(pending, [{"table_name": t, "column_name": c} for t, c in SEALED])


def downgrade() -> None:
    op.drop_table("sealing_pending")
