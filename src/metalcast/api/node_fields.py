"""The writable fields of a node: what POST accepts and what PATCH may change.

Errors: ``InvalidInput`` (400) naming the field; ``NotAcceptable`` (406) for a field
newer than the requested microversion.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from metalcast.api.schema import (
    Field,
    check_logical_name,
    check_uuid,
)
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.errors import InvalidInput

_GROUP_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_group(name: str, value: Any) -> None:
    if not set(value) <= _GROUP_CHARS:
        raise InvalidInput(
            f"Invalid value for field '{name}': '{value}'; a conductor group may only "
            "contain letters, digits, '_', '-' and '.'."
        )


def _check_not_empty(name: str, value: Any) -> None:
    if not value:
        raise InvalidInput(f"Invalid value for field '{name}': it can not be empty.")


_OBJECT = Field("object", nullable=False, max_length=None)
_INTERFACE = Field("string", feature="dynamic_interfaces")

#: name -> field, for every attribute PATCH may change
PATCHABLE: Mapping[str, Field] = {
    "name": Field(feature="node_name", check=check_logical_name),
    "driver": Field(nullable=False),
    "driver_info": _OBJECT,
    "properties": _OBJECT,
    "extra": _OBJECT,
    "instance_info": _OBJECT,
    "chassis_uuid": Field(check=check_uuid),
    "instance_uuid": Field(check=check_uuid),
    "maintenance": Field("boolean", nullable=False, strings=True),
    "maintenance_reason": Field(max_length=None),
    "resource_class": Field(max_length=80, feature="resource_class"),
    "network_interface": Field(feature="network_interface"),
    **{
        f"{name}_interface": _INTERFACE
        for name in ("boot", "console", "deploy", "inspect", "management", "power")
    },
    "raid_interface": _INTERFACE,
    "vendor_interface": _INTERFACE,
    "storage_interface": Field(feature="storage_interface"),
    "rescue_interface": Field(feature="rescue"),
    "bios_interface": Field(feature="bios_interface"),
    "firmware_interface": Field(feature="firmware_interface"),
    "conductor_group": Field(feature="conductor_group", check=_check_group),
    "automated_clean": Field("boolean", feature="automated_clean", strings=True),
    "protected": Field("boolean", nullable=False, feature="protected", strings=True),
    "protected_reason": Field(max_length=None, feature="protected"),
    "owner": Field(feature="owner"),
    "lessee": Field(feature="lessee"),
    "description": Field(max_length=4096, feature="description"),
    "retired": Field("boolean", nullable=False, feature="retired", strings=True),
    "retired_reason": Field(max_length=None, feature="retired"),
    "network_data": Field("object", max_length=None, feature="network_data"),
    "shard": Field(feature="shards"),
    # a node's name or UUID: the routes store the UUID (check_parent)
    "parent_node": Field(feature="child_nodes"),
    "disable_power_off": Field(
        "boolean", nullable=False, feature="disable_power_off", strings=True
    ),
    "instance_name": Field(feature="instance_name", check=_check_not_empty),
}

_NOT_ON_CREATE = frozenset({"maintenance", "maintenance_reason", "protected", "protected_reason"})

#: name -> field, for the body of POST /v1/nodes
CREATABLE: Mapping[str, Field] = {
    "uuid": Field(check=check_uuid),
    **{name: spec for name, spec in PATCHABLE.items() if name not in _NOT_ON_CREATE},
}

#: the value a removed attribute takes
REMOVED: Mapping[str, object] = {
    "driver_info": {},
    "properties": {},
    "extra": {},
    "instance_info": {},
    "maintenance": False,
    "protected": False,
    "retired": False,
    "disable_power_off": False,
}

#: attributes PATCH may not remove
MANDATORY = frozenset({"driver"})


def to_columns(conn: sa.Connection, values: Mapping[str, Any]) -> dict[str, Any]:
    """API attribute values as column values (``chassis_uuid`` -> ``chassis_id``).
    A taken name or instance UUID is the conductor's to refuse (409), whoever calls it.

    Raises:
        InvalidInput: the named chassis does not exist.
    """
    columns = {k: v for k, v in values.items() if k != "chassis_uuid"}
    if "chassis_uuid" in values:
        chassis_uuid = values["chassis_uuid"]
        columns["chassis_id"] = None if chassis_uuid is None else _chassis_id(conn, chassis_uuid)
    return columns


def _chassis_id(conn: sa.Connection, uuid: str) -> int:
    row = conn.execute(sa.select(t.chassis.c.id).where(t.chassis.c.uuid == uuid.lower())).first()
    if row is None:
        raise InvalidInput(f"Chassis {uuid} could not be found.")
    return int(row.id)


def chassis_uuid(conn: sa.Connection, chassis_id: int | None) -> str | None:
    if chassis_id is None:
        return None
    return repo.get_chassis_by_id(conn, chassis_id).uuid
