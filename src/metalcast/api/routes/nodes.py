"""/v1/nodes: list, show, create, update (JSON-Patch), delete."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import lookup, node_fields, patching, policy
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.params import (
    Listing,
    collection,
    last_marker,
    parse_bool,
    parse_fields,
    parse_listing,
)
from metalcast.api.schema import validate_body
from metalcast.api.versions import allows
from metalcast.api.views import nodes as view
from metalcast.api.views.conductors import ConductorMap
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import Node
from metalcast.errors import InvalidInput, NotAcceptable

#: list filter -> the feature that introduced it
FILTERS: dict[str, str | None] = {
    "provision_state": "provision_state_filter",
    "driver": "driver_filter",
    "maintenance": None,
    "associated": None,
    "resource_class": "resource_class",
    "owner": "owner",
    "lessee": "lessee",
    "conductor_group": "conductor_group",
    "fault": "fault",
    "chassis_uuid": None,
    "instance_uuid": None,
    "retired": "retired",
    "description_contains": "description",
    "conductor": "conductors",
}
_PAGING = frozenset({"limit", "marker", "sort_key", "sort_dir", "fields", "detail"})
_BOOL_FILTERS = ("maintenance", "associated", "retired")
_TEXT_FILTERS = (
    "provision_state",
    "driver",
    "resource_class",
    "owner",
    "lessee",
    "conductor_group",
    "fault",
    "instance_uuid",
    "description_contains",
)


# --------------------------------------------------------------------------- listing


def node_filters(
    conn: sa.Connection, call: Call, *, chassis_id: int | None = None
) -> repo.NodeFilters:
    """The repository filters a node list request asks for, scoped by policy.

    Raises:
        InvalidInput: an unknown parameter or a bad value.
        NotAcceptable: a filter newer than the requested microversion.
    """
    query = call.query
    _check_filter_names(call)
    values: dict[str, Any] = {name: query.get(name) for name in _TEXT_FILTERS}
    values.update({name: parse_bool(name, query.get(name)) for name in _BOOL_FILTERS})
    if values["instance_uuid"] is not None:
        values["instance_uuid"] = repo.canonical_uuid(
            values["instance_uuid"], what="instance_uuid to be a UUID"
        )
    if "chassis_uuid" in query:
        chassis_id = _chassis_filter(conn, query["chassis_uuid"])
    ids = None
    if "conductor" in query:
        ids = _conductor_filter(conn, call, hostname=query["conductor"])
    return repo.NodeFilters(
        **values,
        chassis_id=chassis_id,
        ids=ids,
        project=policy.project_scope(call.context),
    )


def _check_filter_names(call: Call) -> None:
    unknown = sorted(set(call.query) - set(FILTERS) - _PAGING)
    if unknown:
        raise InvalidInput(
            f"Unknown parameter(s) for listing nodes: {', '.join(unknown)}. "
            f"Accepted: {', '.join(sorted(set(FILTERS) | _PAGING))}."
        )
    for name in call.query:
        feature = FILTERS.get(name)
        if feature is not None and not allows(feature, call.version):
            raise NotAcceptable(
                f"Filtering nodes by '{name}' is not supported in version {call.version}."
            )


def _chassis_filter(conn: sa.Connection, uuid: str) -> int:
    uuid = repo.canonical_uuid(uuid, what="chassis_uuid to be a UUID")
    row = conn.execute(sa.select(t.chassis.c.id).where(t.chassis.c.uuid == uuid)).first()
    return -1 if row is None else int(row.id)


def _conductor_filter(conn: sa.Connection, call: Call, *, hostname: str) -> list[int]:
    """Ids of the nodes the live conductor ``hostname`` serves."""
    timeout = call.deps.settings.conductor.heartbeat_timeout
    conductors = ConductorMap.load(conn, timeout=timeout)
    groups = [g for g, hosts in conductors.by_group.items() if hostname in hosts]
    n = t.nodes.c
    rows = conn.execute(
        sa.select(n.id, n.uuid, n.conductor_group).where(n.conductor_group.in_(groups))
    )
    return [r.id for r in rows if conductors.for_node(r.uuid, r.conductor_group) == hostname]


def list_nodes(
    call: Call, *, detail_path: bool = False, chassis_id: int | None = None
) -> dict[str, Any]:
    """A page of nodes as GET /v1/nodes[/detail] renders it."""
    listing = _listing(call, detail_path=detail_path)
    with call.deps.db.read() as conn:
        filters = node_filters(conn, call, chassis_id=chassis_id)
        fields = None if listing.detail else (listing.fields or view.LIST_FIELDS)
        the_plan = view.plan(call.version, fields)
        nodes = repo.list_node_rows(conn, filters, page=listing.page, columns=the_plan.columns)
        related = view.load_related(
            conn,
            nodes,
            the_plan=the_plan,
            heartbeat_timeout=call.deps.settings.conductor.heartbeat_timeout,
        )
    docs = [
        view.render_node(
            n, related, the_plan=the_plan, base_url=call.base_url, version=call.version
        )
        for n in nodes
    ]
    return collection(
        "nodes",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        last_marker=last_marker([n["uuid"] for n in nodes], listing.page.limit),
    )


def _listing(call: Call, *, detail_path: bool) -> Listing:
    return parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=view.SORTABLE,
        known_fields=view.visible_fields(call.version),
        version=call.version,
        detail_path=detail_path,
    )


@endpoint("node:get")
def get_nodes(call: Call) -> object:
    return list_nodes(call)


@endpoint("node:get")
def get_nodes_detail(call: Call) -> object:
    return list_nodes(call, detail_path=True)


# ------------------------------------------------------------------------- one node


def render_one(
    conn: sa.Connection, call: Call, *, node: Node, fields: tuple[str, ...] | None = None
) -> dict[str, Any]:
    the_plan = view.plan(call.version, fields)
    row = view.row_of(node)
    related = view.load_related(
        conn,
        [row],
        the_plan=the_plan,
        heartbeat_timeout=call.deps.settings.conductor.heartbeat_timeout,
    )
    return view.render_node(
        row, related, the_plan=the_plan, base_url=call.base_url, version=call.version
    )


@endpoint("node:get")
def get_node(call: Call) -> object:
    fields = parse_fields(
        call.query.get("fields"), view.visible_fields(call.version), version=call.version
    )
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="node:get")
        return render_one(conn, call, node=node, fields=fields)


@endpoint("node:create", body=True)
def create_node(call: Call) -> object:
    body = validate_body(
        call.body, node_fields.CREATABLE, what="node", version=call.version, required=("driver",)
    )
    with call.deps.db.read() as conn:
        values = node_fields.to_columns(conn, body)
    if not allows("enroll", call.version):
        values["provision_state"] = "available"
    node = call.deps.conductor.create_node(values, context=call.context)
    call.audit.node(uuid=node.uuid)
    with call.deps.db.read() as conn:
        doc = render_one(conn, call, node=node)
    return Reply(201, doc, {"Location": call.url("v1", "nodes", node.uuid)})


@endpoint("node:delete")
def delete_node(call: Call) -> object:
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="node:delete")
    call.deps.conductor.destroy_node(node.id, context=call.context)
    return Reply(204)


# ------------------------------------------------------------------------------ PATCH

PATCHABLE = patching.Patchable(
    fields=node_fields.PATCHABLE,
    readonly=frozenset(view.FIELDS) | {"ports", "portgroups", "states"},
    removed=node_fields.REMOVED,
    mandatory=node_fields.MANDATORY,
)


#: the interface fields PATCH may set
_INTERFACE_FIELDS = frozenset(name for name in node_fields.PATCHABLE if name.endswith("_interface"))


@endpoint("node:update", body=True)
def patch_node(call: Call) -> object:
    reset = _reset_interfaces(call)
    # with reset_interfaces, an interface the patch names is kept even if unchanged
    keep = _INTERFACE_FIELDS if reset else frozenset()
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="node:update")
        before = patch_document(conn, node)
        changes = patching.changes(
            before, call.body, spec=PATCHABLE, version=call.version, keep=keep
        )
        if "owner" in changes:
            policy.enforce(call.context, "node:update:owner", node=lookup.target(node))
        values = node_fields.to_columns(conn, changes)
    if reset and "driver" not in values:
        raise InvalidInput(
            "The reset_interfaces parameter can only be used when changing the node's driver."
        )
    if values:
        node = call.deps.conductor.update_node(
            node.id, values, context=call.context, reset_interfaces=reset
        )
    with call.deps.db.read() as conn:
        return render_one(conn, call, node=node)


def _reset_interfaces(call: Call) -> bool:
    """The ``reset_interfaces`` query parameter (1.45).  Raises NotAcceptable (406)
    below 1.45, InvalidInput (400) for a non-boolean."""
    value = parse_bool("reset_interfaces", call.query.get("reset_interfaces"))
    if value is not None and not allows("reset_interfaces", call.version):
        raise NotAcceptable(
            f"The reset_interfaces parameter requires API version 1.45 or later; this "
            f"request asked for {call.version}."
        )
    return bool(value)


def patch_document(conn: sa.Connection, node: Node) -> dict[str, Any]:
    """The node's patchable attributes, as PATCH paths name them."""
    doc = {name: getattr(node, name) for name in node_fields.PATCHABLE if name != "chassis_uuid"}
    doc["chassis_uuid"] = node_fields.chassis_uuid(conn, node.chassis_id)
    return doc


ROUTES = [
    Route("/v1/nodes", get_nodes, methods=["GET"]),
    Route("/v1/nodes", create_node, methods=["POST"]),
    Route("/v1/nodes/detail", get_nodes_detail, methods=["GET"]),
    Route("/v1/nodes/{node}", get_node, methods=["GET"]),
    Route("/v1/nodes/{node}", patch_node, methods=["PATCH"]),
    Route("/v1/nodes/{node}", delete_node, methods=["DELETE"]),
]
