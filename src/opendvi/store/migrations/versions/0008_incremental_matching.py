"""Incremental matching (issue 9): what a run recomputed and why, and the inputs it matched.

``matching_runs.recomputed``: the run's plan (full or incremental, counts, reasons), small, shown by the
API and the operation page. ``matching_run_inputs``: one row per run, the fingerprints of its inputs
(frequency database, mutation models, theta, parameters, each remains' profile version and data,
each family's pedigree and references) and each remains' kept list, read only by the next run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("matching_runs") as batch:
        batch.add_column(sa.Column("recomputed", sa.JSON(), nullable=True))
    op.create_table(
        "matching_run_inputs",
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("matching_runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("inputs", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("matching_run_inputs")
    with op.batch_alter_table("matching_runs") as batch:
        batch.drop_column("recomputed")
