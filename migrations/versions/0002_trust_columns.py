"""Trust: samples.shared, samples.send_uncertain, samples.inline_message_id, outbox index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the three columns (existing samples: private, not uncertain) and the outbox index."""
    # batch_alter_table: a plain ALTER on PostgreSQL, a copy-and-move on SQLite.
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("send_uncertain", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("inline_message_id", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("shared", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.create_index("ix_samples_delivered_created_at", ["delivered", "created_at"])


def downgrade() -> None:
    """Drop them again (sharing choices are lost)."""
    with op.batch_alter_table("samples") as batch:
        batch.drop_index("ix_samples_delivered_created_at")
        batch.drop_column("shared")
        batch.drop_column("inline_message_id")
        batch.drop_column("send_uncertain")
