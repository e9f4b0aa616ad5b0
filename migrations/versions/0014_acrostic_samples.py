"""Acrostic poems: samples.acrostic holds a poem's head characters and line length.

An acrostic's seed is only a newline (where a poem starts in the corpus), so without this a
stored acrostic could not be drawn again with 🔁 nor shown with its heads when the outbox
resends it. NULL for every other sample. Plain ADD COLUMN: no batch rebuild on SQLite (which
would drop the AUTOINCREMENT of 0010).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (NULL: not an acrostic)."""
    op.add_column("samples", sa.Column("acrostic", sa.String(40), nullable=True))


def downgrade() -> None:
    """Drop it: acrostics stay as samples, no longer redrawn as acrostics."""
    op.drop_column("samples", "acrostic")
