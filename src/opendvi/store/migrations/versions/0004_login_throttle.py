"""Sign-in throttle state in the database, shared by the service's worker processes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.Column("last", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_login_throttle")),
    )
    op.create_index("ix_login_throttle_last", "login_throttle", ["last"])


def downgrade() -> None:
    op.drop_index("ix_login_throttle_last", table_name="login_throttle")
    op.drop_table("login_throttle")
