"""expand: node_inventories, what each node's agent reported at inspection (API 1.81)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 18:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

#: the oldest revision whose code may run on a database at this one (a new table that
#: older code never reads; the row goes with its node, ON DELETE CASCADE, when older
#: code deletes an inspected node)
oldest_compatible = "0004"


def upgrade() -> None:
    op.create_table(
        "node_inventories",
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("inventory", sa.JSON(), nullable=False),
        sa.Column("plugin_data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_node_inventories_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node_inventories")),
    )


def downgrade() -> None:
    op.drop_table("node_inventories")
