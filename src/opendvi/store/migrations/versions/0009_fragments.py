"""Fragments of one person: links between remains per run, groups with their state and members.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fragment_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("remains_a_id", sa.Integer(), nullable=False),
        sa.Column("remains_b_id", sa.Integer(), nullable=False),
        sa.Column("log10_lr", sa.Float(), nullable=True),
        sa.Column("linked", sa.Boolean(), nullable=False),
        sa.Column("by_system", sa.JSON(), nullable=True),
        sa.Column("mismatches", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["matching_runs.id"], name=op.f("fk_fragment_links_run_id_matching_runs"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["remains_a_id"], ["remains.id"], name=op.f("fk_fragment_links_remains_a_id_remains")),
        sa.ForeignKeyConstraint(["remains_b_id"], ["remains.id"], name=op.f("fk_fragment_links_remains_b_id_remains")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fragment_links")),
        sa.UniqueConstraint("run_id", "remains_a_id", "remains_b_id", name="uq_fragment_links_run_pair"),
    )
    op.create_index("ix_fragment_links_run_a", "fragment_links", ["run_id", "remains_a_id"])
    op.create_index("ix_fragment_links_run_b", "fragment_links", ["run_id", "remains_b_id"])
    op.create_table(
        "fragment_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposed_by_id", sa.Integer(), nullable=True),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("proposal_note", sa.Text(), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["matching_runs.id"], name=op.f("fk_fragment_groups_run_id_matching_runs"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["proposed_by_id"], ["users.id"], name=op.f("fk_fragment_groups_proposed_by_id_users")),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], name=op.f("fk_fragment_groups_decided_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fragment_groups")),
    )
    op.create_index("ix_fragment_groups_state_id", "fragment_groups", ["state", "id"])
    op.create_table(
        "fragment_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("remains_id", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["fragment_groups.id"],
                                name=op.f("fk_fragment_group_members_group_id_fragment_groups"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["remains_id"], ["remains.id"],
                                name=op.f("fk_fragment_group_members_remains_id_remains")),
        sa.PrimaryKeyConstraint("group_id", "remains_id", name=op.f("pk_fragment_group_members")),
    )
    op.create_index("ix_fragment_group_members_remains", "fragment_group_members", ["remains_id"])
    op.create_index("uq_fragment_group_members_active_remains", "fragment_group_members", ["remains_id"],
                    unique=True, sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))


def downgrade() -> None:
    op.drop_index("uq_fragment_group_members_active_remains", table_name="fragment_group_members")
    op.drop_index("ix_fragment_group_members_remains", table_name="fragment_group_members")
    op.drop_table("fragment_group_members")
    op.drop_index("ix_fragment_groups_state_id", table_name="fragment_groups")
    op.drop_table("fragment_groups")
    op.drop_index("ix_fragment_links_run_b", table_name="fragment_links")
    op.drop_index("ix_fragment_links_run_a", table_name="fragment_links")
    op.drop_table("fragment_links")
