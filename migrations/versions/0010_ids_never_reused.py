"""Ids are never reused on SQLite: every table with a surrogate id gets AUTOINCREMENT.

SQLite otherwise gives the next row the largest id in use plus one, so after /forget deleted
the newest sample of a chat, the next sample took its id and an old message's 👎 rated it
(issue 23). The tables are rebuilt in batch mode (copy, drop, rename) with the keyword; the
sqlite_sequence counter starts at the largest id kept. PostgreSQL's sequences never reuse an
id: nothing to do there.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("users", "chats", "samples", "games", "inline_offers", "duels")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    """Rebuild the SQLite tables with AUTOINCREMENT ids."""
    _rebuild(True)


def downgrade() -> None:
    """Rebuild them without (ids may then be reused again)."""
    _rebuild(False)
