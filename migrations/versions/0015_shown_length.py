"""Shown lengths: samples.shown_length holds the count shown under a sample.

`length` is the length asked for (the user's setting, reused by 🔁); what is shown is the
finished text's count: its characters (char models) or its words (word models, which only the
generated token ids give: segmenting the text again finds another count one time in three).
A sample shown again (/rate, the outbox, a redelivery) showed `length` for word models, so the
same text said "100 words" there and "99 words" under its first message. NULL for samples
stored before, which keep showing `length`. Plain ADD COLUMN (no batch rebuild on SQLite,
which would drop the AUTOINCREMENT of 0010).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the column (NULL: stored before it existed)."""
    op.add_column("samples", sa.Column("shown_length", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop it: samples are shown with the length asked for again."""
    op.drop_column("samples", "shown_length")
