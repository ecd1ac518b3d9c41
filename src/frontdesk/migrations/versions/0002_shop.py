"""The store's own data: customers (sealed profiles), products, orders, executed actions, leads;
and the vault column of pseudonyms (the sealed raw value behind a token).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "shop_customers",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("email_digest", sa.String(64), nullable=False, index=True),
        sa.Column("name_zip_digest", sa.String(64), nullable=False, index=True),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "shop_products",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("variants", sa.JSON(), nullable=False),
    )
    op.create_table(
        "shop_orders",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("customer_id", sa.String(64), nullable=False, index=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("fulfillments", sa.JSON(), nullable=False),
        sa.Column("payments", sa.JSON(), nullable=False),
        sa.Column("address", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "shop_actions",
        sa.Column("id", BIGID, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("conversation_id", sa.String(36), index=True),
        sa.Column("customer_id", sa.String(64), index=True),
        sa.Column("tool", sa.String(64), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("conversation_id", sa.String(36), index=True),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("email_digest", sa.String(64), index=True),
        sa.Column("interest", sa.String(300), nullable=False),
        sa.Column("budget", sa.String(32)),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    with op.batch_alter_table("pseudonyms") as batch:
        batch.add_column(sa.Column("sealed", sa.Text()))


def downgrade() -> None:
    with op.batch_alter_table("pseudonyms") as batch:
        batch.drop_column("sealed")
    for table in ("leads", "shop_actions", "shop_orders", "shop_products", "shop_customers"):
        op.drop_table(table)
