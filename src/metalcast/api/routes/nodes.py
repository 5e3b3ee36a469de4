"""/v1/nodes: list, show, create, update (JSON-Patch), delete."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import image_sources, lookup, node_fields, patching
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import Operation, Param, body, patch, string
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import (
    Listing,
    check_query,
    collection,
    fields_param,
    flag,
    last_marker,
    paging,
    parse_bool,
    parse_fields,
    parse_list,
    parse_listing,
)
from metalcast.api.schema import validate_body
from metalcast.api.versions import allows
from metalcast.api.views import nodes as view
from metalcast.calls import CreateNode, DestroyNode, UpdateNode
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import Node
from metalcast.errors import Conflict, Forbidden, InvalidInput, NotAcceptable, NotFound
from metalcast.states import Fault, ProvisionState

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
    "shard": "shards",
    "sharded": "shards",
    "parent_node": "child_nodes",
    "include_children": "child_nodes",
    "instance_name": "instance_name",
}
_BOOL_FILTERS = ("maintenance", "associated", "retired", "sharded", "include_children")
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
    "instance_name",
)


#: list filter -> what it keeps
_FILTER_TEXT = {
    "provision_state": "Nodes in this provision state.",
    "driver": "Nodes of this hardware type.",
    "maintenance": "Nodes in maintenance (true) or not (false).",
    "associated": "Nodes with an instance (true) or without (false).",
    "resource_class": "Nodes of this resource class.",
    "owner": "Nodes owned by this project.",
    "lessee": "Nodes leased to this project.",
    "conductor_group": "Nodes of this conductor group.",
    "fault": "Nodes with this fault.",
    "chassis_uuid": "Nodes in this chassis.",
    "instance_uuid": "The node of this instance.",
    "retired": "Retired nodes (true) or not (false).",
    "description_contains": "Nodes whose description contains this text.",
    "conductor": "Nodes the live conductor of this host name serves.",
    "shard": "Nodes in one of these shards (a comma-separated list).",
    "sharded": "Nodes with a shard (true) or without (false).",
    "parent_node": "The children of this node (a name or UUID).",
    "include_children": "Child nodes too (without it, a list leaves them out).",
    "instance_name": "Nodes whose instance has this name.",
}
#: filters whose values are one of a few
_CHOICES = {"fault": string(enum=[str(fault) for fault in Fault])}
FILTER_PARAMS = tuple(
    flag(name, _FILTER_TEXT[name], feature=feature)
    if name in _BOOL_FILTERS
    else Param(name, _CHOICES.get(name, string()), _FILTER_TEXT[name], feature)
    for name, feature in FILTERS.items()
)
LIST_QUERY = (
    *FILTER_PARAMS,
    *paging(sortable=view.SORTABLE, fields=view.FIELDS),
)
_LIST = collection_of("nodes", view.NODE)


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
    if values["fault"] is not None and values["fault"] not in set(Fault):
        faults = ", ".join(f'"{fault}"' for fault in Fault)
        raise InvalidInput(
            f'Unrecognized fault "{values["fault"]}" is specified, allowed faults are {faults}.'
        )
    if values["instance_uuid"] is not None:
        values["instance_uuid"] = repo.canonical_uuid(
            values["instance_uuid"], what="instance_uuid to be a UUID"
        )
    if "chassis_uuid" in query:
        chassis_id = _chassis_filter(conn, query["chassis_uuid"])
    ids = None
    if "conductor" in query:
        ids = _conductor_filter(conn, call, hostname=query["conductor"])
    include_children = bool(values.pop("include_children"))
    return repo.NodeFilters(
        **values,
        chassis_id=chassis_id,
        ids=ids,
        project=call.list_scope("node"),
        shards=parse_list("shard", query.get("shard")),
        parent_node=_parent_filter(conn, query.get("parent_node")),
        include_children=include_children,
    )


def _parent_filter(conn: sa.Connection, ident: str | None) -> str | None:
    """The UUID of the parent node ``parent_node=`` names (a name or a UUID); a name
    of no node matches no node."""
    if ident is None:
        return None
    if repo.is_uuid_like(ident):
        return repo.canonical_uuid(ident, what="parent_node to be a UUID or a name")
    row = conn.execute(sa.select(t.nodes.c.uuid).where(t.nodes.c.name == ident)).first()
    return str(row.uuid) if row is not None else ident


def _check_filter_names(call: Call) -> None:
    check_query(call.query, LIST_QUERY, what="listing nodes")
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
    """Ids of the nodes the hash ring gives the live conductor ``hostname``."""
    timeout = call.deps.settings.conductor.heartbeat_timeout
    rings = repo.conductor_rings(conn, timeout=timeout)
    groups = [m.conductor_group for m in rings.members if m.hostname == hostname]
    n = t.nodes.c
    rows = conn.execute(
        sa.select(n.id, n.uuid, n.conductor_group, n.driver).where(n.conductor_group.in_(groups))
    )
    return [
        r.id
        for r in rows
        if rings.owner(r.uuid, group=r.conductor_group, hardware_type=r.driver) == hostname
    ]


def list_nodes(
    call: Call, *, detail_path: bool = False, chassis_id: int | None = None
) -> dict[str, Any]:
    """A page of nodes as GET /v1/nodes[/detail] renders it."""
    listing = _listing(call, detail_path=detail_path)
    redactions = call.deps.policy.node_redactions(call.context)
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
            n,
            related,
            the_plan=the_plan,
            base_url=call.base_url,
            version=call.version,
            redactions=redactions,
        )
        for n in nodes
    ]
    return collection(
        "nodes",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        # one node at most has an instance: no next page, as in Ironic
        last_marker=None
        if filters.instance_uuid
        else last_marker([n["uuid"] for n in nodes], listing.page.limit),
    )


def _listing(call: Call, *, detail_path: bool) -> Listing:
    return parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=view.SORTABLE,
        known_fields=view.visible_fields(call.version),
        newer_fields=view.FIELDS,
        version=call.version,
        detail_path=detail_path,
    )


@endpoint(
    "baremetal:node:list",
    doc=Operation("List nodes", answers={200: _LIST}, query=LIST_QUERY),
)
def get_nodes(call: Call) -> object:
    return list_nodes(call)


@endpoint(
    "baremetal:node:list",
    doc=Operation("List nodes with every field", answers={200: _LIST}, query=LIST_QUERY),
)
def get_nodes_detail(call: Call) -> object:
    return list_nodes(call, detail_path=True)


# ------------------------------------------------------------------------- one node


def render_one(
    conn: sa.Connection,
    call: Call,
    *,
    node: Node,
    fields: tuple[str, ...] | None = None,
    new: bool = False,
) -> dict[str, Any]:
    """The node's document; ``new``: the node was just created."""
    the_plan = view.plan(call.version, fields)
    row = view.row_of(node)
    related = view.load_related(
        conn,
        [row],
        the_plan=the_plan,
        heartbeat_timeout=call.deps.settings.conductor.heartbeat_timeout,
        new=new,
    )
    return view.render_node(
        row,
        related,
        the_plan=the_plan,
        base_url=call.base_url,
        version=call.version,
        redactions=call.deps.policy.node_redactions(call.context),
    )


