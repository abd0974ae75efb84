"""The best candidate of each remains in a run, in LR order (issue 9, lists while a national run is in
progress): a partial index of the rank-1 candidates ``candidates (run_id, log10_lr, remains_id, rank)
WHERE rank = 1``. The remains list sorted by best LR walks it and stops at the page (no aggregate over
the run's 300,000 candidates); the list's LR filters and the dashboard's count of matched remains read a
range of it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_candidates_run_best", "candidates", ["run_id", "log10_lr", "remains_id", "rank"],
                    sqlite_where=sa.text("rank = 1"), postgresql_where=sa.text("rank = 1"))


def downgrade() -> None:
    op.drop_index("ix_candidates_run_best", table_name="candidates")
