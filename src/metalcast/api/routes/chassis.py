"""/v1/chassis: list, show, create, update, delete, and a chassis' nodes.

Chassis carry no node state, so their writes go straight to the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import patching
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import LINKS, Operation, body, patch, resource
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import (
    check_query,
    collection,
    fields_param,
    last_marker,
    paging,
    parse_fields,
    parse_listing,
)
from metalcast.api.routes import nodes as node_routes
from metalcast.api.schema import Field, check_uuid, validate_body
from metalcast.api.views import nodes as node_view
from metalcast.api.views.common import iso, links, only
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import Chassis
from metalcast.errors import InvalidInput
from metalcast.secrecy import mask

FIELDS = ("uuid", "description", "extra", "created_at", "updated_at")
LIST_FIELDS = ("uuid", "description")
SORTABLE = frozenset({"id", "uuid", "description", "created_at", "updated_at"})
PATCHABLE_FIELDS: Mapping[str, Field] = {
    "description": Field(),
    "extra": Field("object", nullable=False, max_length=None),
}
CREATABLE = {"uuid": Field(check=check_uuid), **PATCHABLE_FIELDS}
PATCHABLE = patching.Patchable(
    fields=PATCHABLE_FIELDS, readonly=frozenset(FIELDS) | {"nodes"}, removed={"extra": {}}
)
CHASSIS = resource("Chassis", dict.fromkeys(FIELDS), table=t.chassis, extra={"nodes": LINKS})
LIST_QUERY = paging(sortable=SORTABLE, fields=FIELDS)
_LIST = collection_of("chassis", CHASSIS)


def render_chassis(
    chassis: Chassis, *, base_url: str, fields: tuple[str, ...] | None, full: bool
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uuid": chassis.uuid,
        "description": chassis.description,
        "extra": mask(chassis.extra),
        "created_at": iso(chassis.created_at),
        "updated_at": iso(chassis.updated_at),
    }
    doc = only(doc, fields)
    doc["links"] = links(base_url, f"chassis/{chassis.uuid}")
    if full:
        doc["nodes"] = links(base_url, f"chassis/{chassis.uuid}/nodes")
    return doc


def _list(call: Call, *, detail_path: bool) -> object:
    check_query(call.query, LIST_QUERY, what="listing chassis")
    listing = parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=SORTABLE,
        known_fields=FIELDS,
        version=call.version,
        detail_path=detail_path,
    )
    with call.deps.db.read() as conn:
        rows = repo.list_chassis(conn, listing.page)
    fields = None if listing.detail else (listing.fields or LIST_FIELDS)
    docs = [
        render_chassis(c, base_url=call.base_url, fields=fields, full=listing.detail) for c in rows
    ]
    return collection(
        "chassis",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        last_marker=last_marker([c.uuid for c in rows], listing.page.limit),
    )


@endpoint(
    "baremetal:chassis:get",
    doc=Operation("List chassis", answers={200: _LIST}, query=LIST_QUERY),
)
def get_chassis_list(call: Call) -> object:
    return _list(call, detail_path=False)


@endpoint(
    "baremetal:chassis:get",
    doc=Operation("List chassis with every field", answers={200: _LIST}, query=LIST_QUERY),
)
def get_chassis_detail(call: Call) -> object:
    return _list(call, detail_path=True)


@endpoint(
    "baremetal:chassis:get",
    doc=Operation("Show a chassis", answers={200: CHASSIS}, query=(fields_param(FIELDS),)),
)
def get_chassis(call: Call) -> object:
    fields = parse_fields(call.query.get("fields"), FIELDS, version=call.version)
    with call.deps.db.read() as conn:
        chassis = repo.get_chassis(conn, call.args["chassis"])
    return render_chassis(chassis, base_url=call.base_url, fields=fields, full=fields is None)


@endpoint(
    "baremetal:node:list",
    doc=Operation(
        "List a chassis' nodes",
        answers={200: collection_of("nodes", node_view.NODE)},
        query=node_routes.LIST_QUERY,
    ),
)
def get_chassis_nodes(call: Call) -> object:
    # the right to list nodes first, as Ironic: who may not learns nothing of chassis
    call.list_scope("node")
    with call.deps.db.read() as conn:
        chassis = repo.get_chassis(conn, call.args["chassis"])
    return node_routes.list_nodes(call, chassis_id=chassis.id)


@endpoint(
    "baremetal:chassis:create",
    body=True,
    doc=Operation(
        "Create a chassis",
        answers={201: CHASSIS},
        body=body(CREATABLE, name="ChassisCreate"),
        examples=({"description": "rack 2"},),
    ),
)
def create_chassis(call: Call) -> object:
    body = validate_body(call.body, CREATABLE, what="chassis", version=call.version)
    with call.deps.db.begin() as conn:
        chassis = repo.create_chassis(conn, body)
    doc = render_chassis(chassis, base_url=call.base_url, fields=None, full=True)
    return Reply(201, doc, {"Location": call.url("v1", "chassis", chassis.uuid)})


@endpoint(
    "baremetal:chassis:update",
    body=True,
    doc=Operation(
        "Update a chassis (JSON Patch)",
        answers={200: CHASSIS},
        body=patch(PATCHABLE_FIELDS, name="ChassisPatch"),
    ),
)
def patch_chassis(call: Call) -> object:
    with call.deps.db.begin() as conn:
        chassis = repo.get_chassis(conn, call.args["chassis"])
        before = {"description": chassis.description, "extra": chassis.extra}
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        if changes:
            repo.update_chassis(conn, chassis.id, changes)
            chassis = repo.get_chassis_by_id(conn, chassis.id)
    return render_chassis(chassis, base_url=call.base_url, fields=None, full=True)


@endpoint(
    "baremetal:chassis:delete",
    doc=Operation(
        "Delete a chassis (400 while it holds nodes)", answers={204: None}, errors=frozenset({400})
    ),
)
def delete_chassis(call: Call) -> object:
    with call.deps.db.begin() as conn:
        chassis = repo.get_chassis(conn, call.args["chassis"])
        n = t.nodes.c
        if conn.execute(sa.select(n.id).where(n.chassis_id == chassis.id)).first() is not None:
            raise InvalidInput(
                f"Cannot complete the requested action because chassis {chassis.uuid} "
                "contains nodes."
            )
        repo.destroy_chassis(conn, chassis.id)
    return Reply(204)


ROUTES = [
    Route("/v1/chassis", get_chassis_list, methods=["GET"]),
    Route("/v1/chassis", create_chassis, methods=["POST"]),
    Route("/v1/chassis/detail", get_chassis_detail, methods=["GET"]),
    Route("/v1/chassis/{chassis}", get_chassis, methods=["GET"]),
    Route("/v1/chassis/{chassis}", patch_chassis, methods=["PATCH"]),
    Route("/v1/chassis/{chassis}", delete_chassis, methods=["DELETE"]),
    Route("/v1/chassis/{chassis}/nodes", get_chassis_nodes, methods=["GET"]),
]