@endpoint(
    "baremetal:node:get",
    doc=Operation("Show a node", answers={200: view.NODE}, query=(fields_param(view.FIELDS),)),
)
def get_node(call: Call) -> object:
    fields = parse_fields(
        call.query.get("fields"),
        view.visible_fields(call.version),
        version=call.version,
        newer=view.FIELDS,
    )
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
        return render_one(conn, call, node=node, fields=fields)


@endpoint(
    "baremetal:node:create",
    body=True,
    checks_itself=True,
    doc=Operation(
        "Enroll a node",
        answers={201: view.NODE},
        body=body(node_fields.CREATABLE, required=("driver",), name="NodeCreate"),
        examples=(
            {"driver": "fake-hardware"},
            {"driver": "ipmi", "name": "rack1-node7", "resource_class": "gold"},
        ),
        description="A project-scoped administrator's node is owned by its project "
        "(baremetal:node:create:self_owned_node).",
    ),
)
def create_node(call: Call) -> object:
    self_owned = _authorize_create(call)
    body = validate_body(
        call.body, node_fields.CREATABLE, what="node", version=call.version, required=("driver",)
    )
    if self_owned and call.context.system_scope != "all":
        _own(body, project=call.context.project)
    image_sources.check_instance_info(
        call.context, call.deps.settings, before={}, after=body.get("instance_info") or {}
    )
    with call.deps.db.read() as conn:
        values = node_fields.to_columns(conn, body)
        if values.get("parent_node") is not None:
            values["parent_node"] = check_parent(
                conn, call, owner=values.get("owner"), ident=values["parent_node"]
            )
    if not allows("enroll", call.version):
        values["provision_state"] = "available"
    node = call.deps.conductor.call(CreateNode(values), context=call.context)
    call.audit.node(uuid=node.uuid)
    with call.deps.db.read() as conn:
        doc = render_one(conn, call, node=node, new=True)
    return Reply(201, doc, {"Location": call.url("v1", "nodes", node.uuid)})


