"""/v1/nodes/{node}/firmware: a node's firmware components, as last read (Ironic 1.86;
``vendor``, ``model`` and ``serial_number`` from 1.114)."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from metalcast.api import lookup
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Operation, Param, array, obj, resource, string
from metalcast.api.params import check_query, parse_fields
from metalcast.api.versions import allows
from metalcast.api.views.common import iso
from metalcast.db import firmware
from metalcast.db import tables as t
from metalcast.db.models import FirmwareRecord
from metalcast.errors import InvalidInput, NotFound

#: what a component shows (Ironic's 1.86 fields), and 1.114's identity fields
FIRMWARE_FIELDS = (
    "created_at",
    "updated_at",
    "component",
    "initial_version",
    "current_version",
    "last_version_flashed",
)
IDENTITY_FIELDS = ("vendor", "model", "serial_number")
FIRMWARE_COMPONENT = resource(
    "FirmwareComponent",
    {**dict.fromkeys(FIRMWARE_FIELDS), **dict.fromkeys(IDENTITY_FIELDS, "firmware_identity")},
    table=t.firmware_components,
    linked=False,
)
FIRMWARE_QUERY = (
    Param(
        "fields",
        string(),
        "Comma-separated fields to show (created_at and updated_at always).",
        "firmware",
    ),
)


def render_component(record: FirmwareRecord, fields: tuple[str, ...]) -> dict[str, Any]:
    """One component with ``fields`` (and its timestamps, as Ironic always shows)."""
    doc: dict[str, Any] = {
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }
    for name in fields:
        doc[name] = getattr(record, name) if name not in doc else doc[name]
    return doc


def _fields(call: Call) -> tuple[str, ...]:
    """The fields to show at the request's version.  Raises InvalidInput."""
    identity = allows("firmware_identity", call.version)
    default = FIRMWARE_FIELDS + (IDENTITY_FIELDS if identity else ())
    asked = parse_fields(
        call.query.get("fields"), FIRMWARE_FIELDS + IDENTITY_FIELDS, version=call.version
    )
    if asked is None:
        return default
    too_new = sorted(set(asked) & set(IDENTITY_FIELDS)) if not identity else []
    if too_new:
        raise InvalidInput(
            f"Fields {', '.join(too_new)} are not allowed in this API version. "
            "They require at least API version 1.114."
        )
    return asked


@endpoint(
    "baremetal:node:firmware:get",
    doc=Operation(
        "List a node's firmware components (as last read from its BMC)",
        answers={200: obj({"firmware": array(FIRMWARE_COMPONENT)}, required=("firmware",))},
        query=FIRMWARE_QUERY,
        feature="firmware",
    ),
)
def get_firmware(call: Call) -> object:
    if not allows("firmware", call.version):
        raise NotFound("The API version does not allow node firmware.")
    check_query(call.query, FIRMWARE_QUERY, what="firmware components")
    fields = _fields(call)
    with call.deps.db.read() as conn:
        action = "baremetal:node:firmware:get"
        node = lookup.node(conn, call, ident=call.args["node"], action=action)
        records = firmware.list_components(conn, node.id)
    return {"firmware": [render_component(r, fields) for r in records]}


ROUTES = [Route("/v1/nodes/{node}/firmware", get_firmware, methods=["GET"])]
