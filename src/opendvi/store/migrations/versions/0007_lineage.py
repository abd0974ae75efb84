"""Lineage markers in the service (issue 12): Y-STR and mtDNA haplotypes with each profile version, the
haplotype databases of an operation, the lineage databases a run used, each system's LR of a candidate.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 15:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lineage_databases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=2), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("database_sha256", sa.String(length=64), nullable=False),
        sa.Column("estimator", sa.String(length=32), nullable=False),
        sa.Column("n_haplotypes", sa.Integer(), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_databases")),
        sa.UniqueConstraint("sha256", name=op.f("uq_lineage_databases_sha256")),
    )
    op.create_table(
        "operation_lineage",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("system", sa.String(length=2), nullable=False),
        sa.Column("lineage_database_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"], ondelete="CASCADE",
                                name=op.f("fk_operation_lineage_operation_id_operations")),
        sa.ForeignKeyConstraint(["lineage_database_id"], ["lineage_databases.id"],
                                name=op.f("fk_operation_lineage_lineage_database_id_lineage_databases")),
        sa.PrimaryKeyConstraint("operation_id", "system", name=op.f("pk_operation_lineage")),
    )
    with op.batch_alter_table("profiles") as batch:
        batch.add_column(sa.Column("haplotypes", sa.JSON(), nullable=True))
    with op.batch_alter_table("matching_runs") as batch:
        batch.add_column(sa.Column("lineage_databases", sa.JSON(), nullable=True))
    with op.batch_alter_table("candidates") as batch:
        batch.add_column(sa.Column("systems", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("candidates") as batch:
        batch.drop_column("systems")
    with op.batch_alter_table("matching_runs") as batch:
        batch.drop_column("lineage_databases")
    with op.batch_alter_table("profiles") as batch:
        batch.drop_column("haplotypes")
    op.drop_table("operation_lineage")
    op.drop_table("lineage_databases")
