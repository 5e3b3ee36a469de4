"""/v1/allocations and /v1/nodes/{node}/allocation (API 1.52; update 1.57, backfill
1.58, owner 1.60).

An allocation is created ``allocating`` and a conductor finds it a node right after
(see :class:`metalcast.calls.CreateAllocation`); clients poll it until ``active`` or
``error``, as with Ironic.  A project's allocation belongs to the caller's project, which must own
or lease the node it gets.

The policy is applied as Ironic's allocation controller applies it:
``baremetal:allocation:list_all`` lists every allocation, ``...:list`` those of the
caller's project; ``...:create``, or else ``...:create_restricted``, lets a caller
create one, and only ``...:create_restricted`` lets a project's caller name another
owner or pick nodes outside its project; ``...:get`` on the allocation's owner decides
whether the caller may know it exists (404), then ``...:update``/``...:delete`` (403).
A node's allocation: ``baremetal:node:get`` on the node, then
``baremetal:node:get_allocation``/``...:delete_allocation`` on the allocation and its
node.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import lookup, patching, policy, versions
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
    parse_listing,
)
from metalcast.api.schema import (
    MAX_TRAITS,
    Field,
    check_logical_name,
    check_trait,
    check_uuid,
    describe,
    validate_body,
)
from metalcast.api.versions import FEATURES, allows
from metalcast.api.views import allocations as view
from metalcast.calls import CreateAllocation, DestroyAllocation
from metalcast.db import allocations as repo_alloc
from metalcast.db import tables as t
from metalcast.db.models import Allocation
from metalcast.errors import Forbidden, InvalidInput, NotAcceptable, NotFound
from metalcast.rpc.client import ConductorClient

_NOT_SERVED = "The API version does not allow allocations"
_A = "baremetal:allocation:"
LIST_ALL = f"{_A}list_all"
CREATE = f"{_A}create"
CREATE_RESTRICTED = f"{_A}create_restricted"


def require(call: Call, feature: str, *, message: str = _NOT_SERVED) -> None:
    """Refuse a request older than ``feature``: 404 for reads, 405 for writes."""
    versions.require(feature, call.version, method=call.method, message=message)


def _render(call: Call, allocation: Allocation, *, fields: tuple[str, ...] | None = None) -> object:
    with call.deps.db.read() as conn:
        uuids = repo_alloc.node_uuids(conn, [allocation.node_id])
    return view.render_allocation(
        allocation, uuids, base_url=call.base_url, version=call.version, fields=fields
    )


def _fields(call: Call) -> tuple[str, ...] | None:
    """``?fields=``; ``owner`` before 1.60 is 406, as in Ironic."""
    value = call.query.get("fields")
    if value and "owner" in value.split(",") and not allows("allocation_owner", call.version):
        raise NotAcceptable("The owner field of allocations requires API version 1.60 or later.")
    return parse_fields(value, view.allocation_fields(call.version), version=call.version)


# --------------------------------------------------------------------------- listing

LIST_QUERY = (
    Param("node", string(), "The allocation of this node (UUID or name)."),
    Param("resource_class", string(), "Allocations for this resource class."),
    Param("state", string(enum=list(repo_alloc.STATES)), "Allocations in this state."),
    Param("owner", string(), "Allocations of this project.", "allocation_owner"),
    *paging(sortable=view.ALLOCATION_SORTABLE, fields=view.ALLOCATION_FIELDS, detail_feature=None),
)
#: writes before 1.52 are 405, as in Ironic
_WRITE_ERRORS = frozenset({405})


def _filters(conn: sa.Connection, call: Call, *, owner: str | None) -> repo_alloc.AllocationFilters:
    query = call.query
    check_query(query, LIST_QUERY, what="listing allocations")
    state = query.get("state")
    if state is not None and state not in repo_alloc.STATES:
        raise InvalidInput(
            f"Invalid allocation state '{state}'. Acceptable values are: "
            f"{', '.join(repo_alloc.STATES)}."
        )
    node_id = None
    if query.get("node"):
        node_id = lookup.node_named(conn, call, ident=query["node"]).id
    return repo_alloc.AllocationFilters(
        node_id=node_id,
        resource_class=query.get("resource_class"),
        state=state,
        owner=owner,
    )


def _listed_owner(call: Call) -> str | None:
    """The owner a listing is limited to (Ironic's ``check_list_policy``): the one
    asked for under ``baremetal:allocation:list_all``, else the caller's project
    under ``...:list``; asking for another project's is refused.

    Raises:
        Forbidden: the caller may not list allocations, or not another project's.
        NotAcceptable: ``?owner=`` before 1.60.
    """
    owner = call.query.get("owner")
    if owner is not None and owner != call.context.project and not call.allows(LIST_ALL):
        raise policy.forbidden(LIST_ALL)
    project = call.list_scope("allocation")
    if owner is not None and not allows("allocation_owner", call.version):
        raise NotAcceptable("Filtering allocations by owner requires API version 1.60 or later.")
    return owner if project is None else project


def _check_each(call: Call, found: list[Allocation]) -> None:
    """``baremetal:allocation:get`` on every allocation listed, as Ironic checks it
    (once per owner: the answer depends on nothing else).  Raises Forbidden."""
    for owner in dict.fromkeys(a.owner for a in found):
        call.enforce(lookup.ALLOCATION_GET, policy.allocation_target(owner))


@endpoint(
    "baremetal:allocation:list",
    doc=Operation(
        "List allocations",
        answers={200: collection_of("allocations", view.ALLOCATION)},
        query=LIST_QUERY,
        feature="allocations",
        description="A project's caller sees its project's allocations only.",
    ),
)
def get_allocations(call: Call) -> object:
    require(call, "allocations")
    owner = _listed_owner(call)
    fields = _fields(call)
    listing = parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=view.ALLOCATION_SORTABLE,
        known_fields=view.allocation_fields(call.version),
        version=call.version,
    )
    with call.deps.db.read() as conn:
        filters = _filters(conn, call, owner=owner)
        found = repo_alloc.list_allocations(conn, filters, listing.page)
        uuids = repo_alloc.node_uuids(conn, [a.node_id for a in found])
    _check_each(call, found)
    docs = [
        view.render_allocation(
            a, uuids, base_url=call.base_url, version=call.version, fields=fields
        )
        for a in found
    ]
    return collection(
        "allocations",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        last_marker=last_marker([a.uuid for a in found], listing.page.limit),
    )


_FIELDS_QUERY = (fields_param(view.ALLOCATION_FIELDS),)


@endpoint(
    "baremetal:allocation:get",
    doc=Operation(
        "Show an allocation",
        answers={200: view.ALLOCATION},
        query=_FIELDS_QUERY,
        feature="allocations",
    ),
)
def get_allocation(call: Call) -> object:
    require(call, "allocations")
    with call.deps.db.read() as conn:
        found = lookup.allocation(
            conn, call, ident=call.args["allocation"], action=lookup.ALLOCATION_GET
        )
    fields = _fields(call)
    return _render(call, found, fields=fields)


# --------------------------------------------------------------------------- create


#: the most candidate nodes one allocation may name (each is a bound SQL parameter)
MAX_CANDIDATES = 1000


def _check_candidates(name: str, value: Any) -> None:
    if len(value) > MAX_CANDIDATES:
        raise InvalidInput(
            f"Invalid value for field '{name}': at most {MAX_CANDIDATES} candidate nodes "
            f"may be given; {len(value)} were."
        )
    if not all(isinstance(v, str) for v in value):
        raise InvalidInput(
            f"Invalid value for field '{name}': {describe(value)} is not a list of node "
            "UUIDs or names."
        )


def _check_traits(name: str, value: Any) -> None:
    if len(value) > MAX_TRAITS:  # no node has more: such an allocation could never match
        raise InvalidInput(
            f"Invalid value for field '{name}': a node has at most {MAX_TRAITS} traits; "
            f"{len(value)} were requested."
        )
    for trait in value:
        check_trait(trait)


CREATABLE: Mapping[str, Field] = {
    "uuid": Field(check=check_uuid),
    "name": Field(),
    "resource_class": Field(max_length=80),
    "traits": Field("list", max_length=None, check=_check_traits),
    "candidate_nodes": Field("list", max_length=None, check=_check_candidates),
    "extra": Field("object", max_length=None),
    "node": Field(),
    "owner": Field(),
}


def _body(call: Call) -> dict[str, Any]:
    """The validated POST body, with Ironic's version rules and messages."""
    body = validate_body(call.body, CREATABLE, what="allocation", version=call.version)
    if "node" in body and not allows("allocation_backfill", call.version):
        raise InvalidInput("Cannot set node when creating an allocation in this API version")
    if "owner" in body and not allows("allocation_owner", call.version):
        raise NotAcceptable(
            f"The field 'owner' requires API version {FEATURES['allocation_owner']} or later; "
            f"this request asked for {call.version}."
        )
    name = body.get("name")
    if name is not None:
        try:
            check_logical_name("name", name)
        except InvalidInput:
            raise InvalidInput(f"Cannot create allocation with invalid name '{name}'") from None
    return {k: v for k, v in body.items() if v is not None}


def _authorize_create(call: Call, body: Mapping[str, Any]) -> tuple[str | None, bool]:
    """The allocation's owner, and whether the caller may create allocations beyond
    its own project (``baremetal:allocation:create_restricted``).

    As Ironic: ``...:create`` lets the caller in; failing that, ``...:create_restricted``
    does, for an allocation of the caller's own project.  A caller not scoped to the
    system gets its project as owner unless it names one; naming another project needs
    ``...:create_restricted``.  A caller scoped to neither the system nor a project
    may not create allocations (Ironic would let it allocate any node).

    Raises:
        Forbidden: as above.
    """
    asked, project = body.get("owner"), call.context.project
    try:
        call.enforce(CREATE)
    except Forbidden:
        if project and asked and asked != project:
            raise
        call.enforce(CREATE_RESTRICTED)
        asked = project
    restricted = call.allows(CREATE_RESTRICTED)
    if call.context.system_scope == "all":
        return asked, restricted
    if not project:
        raise Forbidden(
            f"{policy.forbidden(CREATE).message}: an allocation needs a project; use "
            "credentials scoped to one."
        )
    if asked and asked != project and not restricted:
        raise Forbidden(
            f"Cannot create allocation with an owner Project ID value {asked} not matching "
            f"the requester Project ID {project}. Policy {CREATE_RESTRICTED} is required for "
            "this capability."
        )
    return asked or project, restricted


def resolve_candidates(conn: sa.Connection, idents: list[str], *, project: str | None) -> list[str]:
    """Node UUIDs or names as UUIDs, in their order; ``project``: only nodes it owns
    or leases count.  Raises InvalidInput naming the nodes not found."""
    n = t.nodes.c
    query = sa.select(n.uuid, n.name).where(sa.or_(n.uuid.in_(idents), n.name.in_(idents)))
    if project is not None:
        query = query.where(sa.or_(n.owner == project, n.lessee == project))
    mapping: dict[str, str] = {}
    for row in conn.execute(query):
        mapping[row.uuid] = row.uuid
        if row.name:
            mapping[row.name] = row.uuid
    missing = [ident for ident in idents if ident not in mapping]
    if missing:
        raise InvalidInput(f"Nodes cannot be found: {', '.join(missing)}")
    return list(dict.fromkeys(mapping[ident] for ident in idents))


@endpoint(
    CREATE,
    body=True,
    checks_itself=True,
    doc=Operation(
        "Ask for a node: by resource class, traits and candidates, or a given one (backfill)",
        answers={201: view.ALLOCATION},
        body=body(CREATABLE, name="AllocationCreate"),
        feature="allocations",
        errors=_WRITE_ERRORS,
        description="The allocation is created allocating; a conductor finds it a node "
        "right after (poll it until active or error). node needs 1.58, owner 1.60.",
        examples=({"resource_class": "baremetal", "traits": ["CUSTOM_GPU"]},),
    ),
)
def create_allocation(call: Call) -> object:
    require(call, "allocations")
    body = _body(call)
    owner, restricted = _authorize_create(call, body)
    # a caller limited to its project picks candidate nodes among that project's only
    within = None if restricted else call.context.project
    values: dict[str, Any] = {k: v for k, v in body.items() if k != "node"}
    values["owner"] = owner
    node_id = None
    with call.deps.db.read() as conn:
        if "node" in body:
            node = lookup.node_named(conn, call, ident=body["node"])
            node_id = node.id
            values.setdefault("resource_class", node.resource_class)
            if node.instance_uuid:
                values.setdefault("uuid", node.instance_uuid)
        if values.get("candidate_nodes"):
            values["candidate_nodes"] = resolve_candidates(
                conn, values["candidate_nodes"], project=within
            )
    if not values.get("resource_class") and node_id is None:
        raise InvalidInput("The resource_class field is mandatory when not backfilling")
    conductor: ConductorClient = call.deps.conductor
    allocation = conductor.call(CreateAllocation(values, node_id=node_id), context=call.context)
    location = call.url("v1", "allocations", allocation.uuid)
    return Reply(201, _render(call, allocation), {"Location": location})


# ---------------------------------------------------------------------------- update

_PATCHABLE = ("name", "extra")
PATCHABLE = patching.Patchable(
    fields={
        "name": Field(check=check_logical_name),
        "extra": Field("object", nullable=False, max_length=None),
    },
    readonly=frozenset(view.ALLOCATION_FIELDS),
    removed={"extra": {}},
)


def _check_patch(body: object) -> None:
    """Ironic's messages for a path other than ``/name`` or ``/extra`` and for an
    invalid new name (the rest is :func:`patching.changes`'s to say)."""
    ops = body if isinstance(body, list) else []
    for op in ops:
        path = op.get("path") if isinstance(op, dict) else None
        if not isinstance(path, str):
            continue
        root = path.split("/")[1] if path.startswith("/") else path
        if root not in _PATCHABLE:
            raise InvalidInput(
                f"Cannot patch {path}. Only the following can be updated: {', '.join(_PATCHABLE)}"
            )
        value = op.get("value")
        if root == "name" and op.get("op") != "remove" and value is not None:
            try:
                check_logical_name("name", value)
            except InvalidInput:
                raise InvalidInput(
                    f"Cannot update allocation with invalid name '{value}'"
                ) from None


@endpoint(
    "baremetal:allocation:update",
    body=True,
    doc=Operation(
        "Rename an allocation or change its extra (JSON Patch)",
        answers={200: view.ALLOCATION},
        body=patch(_PATCHABLE, name="AllocationPatch"),
        feature="allocation_update",
        errors=_WRITE_ERRORS,
    ),
)
def patch_allocation(call: Call) -> object:
    require(
        call, "allocation_update", message="The API version does not allow updating allocations"
    )
    with call.deps.db.begin() as conn:
        found = lookup.allocation(
            conn, call, ident=call.args["allocation"], action="baremetal:allocation:update"
        )
        _check_patch(call.body)
        before = {"name": found.name, "extra": found.extra}
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        if changes:
            repo_alloc.update_allocation(conn, found.id, changes)
            found = repo_alloc.get_allocation_by_id(conn, found.id)
    return _render(call, found)


# ---------------------------------------------------------------------------- delete


@endpoint(
    "baremetal:allocation:delete",
    doc=Operation(
        "Delete an allocation (its node is freed)",
        answers={204: None},
        feature="allocations",
        errors=_WRITE_ERRORS,
    ),
)
def delete_allocation(call: Call) -> object:
    require(call, "allocations")
    with call.deps.db.read() as conn:
        found = lookup.allocation(
            conn, call, ident=call.args["allocation"], action="baremetal:allocation:delete"
        )
    call.deps.conductor.call(DestroyAllocation(found.id), context=call.context)
    return Reply(204)


# ------------------------------------------------------------- a node's allocation


def _node_allocation(call: Call, *, action: str) -> Allocation:
    """The allocation of the node in the path, if the caller may see the node and
    ``action`` lets it at the allocation (checked on the allocation's owner and the
    node's owner and lessee).  A node that does not exist (or that the caller may
    not see) is 400 for GET, as in Ironic, 404 for DELETE.

    Raises:
        InvalidInput: GET, and no node the caller may see.
        NotFound: DELETE and no node the caller may see; or the node has no allocation.
        Forbidden: ``action`` refuses.
    """
    ident = call.args["node"]
    with call.deps.db.read() as conn:
        if call.method == "GET":
            node = lookup.node_named(conn, call, ident=ident)
        else:
            node = lookup.node(conn, call, ident=ident, action=lookup.NODE_GET)
        found = repo_alloc.allocation_of_node(conn, node.id)
    if found is None:
        raise NotFound(f"Allocation for node {ident} was not found")
    target = policy.allocation_target(found.owner, node_owner=node.owner, node_lessee=node.lessee)
    call.enforce(action, target)
    return found


@endpoint(
    "baremetal:node:get_allocation",
    doc=Operation(
        "Show a node's allocation",
        answers={200: view.ALLOCATION},
        query=_FIELDS_QUERY,
        feature="allocations",
        description="A node the caller may not see is 400, as in Ironic.",
    ),
)
def get_node_allocation(call: Call) -> object:
    if not allows("allocations", call.version):
        raise NotFound(_NOT_SERVED)
    found = _node_allocation(call, action="baremetal:node:get_allocation")
    fields = _fields(call)
    return _render(call, found, fields=fields)


@endpoint(
    "baremetal:node:delete_allocation",
    doc=Operation("Delete a node's allocation", answers={204: None}, feature="allocations"),
)
def delete_node_allocation(call: Call) -> object:
    if not allows("allocations", call.version):
        raise NotFound(_NOT_SERVED)
    found = _node_allocation(call, action="baremetal:node:delete_allocation")
    call.deps.conductor.call(DestroyAllocation(found.id), context=call.context)
    return Reply(204)


ROUTES = [
    Route("/v1/allocations", get_allocations, methods=["GET"]),
    Route("/v1/allocations", create_allocation, methods=["POST"]),
    Route("/v1/allocations/{allocation}", get_allocation, methods=["GET"]),
    Route("/v1/allocations/{allocation}", patch_allocation, methods=["PATCH"]),
    Route("/v1/allocations/{allocation}", delete_allocation, methods=["DELETE"]),
    Route("/v1/nodes/{node}/allocation", get_node_allocation, methods=["GET"]),
    Route("/v1/nodes/{node}/allocation", delete_node_allocation, methods=["DELETE"]),
]
