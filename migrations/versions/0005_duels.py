"""Duels: two arms' continuations of one seed, and the votes on them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _side(side: str) -> list[sa.Column[object]]:
    return [
        sa.Column(f"model_{side}", sa.String(length=128), nullable=False),
        sa.Column(f"version_{side}", sa.String(length=64), nullable=False),
        sa.Column(f"temperature_{side}", sa.Float(), nullable=False),
        sa.Column(f"rng_seed_{side}", sa.BigInteger(), nullable=False),
        sa.Column(f"text_{side}", sa.Text(), nullable=False),
    ]


def upgrade() -> None:
    """Create duels and duel_votes (existing tables are untouched)."""
    op.create_table(
        "duels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("private", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("seed", sa.Text(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        *_side("a"),
        *_side("b"),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "temperature_a >= 0.0 AND temperature_a <= 2.0", name=op.f("ck_duels_temperature_a_range")
        ),
        sa.CheckConstraint(
            "temperature_b >= 0.0 AND temperature_b <= 2.0", name=op.f("ck_duels_temperature_b_range")
        ),
        sa.CheckConstraint("length >= 1 AND length <= 4000", name=op.f("ck_duels_length_range")),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_duels_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_duels_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_duels")),
    )
    op.create_index(
        "ix_duels_chat_id_telegram_message_id", "duels", ["chat_id", "telegram_message_id"], unique=False
    )
    op.create_index("ix_duels_update_id", "duels", ["update_id"], unique=False)
    op.create_table(
        "duel_votes",
        sa.Column("duel_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("counted", sa.Boolean(), server_default=sa.false(), nullable=False),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint("outcome IN ('a', 'b', 'tie', 'bad')", name=op.f("ck_duel_votes_outcome_known")),
        sa.ForeignKeyConstraint(
            ["duel_id"], ["duels.id"], name=op.f("fk_duel_votes_duel_id_duels"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_duel_votes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("duel_id", "user_id", name=op.f("pk_duel_votes")),
    )
    op.create_index("ix_duel_votes_user_id_created_at", "duel_votes", ["user_id", "created_at"], unique=False)


def downgrade() -> None:
    """Drop them (every duel and vote is lost)."""
    op.drop_index("ix_duel_votes_user_id_created_at", table_name="duel_votes")
    op.drop_table("duel_votes")
    op.drop_index("ix_duels_update_id", table_name="duels")
    op.drop_index("ix_duels_chat_id_telegram_message_id", table_name="duels")
    op.drop_table("duels")
