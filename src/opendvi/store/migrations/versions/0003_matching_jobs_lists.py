"""Matching runs as background jobs (status, lease, heartbeat, progress), indexes for paged lists.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 08:00:00

See ``docs/decisions/0006-matching-jobs.md``. Existing runs were run in the
request and are finished (``server_default``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_INDEXES = [
    ("matching_runs", "ix_matching_runs_status_id", ["status", "id"]),
    ("candidates", "ix_candidates_run_remains_rank", ["run_id", "remains_id", "rank"]),
    ("candidates", "ix_candidates_run_lr", ["run_id", "log10_lr"]),
    ("candidates", "ix_candidates_remains_run", ["remains_id", "run_id"]),
    ("identifications", "ix_identifications_state_id", ["state", "id"]),
    ("audit_log", "ix_audit_log_action_seq", ["action", "seq"]),
    ("audit_log", "ix_audit_log_object", ["object_type", "object_id", "seq"]),
    ("audit_log", "ix_audit_log_username_seq", ["username", "seq"]),
    ("remains", "ix_remains_operation_barcode", ["operation_id", "barcode"]),
]


def upgrade() -> None:
    with op.batch_alter_table("matching_runs", schema=None) as batch_op:
        batch_op.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="finished", nullable=False))
        batch_op.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("progress", sa.Float(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("phase", sa.String(length=64), server_default="", nullable=False))
        batch_op.add_column(sa.Column("worker", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("cancel_requested", sa.Boolean(), server_default=sa.text("false"),
                                      nullable=False))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("timings", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("counts", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("skipped", sa.JSON(), nullable=True))
    # existing runs were finished in the request
    op.execute("UPDATE matching_runs SET progress = 1, phase = 'finished' WHERE finished_at IS NOT NULL")
    for table, name, cols in _INDEXES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(name, cols, unique=False)


def downgrade() -> None:
    for table, name, _cols in reversed(_INDEXES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(name)
    op.execute("DELETE FROM candidates WHERE run_id IN (SELECT id FROM matching_runs WHERE status <> 'finished')")
    op.execute("DELETE FROM matching_runs WHERE status <> 'finished'")
    with op.batch_alter_table("matching_runs", schema=None) as batch_op:
        for col in ("skipped", "counts", "timings", "error", "cancel_requested", "attempts", "lease_expires_at",
                    "heartbeat_at", "worker", "phase", "progress", "queued_at", "status"):
            batch_op.drop_column(col)
        batch_op.alter_column("started_at", existing_type=sa.DateTime(timezone=True), nullable=False)