def _authorize_create(call: Call) -> bool:
    """Whether the caller creates a node for its own project (Ironic's
    project_admin_can_manage_own_nodes, on by default) rather than as a system admin.

    Raises:
        Forbidden: neither baremetal:node:create:self_owned_node nor
            baremetal:node:create lets the caller create nodes.
    """
    if call.allows("baremetal:node:create:self_owned_node"):
        call.enforce("baremetal:node:create:self_owned_node")
        return True
    call.enforce("baremetal:node:create")
    return False


def _own(body: dict[str, Any], *, project: str | None) -> None:
    """A node a project-scoped caller creates belongs to its project.

    Raises:
        InvalidInput: the body names another owner.
    """
    requested = body.get("owner")
    if requested and requested != project:
        raise InvalidInput(
            "Cannot create a node as a project scoped admin with an owner other than "
            "your own project."
        )
    body["owner"] = project


@endpoint("baremetal:node:delete", doc=Operation("Delete a node", answers={204: None}))
def delete_node(call: Call) -> object:
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
    target = lookup.target(node)
    # a project's admin may delete the nodes the project owns (Ironic's
    # project_admin_can_manage_own_nodes, on by default)
    if not call.allows("baremetal:node:delete", target):
        call.enforce("baremetal:node:delete:self_owned_node", target)
    call.deps.conductor.call(DestroyNode(node.id), context=call.context)
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


_RESET = flag(
    "reset_interfaces",
    "With a driver change: every interface the patch does not set takes the new "
    "hardware type's default.",
    feature="reset_interfaces",
)


@endpoint(
    "baremetal:node:update",
    body=True,
    doc=Operation(
        "Update a node (JSON Patch)",
        answers={200: view.NODE},
        body=patch(node_fields.PATCHABLE, name="NodePatch"),
        query=(_RESET,),
        examples=(
            [{"op": "add", "path": "/extra/rack", "value": "r1"}],
            [{"op": "replace", "path": "/description", "value": "GPU box"}],
        ),
        description="Each path has its own rule where Ironic has one (x-policy-rules).",
    ),
)
def patch_node(call: Call) -> object:
    reset = _reset_interfaces(call)
    # with reset_interfaces, an interface the patch names is kept even if unchanged
    keep = _INTERFACE_FIELDS if reset else frozenset()
    rules = update_rules(call.body)
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action=rules[0])
        for rule in rules[1:]:
            call.enforce(rule, lookup.target(node))
        _check_owner_change(call, node)
        before = patch_document(conn, node)
        changes = patching.changes(
            before, call.body, spec=PATCHABLE, version=call.version, keep=keep
        )
        if "instance_info" in changes:
            image_sources.check_instance_info(
                call.context,
                call.deps.settings,
                before=node.instance_info,
                after=changes["instance_info"] or {},
            )
        values = node_fields.to_columns(conn, changes)
        if values.get("parent_node") is not None:
            values["parent_node"] = check_parent(
                conn, call, owner=values.get("owner", node.owner), ident=values["parent_node"]
            )
            if values["parent_node"] == node.uuid:
                raise InvalidInput(f"Node {node.uuid} can not be its own parent_node.")
        _sync_instance_name(node, values)
    if reset and "driver" not in values:
        raise InvalidInput(
            "The reset_interfaces parameter can only be used when changing the node's driver."
        )
    if values:
        node = call.deps.conductor.call(
            UpdateNode(node.id, values, reset_interfaces=reset), context=call.context
        )
    with call.deps.db.read() as conn:
        return render_one(conn, call, node=node)


