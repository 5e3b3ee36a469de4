"""/v1/portgroups and /v1/nodes/{node}/portgroups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import lookup, patching
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import Operation, Param, body, patch, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import (
    check_query,
    collection,
    fields_param,
    last_marker,
    paging,
    parse_fields,
    parse_list,
    parse_listing,
)
from metalcast.api.schema import (
    Field,
    check_ident,
    check_logical_name,
    check_mac,
    check_uuid,
    normalize_mac,
    validate_body,
)
from metalcast.api.versions import FEATURES, allows
from metalcast.api.views import ports as view
from metalcast.calls import CreatePortgroup, DestroyPortgroup, UpdatePortgroup
from metalcast.db import repository as repo
from metalcast.db.models import Portgroup
from metalcast.errors import Forbidden, InvalidInput, NotAcceptable, NotFound

PATCHABLE_FIELDS: Mapping[str, Field] = {
    "address": Field(check=check_mac),
    "name": Field(check=check_logical_name),
    "node_uuid": Field(nullable=False, check=check_ident),
    "mode": Field(feature="portgroup_mode"),
    "properties": Field("object", nullable=False, max_length=None, feature="portgroup_mode"),
    "standalone_ports_supported": Field("boolean", nullable=False),
    "extra": Field("object", nullable=False, max_length=None),
    "physical_network": Field(max_length=64, feature="portgroup_physical_network"),
    "category": Field(max_length=80, feature="portgroup_category"),
}
CREATABLE = {"uuid": Field(check=check_uuid), **PATCHABLE_FIELDS}
PATCHABLE = patching.Patchable(
    fields=PATCHABLE_FIELDS,
    readonly=frozenset(view.PORTGROUP_FIELDS) | {"ports"},
    removed={"extra": {}, "properties": {}, "standalone_ports_supported": True},
    mandatory=frozenset({"node_uuid"}),
)
LIST_QUERY = (
    Param("node", string(), "Portgroups of this node (UUID or name)."),
    Param("address", string(), "The portgroup with this MAC address."),
    Param(
        "shard",
        string(),
        "Portgroups of the nodes in these shards (comma-separated).",
        "portgroup_shard",
    ),
    Param(
        "conductor_groups",
        string(),
        "Portgroups of the nodes in these conductor groups (comma-separated); not with "
        "node or address.",
    ),
    *paging(sortable=view.PORTGROUP_SORTABLE, fields=view.PORTGROUP_FIELDS),
)
_LIST = collection_of("portgroups", view.PORTGROUP)
_FEATURE = "portgroups"


def _require_portgroups(call: Call) -> None:
    if not allows("portgroups", call.version):
        raise NotFound("The resource could not be found.")


def require_subresources(call: Call) -> None:
    """``/nodes/{node}/portgroups`` and ``/portgroups/{portgroup}/ports`` came in
    1.24, a version after portgroups: 404 before it, as in Ironic."""
    if not allows("portgroup_subresources", call.version):
        raise NotFound(
            f"This portgroup resource needs API version 1.24 or later (requested {call.version})."
        )


def node_scope(
    call: Call, *, exclusive: bool, shard_feature: str = "shards"
) -> repo.NodeScope | None:
    """The ``shard`` and ``conductor_groups`` filters of a port or portgroup list.

    Raises:
        NotAcceptable: ``shard`` before ``shard_feature``.
        InvalidInput: ``conductor_groups`` with a node, portgroup or address filter;
        Forbidden: ``shard`` with a node or portgroup filter (Ironic: one at a time).
    """
    query = call.query
    shards = parse_list("shard", query.get("shard"))
    groups = parse_list("conductor_groups", query.get("conductor_groups"))
    if shards is not None and not allows(shard_feature, call.version):
        raise NotAcceptable(
            f"Request not acceptable. The minimal required API version should be "
            f"{FEATURES[shard_feature]}"
        )
    if shards is not None and exclusive:
        # Ironic's OperationNotPermitted
        raise Forbidden(
            "Operation not permitted: filtering by shard cannot be combined with a node "
            "or portgroup filter."
        )
    if groups is not None and (exclusive or query.get("address")):
        raise InvalidInput(
            "Filtering by conductor_groups cannot be combined with node_ident, "
            "portgroup_ident, or node address filters."
        )
    if shards is None and groups is None:
        return None
    lowered = None if groups is None else tuple(g.lower() for g in groups)
    return repo.NodeScope(shards=shards, conductor_groups=lowered)


def _filters(conn: sa.Connection, call: Call) -> dict[str, Any]:
    check_query(call.query, LIST_QUERY, what="listing portgroups")
    out: dict[str, Any] = {"node_ids": lookup.listed_node_ids(conn, call, "portgroup")}
    if call.query.get("node"):
        out["node_id"] = lookup.node(
            conn, call, ident=call.query["node"], action=lookup.NODE_GET
        ).id
    if call.query.get("address"):
        out["address"] = normalize_mac(call.query["address"])
    scope = node_scope(
        call, exclusive=bool(call.query.get("node")), shard_feature="portgroup_shard"
    )
    if scope is not None:
        out["of_nodes"] = scope
    return out


def list_portgroups(call: Call, *, detail_path: bool = False, node_id: int | None = None) -> object:
    _require_portgroups(call)
    listing = parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=view.PORTGROUP_SORTABLE,
        known_fields=view.visible(view.PORTGROUP_FIELDS, call.version),
        newer_fields=view.PORTGROUP_FIELDS,
        version=call.version,
        detail_path=detail_path,
    )
    with call.deps.db.read() as conn:
        filters = _filters(conn, call)
        if node_id is not None:
            filters["node_id"] = node_id
        groups = repo.list_portgroups(conn, listing.page, **filters)
        uuids = view.Uuids.load(conn, node_ids=[g.node_id for g in groups], portgroup_ids=[])
    fields = None if listing.detail else (listing.fields or view.PORTGROUP_LIST_FIELDS)
    docs = [
        view.render_portgroup(g, uuids, base_url=call.base_url, version=call.version, fields=fields)
        for g in groups
    ]
    return collection(
        "portgroups",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        last_marker=last_marker([g.uuid for g in groups], listing.page.limit),
    )


@endpoint(
    "baremetal:portgroup:list",
    doc=Operation("List portgroups", answers={200: _LIST}, query=LIST_QUERY, feature=_FEATURE),
)
def get_portgroups(call: Call) -> object:
    return list_portgroups(call)


@endpoint(
    "baremetal:portgroup:list",
    doc=Operation(
        "List portgroups with every field",
        answers={200: _LIST},
        query=LIST_QUERY,
        feature=_FEATURE,
    ),
)
def get_portgroups_detail(call: Call) -> object:
    return list_portgroups(call, detail_path=True)


@endpoint(
    "baremetal:portgroup:list",
    doc=Operation(
        "List a node's portgroups",
        answers={200: _LIST},
        query=LIST_QUERY,
        feature="portgroup_subresources",
    ),
)
def get_node_portgroups(call: Call) -> object:
    return _node_portgroups(call)


@endpoint(
    "baremetal:portgroup:list",
    doc=Operation(
        "List a node's portgroups with every field",
        answers={200: _LIST},
        query=LIST_QUERY,
        feature="portgroup_subresources",
    ),
)
def get_node_portgroups_detail(call: Call) -> object:
    return _node_portgroups(call, detail_path=True)


def _node_portgroups(call: Call, *, detail_path: bool = False) -> object:
    require_subresources(call)
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
    return list_portgroups(call, detail_path=detail_path, node_id=node.id)


def _render(
    call: Call, group: Portgroup, *, fields: tuple[str, ...] | None = None
) -> dict[str, Any]:
    with call.deps.db.read() as conn:
        uuids = view.Uuids.load(conn, node_ids=[group.node_id], portgroup_ids=[])
    return view.render_portgroup(
        group, uuids, base_url=call.base_url, version=call.version, fields=fields
    )


@endpoint(
    "baremetal:portgroup:get",
    doc=Operation(
        "Show a portgroup",
        answers={200: view.PORTGROUP},
        query=(fields_param(view.PORTGROUP_FIELDS),),
        feature=_FEATURE,
    ),
)
def get_portgroup(call: Call) -> object:
    _require_portgroups(call)
    fields = parse_fields(
        call.query.get("fields"),
        view.visible(view.PORTGROUP_FIELDS, call.version),
        version=call.version,
        newer=view.PORTGROUP_FIELDS,
    )
    with call.deps.db.read() as conn:
        group = lookup.portgroup(
            conn, call, ident=call.args["portgroup"], action="baremetal:portgroup:get"
        )
    return _render(call, group, fields=fields)


def to_columns(
    conn: sa.Connection, call: Call, *, values: Mapping[str, Any], group: Portgroup | None = None
) -> dict[str, Any]:
    """API attributes as column values, checking the named node; ``group`` is the
    portgroup a PATCH changes (None: a new one)."""
    columns = {k: v for k, v in values.items() if k != "node_uuid"}
    ident = values.get("node_uuid")
    if ident is not None and group is None:
        action = "baremetal:portgroup:create"
        columns["node_id"] = lookup.node_to_create_on(conn, call, ident=ident, action=action).id
    elif ident is not None and group is not None:
        current = repo.get_node_by_id(conn, group.node_id)
        node = lookup.node_to_link(conn, call, ident=ident, current=current, field="node_uuid")
        columns["node_id"] = node.id
    if values.get("address") is not None:
        columns["address"] = normalize_mac(values["address"])
    return columns


@endpoint(
    "baremetal:portgroup:create",
    body=True,
    doc=Operation(
        "Create a portgroup",
        answers={201: view.PORTGROUP},
        body=body(CREATABLE, required=("node_uuid",), name="PortgroupCreate"),
        feature=_FEATURE,
    ),
)
def create_portgroup(call: Call) -> object:
    _require_portgroups(call)
    body = validate_body(
        call.body, CREATABLE, what="portgroup", version=call.version, required=("node_uuid",)
    )
    with call.deps.db.read() as conn:
        values = to_columns(conn, call, values=body)
    group = call.deps.conductor.call(CreatePortgroup(values), context=call.context)
    doc = _render(call, group)
    return Reply(201, doc, {"Location": call.url("v1", "portgroups", group.uuid)})


@endpoint(
    "baremetal:portgroup:update",
    body=True,
    doc=Operation(
        "Update a portgroup (JSON Patch)",
        answers={200: view.PORTGROUP},
        body=patch(PATCHABLE_FIELDS, name="PortgroupPatch"),
        feature=_FEATURE,
    ),
)
def patch_portgroup(call: Call) -> object:
    _require_portgroups(call)
    with call.deps.db.read() as conn:
        group = lookup.portgroup(
            conn, call, ident=call.args["portgroup"], action="baremetal:portgroup:update"
        )
        before = {k: getattr(group, k) for k in PATCHABLE_FIELDS if k != "node_uuid"}
        before["node_uuid"] = repo.get_node_by_id(conn, group.node_id).uuid
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        values = to_columns(conn, call, values=changes, group=group)
    if values:
        group = call.deps.conductor.call(UpdatePortgroup(group.id, values), context=call.context)
    return _render(call, group)


@endpoint(
    "baremetal:portgroup:delete",
    doc=Operation("Delete a portgroup", answers={204: None}, feature=_FEATURE),
)
def delete_portgroup(call: Call) -> object:
    _require_portgroups(call)
    with call.deps.db.read() as conn:
        group = lookup.portgroup(
            conn, call, ident=call.args["portgroup"], action="baremetal:portgroup:delete"
        )
    call.deps.conductor.call(DestroyPortgroup(group.id), context=call.context)
    return Reply(204)


ROUTES = [
    Route("/v1/portgroups", get_portgroups, methods=["GET"]),
    Route("/v1/portgroups", create_portgroup, methods=["POST"]),
    Route("/v1/portgroups/detail", get_portgroups_detail, methods=["GET"]),
    Route("/v1/portgroups/{portgroup}", get_portgroup, methods=["GET"]),
    Route("/v1/portgroups/{portgroup}", patch_portgroup, methods=["PATCH"]),
    Route("/v1/portgroups/{portgroup}", delete_portgroup, methods=["DELETE"]),
    Route("/v1/nodes/{node}/portgroups", get_node_portgroups, methods=["GET"]),
    Route("/v1/nodes/{node}/portgroups/detail", get_node_portgroups_detail, methods=["GET"]),
]
