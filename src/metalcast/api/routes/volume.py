"""/v1/volume: volume connectors and targets (1.32), and their lists per node.

Connectors and targets are served alike; a :class:`Kind` says what differs (fields,
list defaults, sort keys, repository reads, conductor writes).  Below 1.32 every
endpoint is "not found", as in Ironic.  Writes go through the conductor, which
refuses changes and deletions unless the node is powered off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from starlette.routing import BaseRoute, Route

from metalcast.api import lookup, patching
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import Named, Operation, Param, body, patch, string
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
from metalcast.api.schema import Field, check_choice, check_ident, check_uuid, validate_body
from metalcast.api.versions import allows
from metalcast.api.views import volume as view
from metalcast.api.views.ports import Uuids
from metalcast.calls import (
    CreateVolumeConnector,
    CreateVolumeTarget,
    DestroyVolumeConnector,
    DestroyVolumeTarget,
    UpdateVolumeConnector,
    UpdateVolumeTarget,
)
from metalcast.db import repository as repo
from metalcast.db import volumes
from metalcast.db.models import JSONDict
from metalcast.db.tables import VOLUME_CONNECTOR_TYPES
from metalcast.errors import NotFound
from metalcast.rpc.client import ConductorClient

Record = view.Record
Lister = Callable[..., Sequence[Record]]
Finder = Callable[..., Record]


@dataclass(frozen=True, slots=True)
class Kind:
    """What differs between connectors and targets."""

    #: the collection's name in paths and list bodies: "connectors" or "targets"
    name: str
    #: in messages: "volume connector"
    what: str
    fields: tuple[str, ...]
    list_fields: tuple[str, ...]
    sortable: frozenset[str]
    creatable: Mapping[str, Field]
    required: tuple[str, ...]
    patchable: patching.Patchable
    #: the response document
    document: Named
    lister: Lister
    finder: Finder
    create: Callable[[Call, JSONDict], Record]
    update: Callable[[Call, int, JSONDict], Record]
    destroy: Callable[[Call, int], None]

    @property
    def query(self) -> tuple[Param, ...]:
        """The parameters a list takes."""
        return (
            Param("node", string(), f"The {self.what}s of this node (UUID or name)."),
            *paging(sortable=self.sortable, fields=self.fields, detail_feature="volume"),
        )


def _conductor(call: Call) -> ConductorClient:
    return call.deps.conductor


_NODE = Field(nullable=False, check=check_ident)
_EXTRA = Field("object", nullable=False, max_length=None)

_CONNECTOR_FIELDS: Mapping[str, Field] = {
    "node_uuid": _NODE,
    "type": Field(nullable=False, max_length=32, check=check_choice(VOLUME_CONNECTOR_TYPES)),
    "connector_id": Field(nullable=False),
    "extra": _EXTRA,
}
CONNECTORS = Kind(
    name="connectors",
    what="volume connector",
    fields=view.CONNECTOR_FIELDS,
    list_fields=view.CONNECTOR_LIST_FIELDS,
    sortable=view.CONNECTOR_SORTABLE,
    creatable={"uuid": Field(check=check_uuid), **_CONNECTOR_FIELDS},
    required=("node_uuid", "type", "connector_id"),
    patchable=patching.Patchable(
        fields=_CONNECTOR_FIELDS,
        readonly=frozenset(view.CONNECTOR_FIELDS),
        removed={"extra": {}},
        mandatory=frozenset({"node_uuid", "type", "connector_id"}),
    ),
    document=view.CONNECTOR,
    lister=volumes.list_volume_connectors,
    finder=lookup.volume_connector,
    create=lambda call, values: _conductor(call).call(
        CreateVolumeConnector(values), context=call.context
    ),
    update=lambda call, row_id, values: _conductor(call).call(
        UpdateVolumeConnector(row_id, values), context=call.context
    ),
    destroy=lambda call, row_id: _conductor(call).call(
        DestroyVolumeConnector(row_id), context=call.context
    ),
)

_TARGET_FIELDS: Mapping[str, Field] = {
    "node_uuid": _NODE,
    "volume_type": Field(nullable=False, max_length=64),
    "properties": Field("object", nullable=False, max_length=None),
    "boot_index": Field("integer", nullable=False),
    "volume_id": Field(nullable=False, max_length=36),
    "extra": _EXTRA,
}
TARGETS = Kind(
    name="targets",
    what="volume target",
    fields=view.TARGET_FIELDS,
    list_fields=view.TARGET_LIST_FIELDS,
    sortable=view.TARGET_SORTABLE,
    creatable={"uuid": Field(check=check_uuid), **_TARGET_FIELDS},
    required=("node_uuid", "volume_type", "boot_index", "volume_id"),
    patchable=patching.Patchable(
        fields=_TARGET_FIELDS,
        readonly=frozenset(view.TARGET_FIELDS),
        removed={"extra": {}, "properties": {}},
        mandatory=frozenset({"node_uuid", "volume_type", "boot_index", "volume_id"}),
    ),
    document=view.TARGET,
    lister=volumes.list_volume_targets,
    finder=lookup.volume_target,
    create=lambda call, values: _conductor(call).call(
        CreateVolumeTarget(values), context=call.context
    ),
    update=lambda call, row_id, values: _conductor(call).call(
        UpdateVolumeTarget(row_id, values), context=call.context
    ),
    destroy=lambda call, row_id: _conductor(call).call(
        DestroyVolumeTarget(row_id), context=call.context
    ),
)


def _require_volume(call: Call) -> None:
    if not allows("volume", call.version):
        raise NotFound("The resource could not be found.")


# --------------------------------------------------------------------------- reading


#: what a caller without baremetal:volume:view_target_properties sees (Ironic's text)
REDACTED_PROPERTIES = {
    "redacted_contents": "** Value redacted: Requires permission "
    "baremetal:volume:view_target_properties access. Permission denied. **"
}


def _render(
    call: Call,
    kind: Kind,
    records: Sequence[Record],
    fields: tuple[str, ...] | None,
    *,
    created: bool = False,
) -> list[dict[str, Any]]:
    """Documents of ``records``; a target's properties (iSCSI credentials, …) only to
    callers with baremetal:volume:view_target_properties, save in the answer to the
    create request that sent them (as Ironic)."""
    with call.deps.db.read() as conn:
        uuids = Uuids.load(conn, node_ids=[r.node_id for r in records], portgroup_ids=[])
    docs = [
        view.render(
            r,
            all_fields=kind.fields,
            node_uuids=uuids.nodes,
            base_url=call.base_url,
            collection=kind.name,
            fields=fields,
        )
        for r in records
    ]
    hidden = kind is TARGETS and not created
    if hidden and not call.allows("baremetal:volume:view_target_properties"):
        for doc in docs:
            if "properties" in doc:
                doc["properties"] = dict(REDACTED_PROPERTIES)
    return docs


def _node_filter(conn: sa.Connection, call: Call, kind: Kind) -> int | None:
    check_query(call.query, kind.query, what=f"listing {kind.what}s")
    ident = call.query.get("node")
    return lookup.node(conn, call, ident=ident, action=lookup.NODE_GET).id if ident else None


def list_resources(
    call: Call, kind: Kind, *, node_id: int | None = None, detail_path: bool = False
) -> dict[str, Any]:
    """A page of connectors or targets (of node ``node_id`` when given)."""
    _require_volume(call)
    listing = parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=kind.sortable,
        known_fields=kind.fields,
        version=call.version,
        detail_path=detail_path,
        detail_feature="volume",
    )
    with call.deps.db.read() as conn:
        node_filter = _node_filter(conn, call, kind)
        records = kind.lister(
            conn,
            listing.page,
            node_id=node_id if node_id is not None else node_filter,
            node_ids=lookup.listed_node_ids(conn, call, "volume"),
        )
    fields = None if listing.detail else (listing.fields or kind.list_fields)
    return collection(
        kind.name,
        _render(call, kind, records, fields),
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        last_marker=last_marker([r.uuid for r in records], listing.page.limit),
    )


def show(call: Call, kind: Kind) -> dict[str, Any]:
    _require_volume(call)
    fields = parse_fields(call.query.get("fields"), kind.fields, version=call.version)
    with call.deps.db.read() as conn:
        record = kind.finder(conn, call, ident=call.args["ident"], action="baremetal:volume:get")
    return _render(call, kind, [record], fields)[0]


# --------------------------------------------------------------------------- writing


def _to_columns(
    conn: sa.Connection, call: Call, values: Mapping[str, Any], *, record: Record | None = None
) -> JSONDict:
    """API attributes as column values, checking the named node; ``record`` is the
    one a PATCH changes (None: a new one)."""
    columns = {k: v for k, v in values.items() if k != "node_uuid"}
    ident = values.get("node_uuid")
    if ident is not None and record is None:
        action = "baremetal:volume:create"
        columns["node_id"] = lookup.node_to_create_on(conn, call, ident=ident, action=action).id
    elif ident is not None and record is not None:
        current = repo.get_node_by_id(conn, record.node_id)
        node = lookup.node_to_link(conn, call, ident=ident, current=current, field="node_uuid")
        columns["node_id"] = node.id
    return columns


def create(call: Call, kind: Kind) -> Reply:
    _require_volume(call)
    body = validate_body(
        call.body, kind.creatable, what=kind.what, version=call.version, required=kind.required
    )
    with call.deps.db.read() as conn:
        values = _to_columns(conn, call, body)
    record = kind.create(call, values)
    doc = _render(call, kind, [record], None, created=True)[0]
    return Reply(201, doc, {"Location": call.url("v1", "volume", kind.name, record.uuid)})


def update(call: Call, kind: Kind) -> dict[str, Any]:
    _require_volume(call)
    with call.deps.db.read() as conn:
        record = kind.finder(conn, call, ident=call.args["ident"], action="baremetal:volume:update")
        before = {k: getattr(record, k) for k in kind.patchable.fields if k != "node_uuid"}
        before["node_uuid"] = Uuids.load(conn, node_ids=[record.node_id], portgroup_ids=[]).nodes[
            record.node_id
        ]
        changes = patching.changes(before, call.body, spec=kind.patchable, version=call.version)
        values = _to_columns(conn, call, changes, record=record)
    if values:
        record = kind.update(call, record.id, values)
    return _render(call, kind, [record], None)[0]


def delete(call: Call, kind: Kind) -> Reply:
    _require_volume(call)
    with call.deps.db.read() as conn:
        record = kind.finder(conn, call, ident=call.args["ident"], action="baremetal:volume:delete")
    kind.destroy(call, record.id)
    return Reply(204)


# ---------------------------------------------------------------------------- routes


# Ironic checks baremetal:volume:get for the two link documents without a node: only
# system readers pass; the node's existence is only told to those


_LINKS_DOC = Operation(
    "Links to the volume connectors and targets", answers={200: view.ROOT}, feature="volume"
)


@endpoint("baremetal:volume:get", doc=_LINKS_DOC)
def get_volume(call: Call) -> object:
    _require_volume(call)
    call.enforce("baremetal:volume:get")
    return view.root_links(call.base_url, "")


@endpoint("baremetal:volume:get", doc=_LINKS_DOC)
def get_node_volume(call: Call) -> object:
    _require_volume(call)
    call.enforce("baremetal:volume:get")
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
    return view.root_links(call.base_url, f"nodes/{node.uuid}/")


def _node_list(kind: Kind) -> Callable[[Call], object]:
    def handler(call: Call) -> object:
        _require_volume(call)
        with call.deps.db.read() as conn:
            node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
        return list_resources(call, kind, node_id=node.id)

    return handler


_RULE = "baremetal:volume:"


def _docs(kind: Kind) -> dict[str, Operation]:
    """What each endpoint of ``kind`` takes and answers."""
    listed = collection_of(kind.name, kind.document)
    name = kind.document.name
    return {
        "list": Operation(
            f"List {kind.what}s", answers={200: listed}, query=kind.query, feature="volume"
        ),
        "detail": Operation(
            f"List {kind.what}s with every field",
            answers={200: listed},
            query=kind.query,
            feature="volume",
        ),
        "create": Operation(
            f"Create a {kind.what}",
            answers={201: kind.document},
            body=body(kind.creatable, required=kind.required, name=f"{name}Create"),
            feature="volume",
        ),
        "get": Operation(
            f"Show a {kind.what}",
            answers={200: kind.document},
            query=(fields_param(kind.fields),),
            feature="volume",
        ),
        "update": Operation(
            f"Update a {kind.what} (JSON Patch; its node powered off)",
            answers={200: kind.document},
            body=patch(kind.patchable.fields, name=f"{name}Patch"),
            feature="volume",
        ),
        "delete": Operation(
            f"Delete a {kind.what} (its node powered off)", answers={204: None}, feature="volume"
        ),
        "node": Operation(
            f"List a node's {kind.what}s", answers={200: listed}, query=kind.query, feature="volume"
        ),
    }


def _kind_routes(kind: Kind) -> list[BaseRoute]:
    base = f"/v1/volume/{kind.name}"
    docs = _docs(kind)
    handlers: list[tuple[str, str, str, Callable[[Call], object], bool, str]] = [
        (base, "GET", "list", lambda call: list_resources(call, kind), False, "list"),
        (
            f"{base}/detail",
            "GET",
            "list",
            lambda call: list_resources(call, kind, detail_path=True),
            False,
            "detail",
        ),
        (base, "POST", "create", lambda call: create(call, kind), True, "create"),
        (f"{base}/{{ident}}", "GET", "get", lambda call: show(call, kind), False, "get"),
        (f"{base}/{{ident}}", "PATCH", "update", lambda call: update(call, kind), True, "update"),
        (f"{base}/{{ident}}", "DELETE", "delete", lambda call: delete(call, kind), False, "delete"),
        (f"/v1/nodes/{{node}}/volume/{kind.name}", "GET", "list", _node_list(kind), False, "node"),
    ]
    return [
        Route(path, endpoint(_RULE + action, body=reads, doc=docs[doc])(handler), methods=[method])
        for path, method, action, handler, reads, doc in handlers
    ]


ROUTES: list[BaseRoute] = [
    Route("/v1/volume", get_volume, methods=["GET"]),
    Route("/v1/nodes/{node}/volume", get_node_volume, methods=["GET"]),
    *_kind_routes(CONNECTORS),
    *_kind_routes(TARGETS),
]
