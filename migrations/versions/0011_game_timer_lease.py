"""One replica drives each game: games.timer_replica and games.timer_until.

Every replica ran its own game timer, so with three replicas a group got three countdowns
(~36 edits a minute, above Telegram's ~20 per group) and three reveal attempts (issue 24,
item 9). A game is now driven by the replica named here until its lease runs out; another
replica takes it over only then (the driver died). Plain ADD COLUMN (nullable, no
constraint): on SQLite no batch rebuild, which would drop the AUTOINCREMENT of 0010.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the driver and its lease (open games start undriven: the first timer takes them)."""
    op.add_column("games", sa.Column("timer_replica", sa.String(200), nullable=True))
    op.add_column("games", sa.Column("timer_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them (every replica's timer then scans every game again). Plain DROP COLUMN
    (SQLite 3.35+) keeps the table and its AUTOINCREMENT."""
    op.drop_column("games", "timer_until")
    op.drop_column("games", "timer_replica")
