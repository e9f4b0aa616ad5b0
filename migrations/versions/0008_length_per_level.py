"""A length per model level: users.length_char / length_word (and chats'), replacing
sample_length, so a length chosen on a char model is never read as words.

The old value goes to the level whose range holds it (characters when both do); a value that
neither level allows becomes NULL (the level's default), as no user could choose it today.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# core.limits.LENGTH_BOUNDS as of this revision (a migration must not change when the code does).
_CHAR = (20, 2000)
_WORD = (5, 400)
_TABLES = ("users", "chats")


def _range(column: str) -> sa.TextClause:
    return sa.text(f"{column} IS NULL OR ({column} >= 1 AND {column} <= 4000)")


def upgrade() -> None:
    """Add both columns, copy the old length into its level, drop sample_length."""
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("length_char", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("length_word", sa.Integer(), nullable=True))
        op.execute(
            sa.text(
                f"UPDATE {table} SET length_char = sample_length "
                f"WHERE sample_length BETWEEN {_CHAR[0]} AND {_CHAR[1]}"
            )
        )
        op.execute(
            sa.text(
                f"UPDATE {table} SET length_word = sample_length WHERE length_char IS NULL "
                f"AND sample_length BETWEEN {_WORD[0]} AND {_WORD[1]}"
            )
        )
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_sample_length_range"), type_="check")
            batch.drop_column("sample_length")
            batch.create_check_constraint(op.f(f"ck_{table}_length_char_range"), _range("length_char"))
            batch.create_check_constraint(op.f(f"ck_{table}_length_word_range"), _range("length_word"))


def downgrade() -> None:
    """One sample_length again: the char length where set, else the word length."""
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("sample_length", sa.Integer(), nullable=True))
        op.execute(sa.text(f"UPDATE {table} SET sample_length = COALESCE(length_char, length_word)"))
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"ck_{table}_length_char_range"), type_="check")
            batch.drop_constraint(op.f(f"ck_{table}_length_word_range"), type_="check")
            batch.drop_column("length_char")
            batch.drop_column("length_word")
            batch.create_check_constraint(op.f(f"ck_{table}_sample_length_range"), _range("sample_length"))
