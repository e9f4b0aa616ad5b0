"""Group fun: novelty columns on samples, "Real or dream?" games and guesses, inline offers.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Two nullable sample columns (old samples: not checked) and three new tables."""
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("longest_copied", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("new_ngram_share", sa.Float(), nullable=True))
    op.create_table(
        "games",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=False),
        sa.Column("seed", sa.Text(), nullable=False),
        sa.Column("real_text", sa.Text(), nullable=False),
        sa.Column("fake_text", sa.Text(), nullable=False),
        sa.Column("real_is", sa.String(length=1), nullable=False),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=True),
        sa.Column("lang", sa.String(length=8), server_default="en", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.CheckConstraint("real_is IN ('A', 'B')", name=op.f("ck_games_real_is_a_or_b")),
        sa.CheckConstraint(
            "temperature >= 0.0 AND temperature <= 2.0", name=op.f("ck_games_temperature_range")
        ),
        sa.ForeignKeyConstraint(
            ["chat_id"], ["chats.id"], name=op.f("fk_games_chat_id_chats"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["started_by"], ["users.id"], name=op.f("fk_games_started_by_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_games")),
    )
    op.create_index("ix_games_chat_id_revealed_at", "games", ["chat_id", "revealed_at"])
    op.create_index("ix_games_revealed_at_deadline", "games", ["revealed_at", "deadline"])
    op.create_table(
        "game_guesses",
        sa.Column("game_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("choice", sa.String(length=1), nullable=False),
        sa.Column("guessed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("choice IN ('A', 'B')", name=op.f("ck_game_guesses_choice_a_or_b")),
        sa.ForeignKeyConstraint(
            ["game_id"], ["games.id"], name=op.f("fk_game_guesses_game_id_games"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_game_guesses_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("game_id", "user_id", name=op.f("pk_game_guesses")),
    )
    op.create_index("ix_game_guesses_user_id", "game_guesses", ["user_id"])
    op.create_table(
        "inline_offers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Text(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("chosen", sa.Integer(), nullable=True),
        sa.Column("sample_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_inline_offers_user_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_inline_offers_sample_id_samples"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inline_offers")),
    )
    op.create_index("ix_inline_offers_user_id_created_at", "inline_offers", ["user_id", "created_at"])


def downgrade() -> None:
    """Drop the tables and columns again (games, guesses and offers are lost)."""
    op.drop_index("ix_inline_offers_user_id_created_at", table_name="inline_offers")
    op.drop_table("inline_offers")
    op.drop_index("ix_game_guesses_user_id", table_name="game_guesses")
    op.drop_table("game_guesses")
    op.drop_index("ix_games_revealed_at_deadline", table_name="games")
    op.drop_index("ix_games_chat_id_revealed_at", table_name="games")
    op.drop_table("games")
    with op.batch_alter_table("samples") as batch:
        batch.drop_column("new_ngram_share")
        batch.drop_column("longest_copied")
