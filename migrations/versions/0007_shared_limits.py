"""Replicas: per-user limits in the database (request_slots, limit_charges).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create both tables (empty: limits are transient, every user starts with a free window)."""
    op.create_table(
        "request_slots",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_request_slots")),
    )
    op.create_table(
        "limit_charges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("charged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.CheckConstraint("slots > 0", name=op.f("ck_limit_charges_slots_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_charges")),
    )
    op.create_index("ix_limit_charges_user_id_charged_at", "limit_charges", ["user_id", "charged_at"])


def downgrade() -> None:
    """Drop them (nothing of value is lost: at worst a user gets a fresh minute)."""
    op.drop_index("ix_limit_charges_user_id_charged_at", table_name="limit_charges")
    op.drop_table("limit_charges")
    op.drop_table("request_slots")
