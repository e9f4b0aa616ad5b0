"""Exact forgetting: other people's games and duels outlive their starter, and a seed copied
from another user's sample remembers whose text it is.

- games.started_by and duels.user_id become nullable, ON DELETE SET NULL: when Alice forgets,
  the games she started keep Bob's guesses and her duels keep Bob's vote (issue 24, item 6).
- samples.seed_user_id and duels.seed_user_id (nullable, SET NULL): the user whose text the seed
  is, when it was copied from their sample (🔁 on a shared sample, 🆚); /forget redacts it there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNERS = (("games", "started_by"), ("duels", "user_id"))


def _owner_fk(table: str, column: str, ondelete: str) -> None:
    with op.batch_alter_table(table) as batch:
        batch.drop_constraint(op.f(f"fk_{table}_{column}_users"), type_="foreignkey")
        batch.alter_column(column, existing_type=sa.Integer(), nullable=ondelete == "SET NULL")
        batch.create_foreign_key(
            op.f(f"fk_{table}_{column}_users"), "users", [column], ["id"], ondelete=ondelete
        )


def upgrade() -> None:
    """Owners that may be forgotten, and whose seed a copy carries."""
    for table, column in _OWNERS:
        _owner_fk(table, column, "SET NULL")
    for table in ("samples", "duels"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("seed_user_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(
                op.f(f"fk_{table}_seed_user_id_users"), "users", ["seed_user_id"], ["id"], ondelete="SET NULL"
            )


def downgrade() -> None:
    """Back to 0008 (games and duels of forgotten users are deleted, as they were then)."""
    for table in ("samples", "duels"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(op.f(f"fk_{table}_seed_user_id_users"), type_="foreignkey")
            batch.drop_column("seed_user_id")
    for table, column in _OWNERS:
        op.execute(sa.text(f"DELETE FROM {table} WHERE {column} IS NULL"))
        _owner_fk(table, column, "CASCADE")
