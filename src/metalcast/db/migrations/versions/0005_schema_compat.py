"""expand: schema_compat, which older metalcast may still run on the database

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: the oldest revision whose code may run on a database at this one (a new table:
#: the code of 0004 never reads it)
oldest_compatible = "0004"


def upgrade() -> None:
    op.create_table(
        "schema_compat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.String(length=32), nullable=False),
        sa.Column("oldest_compatible", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("schema_compat")
