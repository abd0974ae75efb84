"""TOTP secrets sealed at rest (issue 15): the columns hold ``enc1:`` + AES-GCM ciphertext
(``opendvi.service.secret_box``), longer than a base32 secret. Secrets stored in the clear before
are sealed when the service starts with its key (``seal_stored_totp``), not here: the migration
has no key.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 16:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("totp_secret", type_=sa.String(length=160), existing_type=sa.String(length=64),
                              existing_nullable=True)
        batch_op.alter_column("totp_pending", type_=sa.String(length=160), existing_type=sa.String(length=64),
                              existing_nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("totp_pending", type_=sa.String(length=64), existing_type=sa.String(length=160),
                              existing_nullable=True)
        batch_op.alter_column("totp_secret", type_=sa.String(length=64), existing_type=sa.String(length=160),
                              existing_nullable=True)
