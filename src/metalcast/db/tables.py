"""The schema, as SQLAlchemy Core tables.  Alembic migrations create exactly this."""

from __future__ import annotations

import sqlalchemy as sa

from metalcast.interfaces import INTERFACE_NAMES

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=True),
    ]


chassis = sa.Table(
    "chassis",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("description", sa.String(255)),
    sa.Column("extra", sa.JSON, nullable=False),
    *_timestamps(),
)

conductors = sa.Table(
    "conductors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False, unique=True),
    sa.Column("conductor_group", sa.String(255), nullable=False, server_default=""),
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("hardware_types", sa.JSON, nullable=False),
    sa.Column("rpc_url", sa.String(255)),
    *_timestamps(),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), unique=True),
    sa.Column("chassis_id", sa.Integer, sa.ForeignKey("chassis.id")),
    sa.Column("instance_uuid", sa.String(36), unique=True),
    sa.Column("driver", sa.String(255), nullable=False),
    sa.Column("driver_info", sa.JSON, nullable=False),
    sa.Column("driver_internal_info", sa.JSON, nullable=False),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("instance_info", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("power_state", sa.String(15)),
    sa.Column("target_power_state", sa.String(15)),
    sa.Column("provision_state", sa.String(15), nullable=False, index=True),
    sa.Column("target_provision_state", sa.String(15)),
    sa.Column("provision_updated_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("maintenance", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("maintenance_reason", sa.Text),
    sa.Column("fault", sa.String(255)),
    sa.Column("reservation", sa.String(255), index=True),
    sa.Column("conductor_affinity", sa.Integer),
    sa.Column("conductor_group", sa.String(255), nullable=False, server_default=""),
    sa.Column("console_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("inspection_started_at", sa.DateTime),
    sa.Column("inspection_finished_at", sa.DateTime),
    sa.Column("clean_step", sa.JSON),
    sa.Column("deploy_step", sa.JSON),
    sa.Column("service_step", sa.JSON),
    sa.Column("raid_config", sa.JSON),
    sa.Column("target_raid_config", sa.JSON),
    sa.Column("resource_class", sa.String(80)),
    sa.Column("automated_clean", sa.Boolean),
    sa.Column("protected", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("protected_reason", sa.Text),
    sa.Column("owner", sa.String(255), index=True),
    sa.Column("lessee", sa.String(255), index=True),
    sa.Column("description", sa.Text),
    sa.Column("retired", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("retired_reason", sa.Text),
    sa.Column("network_data", sa.JSON),
    sa.Column("boot_mode", sa.String(50)),
    sa.Column("secure_boot", sa.Boolean),
    sa.Column("allocation_id", sa.Integer, index=True),
    #: the shard an external service (e.g. nova-compute) picks its nodes by (1.82)
    sa.Column("shard", sa.String(255), index=True),
    #: the UUID of the node this one is a child of (1.83)
    sa.Column("parent_node", sa.String(36), index=True),
    #: never power the node off: no power-off request, no power off around a step (1.95)
    sa.Column("disable_power_off", sa.Boolean, nullable=False, server_default=sa.false()),
    #: the name of the instance deployed on the node (1.104)
    sa.Column("instance_name", sa.String(255), index=True),
    #: what the BMC says of the machine's health (1.109)
    sa.Column("health", sa.String(32)),
    *(sa.Column(f"{name}_interface", sa.String(255)) for name in INTERFACE_NAMES),
    *_timestamps(),
)

ports = sa.Table(
    "ports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("address", sa.String(18), nullable=False, unique=True),
    sa.Column("name", sa.String(255), unique=True),
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
    sa.Column("portgroup_id", sa.Integer, sa.ForeignKey("portgroups.id"), index=True),
    sa.Column("local_link_connection", sa.JSON, nullable=False),
    sa.Column("pxe_enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("physical_network", sa.String(64)),
    sa.Column("internal_info", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("is_smartnic", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("description", sa.String(255)),
    sa.Column("vendor", sa.String(32)),
    sa.Column("category", sa.String(80)),
    sa.Column(
        "available_for_dynamic_portgroup", sa.Boolean, nullable=False, server_default=sa.true()
    ),
    *_timestamps(),
)

portgroups = sa.Table(
    "portgroups",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), unique=True),
    sa.Column("address", sa.String(18), unique=True),
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
    sa.Column("mode", sa.String(255)),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("standalone_ports_supported", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("physical_network", sa.String(64)),
    sa.Column("category", sa.String(80)),
    sa.Column("dynamic_portgroup", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("internal_info", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    *_timestamps(),
)

node_traits = sa.Table(
    "node_traits",
    metadata,
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), primary_key=True),
    sa.Column("trait", sa.String(255), primary_key=True),
)

node_history = sa.Table(
    "node_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("event_type", sa.String(255), nullable=False),
    sa.Column("event", sa.Text, nullable=False),
    sa.Column("conductor", sa.String(255)),
    #: who asked (the caller's name, else its id): Ironic's ``user``
    sa.Column("user", sa.String(255)),
    #: the project the caller's credentials were scoped to (Ironic's ``project``)
    sa.Column("project", sa.String(255)),
    #: the provision state the node was in, the one it went for, and how long the
    #: state it left had lasted (Ironic 1.115)
    sa.Column("state", sa.String(15)),
    sa.Column("target_provision_state", sa.String(15)),
    sa.Column("duration_seconds", sa.Integer),
)

#: what a volume connector's ``connector_id`` is (Ironic's list)
VOLUME_CONNECTOR_TYPES = ("iqn", "ip", "mac", "wwnn", "wwpn", "port", "portgroup")

volume_connectors = sa.Table(
    "volume_connectors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("connector_id", sa.String(255), nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    *_timestamps(),
    sa.UniqueConstraint("type", "connector_id", name="uq_volume_connectors_type_connector_id"),
)

volume_targets = sa.Table(
    "volume_targets",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), nullable=False, index=True),
    sa.Column("volume_type", sa.String(64), nullable=False),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("boot_index", sa.Integer, nullable=False),
    sa.Column("volume_id", sa.String(36), nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    *_timestamps(),
    sa.UniqueConstraint("node_id", "boot_index", name="uq_volume_targets_node_id_boot_index"),
)

#: the BIOS settings last read from each node's BIOS interface (Ironic caches them
#: the same way: read at verify and after cleaning, served from here)
bios_settings = sa.Table(
    "bios_settings",
    metadata,
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), primary_key=True),
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text),
    *_timestamps(),
)

#: each node's firmware components as its firmware interface last read them (API
#: 1.86; vendor, model and serial number 1.114): refreshed around a firmware update
firmware_components = sa.Table(
    "firmware_components",
    metadata,
    sa.Column(
        "node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("component", sa.String(255), primary_key=True),
    sa.Column("initial_version", sa.String(255)),
    sa.Column("current_version", sa.String(255)),
    sa.Column("last_version_flashed", sa.String(255)),
    sa.Column("vendor", sa.String(255)),
    sa.Column("model", sa.String(255)),
    sa.Column("serial_number", sa.String(255)),
    *_timestamps(),
)

#: the last inventory each node's agent reported at inspection (API 1.81)
node_inventories = sa.Table(
    "node_inventories",
    metadata,
    # cascade: code older than this table deletes nodes without knowing it
    sa.Column(
        "node_id", sa.Integer, sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("inventory", sa.JSON, nullable=False),
    sa.Column("plugin_data", sa.JSON, nullable=False),
    *_timestamps(),
)

# ------------------------------------------------------------------- allocations

#: a request for a node (API 1.52): found by resource class, traits and candidates
allocations = sa.Table(
    "allocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), unique=True),
    sa.Column("node_id", sa.Integer, sa.ForeignKey("nodes.id"), index=True),
    sa.Column("state", sa.String(15), nullable=False),
    sa.Column("owner", sa.String(255), index=True),
    sa.Column("last_error", sa.Text),
    sa.Column("resource_class", sa.String(80)),
    sa.Column("traits", sa.JSON, nullable=False),
    sa.Column("candidate_nodes", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("conductor_affinity", sa.Integer),
    *_timestamps(),
)

#: a named set of deploy steps (API 1.55), chosen for a deploy by an instance trait
#: of the same name; ``steps`` is a list of ``{interface, step, args, priority}``
deploy_templates = sa.Table(
    "deploy_templates",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("extra", sa.JSON, nullable=False),
    sa.Column("description", sa.String(255)),
    *_timestamps(),
)

#: a runbook (API 1.92): a named list of clean or service steps, run on a node whose
#: traits include its name; ``steps`` is a list of ``{interface, step, args, order}``.
#: A project's runbook has that project as ``owner``; a ``public`` one has none
runbooks = sa.Table(
    "runbooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("steps", sa.JSON, nullable=False),
    sa.Column("disable_ramdisk", sa.Boolean, nullable=False),
    sa.Column("public", sa.Boolean, nullable=False),
    sa.Column("owner", sa.String(255), index=True),
    sa.Column("extra", sa.JSON, nullable=False),
    #: 1.112: what the runbook is for, and the traits it serves a node with
    sa.Column("description", sa.String(255)),
    sa.Column("traits", sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    *_timestamps(),
)

#: an inspection rule (API 1.96): conditions on a node's inspection data and the
#: actions to take when they hold (:mod:`metalcast.inspection_rules`); higher
#: ``priority`` runs first; ``sensitive`` rules see secrets and are shown masked
inspection_rules = sa.Table(
    "inspection_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("description", sa.String(255)),
    sa.Column("priority", sa.Integer, nullable=False),
    sa.Column("phase", sa.String(16), nullable=False),
    sa.Column("sensitive", sa.Boolean, nullable=False),
    sa.Column("conditions", sa.JSON, nullable=False),
    sa.Column("actions", sa.JSON, nullable=False),
    *_timestamps(),
)

# ---------------------------------------------------------------------- identity
# metalcast's own users, projects, role assignments and API tokens
# (api.auth_strategy "builtin"); ids are 32 hex digits, as Keystone's

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    *_timestamps(),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    #: argon2id hash of the password (never the password)
    sa.Column("password_hash", sa.String(255)),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    #: the project HTTP Basic and new tokens are scoped to unless told otherwise
    sa.Column("default_project_id", sa.Integer, sa.ForeignKey("projects.id")),
    sa.Column("description", sa.Text),
    *_timestamps(),
)

#: a user's role in a project, or on the system (``project_id`` NULL, ``scope``
#: "system"); ``scope`` is "system" or the project's uuid so that the unique
#: constraint holds for system roles too
role_assignments = sa.Table(
    "role_assignments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id"), index=True),
    sa.Column("scope", sa.String(32), nullable=False),
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "scope", "role", name="uq_role_assignments_user_scope_role"),
)

#: API tokens: only a hash of the secret is kept; a token is scoped to one project
#: or to the system, as a Keystone token is
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(32), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id")),
    sa.Column("system_scope", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("description", sa.String(255)),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

# ------------------------------------------------------------------------- audit

#: every write through the API: who (user, project), what (method, path, policy
#: action, the resource), when, and how it ended (status); never a request body
audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    #: what pages of the audit log are marked with, as every collection's
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("user_id", sa.String(255)),
    sa.Column("user_name", sa.String(255)),
    sa.Column("project_id", sa.String(255), index=True),
    sa.Column("method", sa.String(10), nullable=False),
    sa.Column("path", sa.String(2048), nullable=False),
    sa.Column("action", sa.String(255)),
    sa.Column("status", sa.Integer, nullable=False),
    #: the node the request concerned (itself, or the node of its port, ...)
    sa.Column("node_uuid", sa.String(36), index=True),
    #: the UUID of the resource the request addressed or created
    sa.Column("resource_uuid", sa.String(36)),
)

# ------------------------------------------------------------------------ events

#: the node event log: one row per committed change of a node that clients watch
#: (provision and power state, maintenance, last error, progress, creation,
#: deletion), written in the transaction that makes the change; tailed by the API's
#: event stream (GET /v1/events) in id order, pruned by age and count.  No foreign
#: key: a node's deletion is itself an event.  Never a secret: only the watched
#: fields' values, as stored (scrubbed).
node_events = sa.Table(
    "node_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    sa.Column("node_uuid", sa.String(36), nullable=False),
    #: the node's owner and lessee when the event happened: who may see it
    sa.Column("owner", sa.String(255)),
    sa.Column("lessee", sa.String(255)),
    #: "created", "updated" or "deleted"
    sa.Column("type", sa.String(16), nullable=False),
    #: watched field -> {"old": ..., "new": ...}
    sa.Column("changes", sa.JSON, nullable=False),
    sa.Column("request_id", sa.String(64)),
)

#: where node events are POSTed (admins' webhooks): the URL, its signing secret
#: (``signing`` = {"secret": ...}, sealed at rest), which events (kinds, nodes: empty
#: for all) and the last event id fanned out into deliveries (``cursor``)
webhooks = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("signing", sa.JSON, nullable=False),
    sa.Column("kinds", sa.JSON, nullable=False),
    sa.Column("nodes", sa.JSON, nullable=False),
    sa.Column("description", sa.String(255)),
    sa.Column("cursor", sa.Integer, nullable=False),
    *_timestamps(),
)

#: one event to deliver to one webhook: its state, tries, and how the last one went;
#: a conductor claims it (``claimed_by`` until ``claimed_until``) while it sends
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uuid", sa.String(36), nullable=False, unique=True),
    sa.Column("webhook_id", sa.Integer, sa.ForeignKey("webhooks.id"), nullable=False, index=True),
    sa.Column("event_id", sa.Integer, nullable=False),
    #: the event as sent (the log may be pruned before the last try)
    sa.Column("payload", sa.JSON, nullable=False),
    #: pending, delivered or failed
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("response_code", sa.Integer),
    sa.Column("last_error", sa.Text),
    sa.Column("claimed_by", sa.String(255)),
    sa.Column("claimed_until", sa.DateTime),
    *_timestamps(),
)

# ----------------------------------------------------------------------- schema

#: one row, written by every upgrade: the newest revision applied and the oldest
#: revision whose code may still run on this database (docs/upgrades.md); read by an
#: older metalcast that finds a revision it does not know
schema_compat = sa.Table(
    "schema_compat",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("revision", sa.String(32), nullable=False),
    sa.Column("oldest_compatible", sa.String(32), nullable=False),
)
