"""Indexes for the lists at national scale (issue 9): the best LR of each remains in a run read from
an index alone (``candidates (run_id, remains_id, log10_lr)``: the remains list, its LR filters and
sort, the dashboard's count of matched remains), and the lists sorted by date received or created.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_candidates_run_remains_lr", "candidates", ["run_id", "remains_id", "log10_lr"])
    op.create_index("ix_remains_created_at", "remains", ["created_at"])
    op.create_index("ix_families_created_at", "families", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_families_created_at", table_name="families")
    op.drop_index("ix_remains_created_at", table_name="remains")
    op.drop_index("ix_candidates_run_remains_lr", table_name="candidates")
