"""The GLR of a candidate that the run's best joint assignment calls.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("log10_glr", sa.Float(), nullable=True))
        batch.add_column(sa.Column("glr_bound", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("glr_bound")
        batch.drop_column("log10_glr")
