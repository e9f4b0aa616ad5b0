"""Users' temperature and length may be unset (NULL: not chosen, so a group's or the model's
default applies); samples.top_k and top_p, which the bot never filled, are dropped.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_TEMPERATURE, _OLD_LENGTH = 0.5, 400  # the defaults stored until now


def upgrade() -> None:
    """Allow NULL, and set it where the stored value is the old default (nobody chose it, or
    chose what the default gives them anyway)."""
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_temperature_range"), type_="check")
        batch.drop_constraint(op.f("ck_users_sample_length_range"), type_="check")
        batch.alter_column("temperature", existing_type=sa.Float(), nullable=True, server_default=None)
        batch.alter_column("sample_length", existing_type=sa.Integer(), nullable=True, server_default=None)
        batch.create_check_constraint(
            op.f("ck_users_temperature_range"),
            sa.text("temperature IS NULL OR (temperature >= 0.0 AND temperature <= 2.0)"),
        )
        batch.create_check_constraint(
            op.f("ck_users_sample_length_range"),
            sa.text("sample_length IS NULL OR (sample_length >= 1 AND sample_length <= 4000)"),
        )
    with op.batch_alter_table("samples") as batch:
        batch.drop_constraint(op.f("ck_samples_top_k_positive"), type_="check")
        batch.drop_constraint(op.f("ck_samples_top_p_range"), type_="check")
        batch.drop_column("top_k")
        batch.drop_column("top_p")
    op.execute(sa.text(f"UPDATE users SET temperature = NULL WHERE temperature = {_OLD_TEMPERATURE}"))
    op.execute(sa.text(f"UPDATE users SET sample_length = NULL WHERE sample_length = {_OLD_LENGTH}"))


def downgrade() -> None:
    """Back to NOT NULL with the old defaults filled in; top_k and top_p come back empty."""
    with op.batch_alter_table("samples") as batch:
        batch.add_column(sa.Column("top_k", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("top_p", sa.Float(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_samples_top_k_positive"), sa.text("top_k IS NULL OR top_k > 0")
        )
        batch.create_check_constraint(
            op.f("ck_samples_top_p_range"), sa.text("top_p IS NULL OR (top_p > 0 AND top_p <= 1)")
        )
    op.execute(sa.text(f"UPDATE users SET temperature = {_OLD_TEMPERATURE} WHERE temperature IS NULL"))
    op.execute(sa.text(f"UPDATE users SET sample_length = {_OLD_LENGTH} WHERE sample_length IS NULL"))
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_temperature_range"), type_="check")
        batch.drop_constraint(op.f("ck_users_sample_length_range"), type_="check")
        batch.alter_column(
            "temperature", existing_type=sa.Float(), nullable=False, server_default=str(_OLD_TEMPERATURE)
        )
        batch.alter_column(
            "sample_length", existing_type=sa.Integer(), nullable=False, server_default=str(_OLD_LENGTH)
        )
        batch.create_check_constraint(
            op.f("ck_users_temperature_range"), sa.text("temperature >= 0.0 AND temperature <= 2.0")
        )
        batch.create_check_constraint(
            op.f("ck_users_sample_length_range"), sa.text("sample_length >= 1 AND sample_length <= 4000")
        )
