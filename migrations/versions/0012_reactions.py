"""Reactions as ratings (issue 25): ratings.source and anonymous_reactions.

- ratings.source ('button' or 'reaction'): what last changed a user's rating, so removing a
  reaction withdraws only a rating that reaction gave. Existing ratings came from buttons.
- anonymous_reactions: a sample's anonymous reactions as Telegram last counted them (likes,
  dislikes), which belong to no user and so are not ratings.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (existing ratings: buttons) and the table (empty)."""
    # batch_alter_table: a plain ALTER on PostgreSQL, a copy-and-move on SQLite.
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(sa.Column("source", sa.String(length=8), server_default="button", nullable=False))
        batch.create_check_constraint(
            op.f("ck_ratings_source_known"), sa.text("source IN ('button', 'reaction')")
        )
    op.create_table(
        "anonymous_reactions",
        sa.Column("sample_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("likes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("dislikes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "likes >= 0 AND dislikes >= 0", name=op.f("ck_anonymous_reactions_counts_nonnegative")
        ),
        sa.ForeignKeyConstraint(
            ["sample_id"],
            ["samples.id"],
            name=op.f("fk_anonymous_reactions_sample_id_samples"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sample_id", name=op.f("pk_anonymous_reactions")),
    )


def downgrade() -> None:
    """Drop both: reaction ratings stay as plain ratings; anonymous counts are lost."""
    op.drop_table("anonymous_reactions")
    with op.batch_alter_table("ratings") as batch:
        batch.drop_constraint(op.f("ck_ratings_source_known"), type_="check")
        batch.drop_column("source")
