"""expand: firmware components of each node (API 1.86, identity fields 1.114)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

#: the oldest revision whose code may run on a database at this one (a new table that
#: older code never reads)
oldest_compatible = "0004"


def upgrade() -> None:
    op.create_table(
        "firmware_components",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("component", sa.String(length=255), nullable=False),
        sa.Column("initial_version", sa.String(length=255), nullable=True),
        sa.Column("current_version", sa.String(length=255), nullable=True),
        sa.Column("last_version_flashed", sa.String(length=255), nullable=True),
        sa.Column("vendor", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=255), nullable=True),
        sa.Column("serial_number", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_firmware_components_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", "component", name=op.f("pk_firmware_components")),
    )


def downgrade() -> None:
    op.drop_table("firmware_components")
