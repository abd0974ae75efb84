"""Interface language per user, donors' date of birth, the liaison's notification records.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 09:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
    with op.batch_alter_table("donor_details") as batch:
        batch.add_column(sa.Column("date_of_birth", sa.Date(), nullable=True))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("identification_id", sa.Integer(), nullable=False),
        sa.Column("donor_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("notified_on", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["identification_id"], ["identifications.id"],
                                name=op.f("fk_notifications_identification_id_identifications")),
        sa.ForeignKeyConstraint(["donor_id"], ["donors.id"], name=op.f("fk_notifications_donor_id_donors")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_identification_id", "notifications", ["identification_id"])


def downgrade() -> None:
    op.drop_index("ix_notifications_identification_id", table_name="notifications")
    op.drop_table("notifications")
    with op.batch_alter_table("donor_details") as batch:
        batch.drop_column("date_of_birth")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("language")