#: PATCH path -> the rule guarding it: Ironic's table, the first matching prefix wins
_PATCH_RULES = (
    ("/instance_info", "baremetal:node:update_instance_info"),
    ("/extra", "baremetal:node:update_extra"),
    ("/driver_info", "baremetal:node:update:driver_info"),
    ("/properties", "baremetal:node:update:properties"),
    ("/chassis_uuid", "baremetal:node:update:chassis_uuid"),
    ("/instance_uuid", "baremetal:node:update:instance_uuid"),
    ("/lessee", "baremetal:node:update:lessee"),
    ("/owner", "baremetal:node:update:owner"),
    ("/driver", "baremetal:node:update:driver_interfaces"),
    ("/network_data", "baremetal:node:update:network_data"),
    ("/conductor_group", "baremetal:node:update:conductor_group"),
    ("/name", "baremetal:node:update:name"),
    ("/retired", "baremetal:node:update:retired"),
    ("/instance_name", "baremetal:node:update_instance_info"),
    ("/shard", "baremetal:node:update:shard"),
    ("/parent_node", "baremetal:node:update:parent_node"),
    ("/disable_power_off", "baremetal:node:update:disable_power_off"),
)
_FALSE = frozenset({"f", "false", "off", "n", "no", "0"})


def update_rules(patch: object) -> list[str]:
    """The policy rules a node PATCH document needs, as Ironic derives them: the
    rule of each path that has one, plus ``baremetal:node:update`` when some path has
    none (or the document names no path at all)."""
    rules: list[str] = []
    generic = False
    for operation in patch if isinstance(patch, list) else ():
        rule = _patch_rule(operation) if isinstance(operation, dict) else None
        if rule is None:
            generic = True
        elif rule not in rules:
            rules.append(rule)
    if generic or not rules:
        rules.append("baremetal:node:update")
    return rules


def _patch_rule(operation: dict[str, Any]) -> str | None:
    path = operation.get("path")
    if not isinstance(path, str):
        return None
    for prefix, rule in _PATCH_RULES:
        if path.startswith(prefix):
            return rule
    if path.lstrip("/") in _INTERFACE_FIELDS:
        return "baremetal:node:update:driver_interfaces"
    if path.startswith("/automated_clean") and _is_false(operation.get("value")):
        return "baremetal:node:disable_cleaning"
    return None


def _is_false(value: object) -> bool:
    """oslo's bool_from_string(value) is False."""
    if isinstance(value, bool):
        return not value
    return value is not None and str(value).strip().lower() in _FALSE


def check_parent(conn: sa.Connection, call: Call, *, owner: str | None, ident: str) -> str:
    """The UUID of the parent node ``ident`` names, which the caller must see and
    which must have the child's owner (Ironic's authorize_node_link: the same answer
    for a node that does not exist, so as not to tell).

    Raises:
        InvalidInput: no such node the caller may see, or another owner.
    """
    refused = InvalidInput(
        f"Unable to apply the requested parent_node '{ident}'. Requested value was invalid."
    )
    try:
        parent = lookup.node(conn, call, ident=ident, action=lookup.NODE_GET)
    except (NotFound, Forbidden, InvalidInput):
        raise refused from None
    if parent.owner != owner:
        raise refused
    return parent.uuid


def _sync_instance_name(node: Node, values: dict[str, Any]) -> None:
    """As Ironic: an instance_info ``display_name`` names the instance when the node
    has no instance_name yet."""
    info = values.get("instance_info")
    if (
        isinstance(info, dict)
        and isinstance(info.get("display_name"), str)
        and info["display_name"]
        and not node.instance_name
        and "instance_name" not in values
    ):
        values["instance_name"] = info["display_name"][:255]


def _check_owner_change(call: Call, node: Node) -> None:
    """A deployed node changes owner only by baremetal:node:update_owner_provisioned.

    Raises:
        Conflict: the patch sets the owner of an active node the caller may not give
            away (Ironic: 409).
    """
    sets_owner = any(
        isinstance(op, dict) and op.get("path") == "/owner" and op.get("op") in ("add", "replace")
        for op in (call.body if isinstance(call.body, list) else ())
    )
    if (
        sets_owner
        and node.provision_state == ProvisionState.ACTIVE
        and not call.allows("baremetal:node:update_owner_provisioned", lookup.target(node))
    ):
        raise Conflict(f'Cannot update owner of node "{node.uuid}" while it is in state "active".')


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
