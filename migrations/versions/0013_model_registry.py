"""The model registry: model_versions, every version of a model with its bundle in the row.

Replicas poll it for their models' champions and challengers and load a new one without a
restart; the bundle itself (a tar of config.json, vocab.json, weights.h5) is stored in the
row, so replicas on other hosts need no shared volume. At most one champion and one
challenger per model name: a partial unique index, on SQLite and PostgreSQL alike. A model
with no row keeps being served from MODEL_DIR. Ids never reused on SQLite (AUTOINCREMENT, as
0010). Empty at first: nothing existing changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "role IN ('champion', 'challenger')"


def upgrade() -> None:
    """Create the table, its (name, version) key and the one-live-version-per-role index."""
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("parent_version", sa.String(length=64), nullable=True),
        sa.Column("replaces", sa.String(length=64), nullable=True),
        sa.Column("lineage", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("archive_sha256", sa.String(length=64), nullable=False),
        sa.Column("archive_size", sa.Integer(), nullable=False),
        sa.Column("archive", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "role IN ('champion', 'challenger', 'retired', 'rejected')",
            name=op.f("ck_model_versions_role_known"),
        ),
        sa.CheckConstraint("archive_size >= 0", name=op.f("ck_model_versions_archive_size_nonnegative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "uq_model_versions_name_live_role",
        "model_versions",
        ["name", "role"],
        unique=True,
        sqlite_where=sa.text(_LIVE),
        postgresql_where=sa.text(_LIVE),
    )


def downgrade() -> None:
    """Drop the table: every published version and its bundle is lost; replicas serve MODEL_DIR."""
    op.drop_index("uq_model_versions_name_live_role", table_name="model_versions")
    op.drop_table("model_versions")
