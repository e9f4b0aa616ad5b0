"""Initial schema: users, chats, samples, ratings, processed updates.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamp(name: str) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    """Create the four tables with their constraints and indexes."""
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("display_name", sa.String(length=256), nullable=True),
        sa.Column("language_code", sa.String(length=16), nullable=True),
        sa.Column("temperature", sa.Float(), server_default="0.5", nullable=False),
        sa.Column("sample_length", sa.Integer(), server_default="400", nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "temperature >= 0.0 AND temperature <= 2.0", name=op.f("ck_users_temperature_range")
        ),
        sa.CheckConstraint(
            "sample_length >= 1 AND sample_length <= 4000",
            name=op.f("ck_users_sample_length_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_users_telegram_id")),
    )
    op.create_table(
        "chats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=256), nullable=True),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("sample_length", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        sa.CheckConstraint(
            "type IN ('private', 'group', 'supergroup', 'channel')",
            name=op.f("ck_chats_type_known"),
        ),
        sa.CheckConstraint(
            "temperature IS NULL OR (temperature >= 0.0 AND temperature <= 2.0)",
            name=op.f("ck_chats_temperature_range"),
        ),
        sa.CheckConstraint(
            "sample_length IS NULL OR (sample_length >= 1 AND sample_length <= 4000)",
            name=op.f("ck_chats_sample_length_range"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_chats_telegram_id")),
    )
    op.create_table(
        "samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=True),
        sa.Column("top_p", sa.Float(), nullable=True),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("rng_seed", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("generation_ms", sa.Integer(), nullable=False),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("update_id", sa.BigInteger(), nullable=True),
        sa.Column("delivered", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("up_votes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("down_votes", sa.Integer(), server_default="0", nullable=False),
        _timestamp("created_at"),
        sa.CheckConstraint(
            "temperature >= 0.0 AND temperature <= 2.0", name=op.f("ck_samples_temperature_range")
        ),
        sa.CheckConstraint("length >= 1 AND length <= 4000", name=op.f("ck_samples_length_range")),
        sa.CheckConstraint("top_k IS NULL OR top_k > 0", name=op.f("ck_samples_top_k_positive")),
        sa.CheckConstraint(
            "top_p IS NULL OR (top_p > 0 AND top_p <= 1)", name=op.f("ck_samples_top_p_range")
        ),
        sa.CheckConstraint("generation_ms >= 0", name=op.f("ck_samples_generation_ms_nonnegative")),
        sa.CheckConstraint("up_votes >= 0 AND down_votes >= 0", name=op.f("ck_samples_votes_nonnegative")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_samples_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_samples_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_samples")),
    )
    op.create_index("ix_samples_user_id_created_at", "samples", ["user_id", "created_at"])
    op.create_index("ix_samples_chat_id_created_at", "samples", ["chat_id", "created_at"])
    op.create_index("ix_samples_model_name_created_at", "samples", ["model_name", "created_at"])
    op.create_index("ix_samples_created_at", "samples", ["created_at"])
    op.create_index("ix_samples_update_id", "samples", ["update_id"])
    op.create_table(
        "ratings",
        sa.Column("sample_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        _timestamp("rated_at"),
        sa.CheckConstraint("score IN (-1, 1)", name=op.f("ck_ratings_score_up_or_down")),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_ratings_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_ratings_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("sample_id", "user_id", name=op.f("pk_ratings")),
    )
    op.create_index("ix_ratings_user_id", "ratings", ["user_id"])
    op.create_table(
        "processed_updates",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        _timestamp("handled_at"),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_processed_updates")),
    )
    op.create_index("ix_processed_updates_handled_at", "processed_updates", ["handled_at"])


def downgrade() -> None:
    """Drop everything, children first."""
    op.drop_index("ix_processed_updates_handled_at", table_name="processed_updates")
    op.drop_table("processed_updates")
    op.drop_index("ix_ratings_user_id", table_name="ratings")
    op.drop_table("ratings")
    op.drop_index("ix_samples_update_id", table_name="samples")
    op.drop_index("ix_samples_created_at", table_name="samples")
    op.drop_index("ix_samples_model_name_created_at", table_name="samples")
    op.drop_index("ix_samples_chat_id_created_at", table_name="samples")
    op.drop_index("ix_samples_user_id_created_at", table_name="samples")
    op.drop_table("samples")
    op.drop_table("chats")
    op.drop_table("users")
