"""expand: the node, port, portgroup, runbook and history fields of API 1.82 to 1.115

Nodes: ``shard`` (1.82), ``parent_node`` (1.83), ``disable_power_off`` (1.95),
``instance_name`` (1.104), ``health`` (1.109).  Ports: ``description`` (1.97),
``vendor`` (1.100), ``category`` (1.101), ``available_for_dynamic_portgroup`` (1.111).
Portgroups: ``physical_network`` (1.102), ``category`` (1.103), ``dynamic_portgroup``
(1.111).  Runbooks: ``description`` and ``traits`` (1.112).  Deploy templates:
``description`` (Ironic has it at every version from 1.55).  History:
``state``, ``target_provision_state``, ``duration_seconds`` (1.115).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 01:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: only new columns, nullable or with a server default: older code neither reads nor
#: needs them (what it inserts takes the defaults)
oldest_compatible = "0004"

_NODE_INDEXED = (("shard", 255), ("parent_node", 36), ("instance_name", 255))


def upgrade() -> None:
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        for name, length in _NODE_INDEXED:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=True))
            batch_op.create_index(batch_op.f(f"ix_nodes_{name}"), [name], unique=False)
        batch_op.add_column(
            sa.Column("disable_power_off", sa.Boolean(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("health", sa.String(length=32), nullable=True))
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("vendor", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column(
                "available_for_dynamic_portgroup",
                sa.Boolean(),
                nullable=False,
                server_default="1",
            )
        )
    with op.batch_alter_table("portgroups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("physical_network", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("category", sa.String(length=80), nullable=True))
        batch_op.add_column(
            sa.Column("dynamic_portgroup", sa.Boolean(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("runbooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("traits", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("deploy_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("description", sa.String(length=255), nullable=True))
    with op.batch_alter_table("node_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("state", sa.String(length=15), nullable=True))
        batch_op.add_column(
            sa.Column("target_provision_state", sa.String(length=15), nullable=True)
        )
        batch_op.add_column(sa.Column("duration_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("node_history", schema=None) as batch_op:
        for name in ("duration_seconds", "target_provision_state", "state"):
            batch_op.drop_column(name)
    with op.batch_alter_table("deploy_templates", schema=None) as batch_op:
        batch_op.drop_column("description")
    with op.batch_alter_table("runbooks", schema=None) as batch_op:
        for name in ("traits", "description"):
            batch_op.drop_column(name)
    with op.batch_alter_table("portgroups", schema=None) as batch_op:
        for name in ("dynamic_portgroup", "category", "physical_network"):
            batch_op.drop_column(name)
    with op.batch_alter_table("ports", schema=None) as batch_op:
        for name in ("available_for_dynamic_portgroup", "category", "vendor", "description"):
            batch_op.drop_column(name)
    with op.batch_alter_table("nodes", schema=None) as batch_op:
        for name in ("health", "disable_power_off"):
            batch_op.drop_column(name)
        for name, _length in reversed(_NODE_INDEXED):
            batch_op.drop_index(batch_op.f(f"ix_nodes_{name}"))
            batch_op.drop_column(name)
