"""/v1/ports, /v1/nodes/{node}/ports and /v1/portgroups/{portgroup}/ports."""

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
    parse_listing,
)
from metalcast.api.routes.portgroups import node_scope, require_subresources
from metalcast.api.schema import (
    Field,
    check_ident,
    check_logical_name,
    check_mac,
    check_uuid,
    normalize_mac,
    validate_body,
)
from metalcast.api.versions import Version, allows
from metalcast.api.views import ports as view
from metalcast.calls import CreatePort, DestroyPort, UpdatePort
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import Port
from metalcast.errors import Conflict, InvalidInput, NotAcceptable, NotFound

#: Ironic 1.90 to 1.104's OVN VTEP switch keys (removed again in 1.105)
_VTEP_KEYS = frozenset({"vtep-logical-switch", "vtep-physical-switch"})
_LLC_KEYS = (
    frozenset({"switch_id", "port_id", "switch_info", "network_type", "hostname"}) | _VTEP_KEYS
)


#: what ``local_link_connection.network_type`` may be (Ironic 1.64)
_NETWORK_TYPES = ("managed", "unmanaged")


def _check_llc(name: str, value: Any) -> None:
    unknown = sorted(set(value) - _LLC_KEYS)
    if unknown:
        raise InvalidInput(
            f"Invalid {name}: unknown key(s) {', '.join(unknown)}; accepted keys: "
            f"{', '.join(sorted(_LLC_KEYS))}."
        )
    vtep = _VTEP_KEYS & set(value)
    if vtep and vtep != _VTEP_KEYS:
        raise InvalidInput(
            f"Invalid {name}: vtep-logical-switch and vtep-physical-switch go together."
        )
    if "network_type" in value and value["network_type"] not in _NETWORK_TYPES:
        raise InvalidInput(
            f"Invalid {name}: network_type must be one of {', '.join(_NETWORK_TYPES)}, "
            f"not {value['network_type']!r}."
        )


def _check_network_type(values: Mapping[str, Any], version: Version, before: Any = None) -> None:
    """A ``network_type`` in ``local_link_connection`` newer than the request is 406,
    as in Ironic (1.64), unless it is the one the port has."""
    llc = values.get("local_link_connection")
    if not isinstance(llc, dict) or "network_type" not in llc:
        return
    kept = isinstance(before, dict) and before.get("network_type") == llc["network_type"]
    if not kept and not allows("llc_network_type", version):
        raise NotAcceptable(
            "local_link_connection.network_type requires API version 1.64 or later; "
            f"this request asked for {version}."
        )


def _check_vtep(values: Mapping[str, Any], version: Version) -> None:
    """OVN VTEP keys in ``local_link_connection`` outside 1.90 to 1.104 are 406, as
    in Ironic."""
    llc = values.get("local_link_connection")
    if isinstance(llc, dict) and _VTEP_KEYS & set(llc) and not view.vtep_window(version):
        raise NotAcceptable(
            "local_link_connection's vtep-logical-switch and vtep-physical-switch are "
            f"accepted from API version 1.90 to 1.104; this request asked for {version}."
        )


def reads_as_mac(text: str) -> bool:
    """Whether ``text`` is a MAC address written with separators (bare hexadecimal
    digits may well be a name)."""
    try:
        normalize_mac(text)
    except InvalidInput:
        return False
    return not text.isalnum()


def _check_name(name: str, value: Any) -> None:
    """A logical name that does not read as a MAC address: a port path never names a
    port by its MAC (:func:`_ident`), so such a name could not be used."""
    check_logical_name(name, value)
    if reads_as_mac(value):
        raise InvalidInput(
            f"Invalid value for field '{name}': {value} reads as a MAC address; a port's "
            "name must not."
        )


def _ident(call: Call) -> str:
    """The port the path names: by UUID or name, never by MAC address (400, as in
    Ironic); a DELETE only by UUID, as Ironic's.

    Raises:
        InvalidInput: a MAC address; for a DELETE, anything but a UUID.
    """
    ident: str = call.args["port"]
    if call.method == "DELETE":
        return repo.canonical_uuid(ident, what="a port UUID")
    if reads_as_mac(ident):
        raise InvalidInput(
            f"Expected a logical name or UUID but received {ident}. A port is not named by "
            f"its MAC address: list /v1/ports?address={ident} to find it."
        )
    return ident


PATCHABLE_FIELDS: Mapping[str, Field] = {
    "address": Field(nullable=False, check=check_mac),
    "node_uuid": Field(nullable=False, check=check_ident),
    "portgroup_uuid": Field(feature="portgroup_uuid", check=check_ident),
    "local_link_connection": Field("object", max_length=None, feature="port_llc", check=_check_llc),
    "pxe_enabled": Field("boolean", nullable=False, feature="port_llc"),
    "physical_network": Field(max_length=64, feature="physical_network"),
    "extra": Field("object", nullable=False, max_length=None),
    "is_smartnic": Field("boolean", nullable=False, feature="is_smartnic"),
    "name": Field(feature="port_name", check=_check_name),
    "description": Field(feature="port_description"),
    "vendor": Field(max_length=32, feature="port_vendor"),
    "category": Field(max_length=80, feature="port_category"),
    "available_for_dynamic_portgroup": Field(
        "boolean", nullable=False, feature="dynamic_portgroups"
    ),
}
CREATABLE = {"uuid": Field(check=check_uuid), **PATCHABLE_FIELDS}
PATCHABLE = patching.Patchable(
    fields=PATCHABLE_FIELDS,
    readonly=frozenset(view.PORT_FIELDS),
    removed={
        "extra": {},
        "local_link_connection": {},
        "pxe_enabled": True,
        "is_smartnic": False,
        "available_for_dynamic_portgroup": True,
    },
    mandatory=frozenset({"address", "node_uuid"}),
)
LIST_QUERY = (
    Param("node", string(), "Ports of this node (UUID or name)."),
    Param("node_uuid", string(), "Ports of this node (UUID or name)."),
    Param("address", string(), "The port with this MAC address."),
    Param("portgroup", string(), "Ports of this portgroup (UUID or name).", "portgroup_uuid"),
    Param("shard", string(), "Ports of the nodes in these shards (comma-separated).", "shards"),
    Param("description_contains", string(), "Ports whose description contains this text."),
    Param(
        "conductor_groups",
        string(),
        "Ports of the nodes in these conductor groups (comma-separated); not with node, "
        "portgroup or address.",
    ),
    *paging(sortable=view.PORT_SORTABLE, fields=view.PORT_FIELDS),
)
_LIST = collection_of("ports", view.PORT)
#: a node or portgroup filter naming none is 404
_FILTER_ERRORS = frozenset({404})
_LIST_DOC = Operation("List ports", answers={200: _LIST}, query=LIST_QUERY, errors=_FILTER_ERRORS)


# --------------------------------------------------------------------------- listing


def _filters(conn: sa.Connection, call: Call) -> dict[str, Any]:
    query = call.query
    check_query(query, LIST_QUERY, what="listing ports")
    out: dict[str, Any] = {"node_ids": lookup.listed_node_ids(conn, call, "port")}
    node_ident = query.get("node") or query.get("node_uuid")
    if node_ident:
        out["node_id"] = lookup.node(conn, call, ident=node_ident, action=lookup.NODE_GET).id
    if query.get("address"):
        out["address"] = normalize_mac(query["address"])
    if query.get("portgroup"):
        if not allows("portgroup_uuid", call.version):
            raise NotAcceptable("Filtering ports by portgroup requires API version 1.24.")
        out["portgroup_id"] = lookup.portgroup(
            conn, call, ident=query["portgroup"], action=lookup.NODE_GET
        ).id
    if query.get("description_contains") is not None:
        out["description_contains"] = query["description_contains"]
    scope = node_scope(call, exclusive=bool(node_ident or query.get("portgroup")))
    if scope is not None:
        out["of_nodes"] = scope
    return out


def list_ports(call: Call, *, detail_path: bool = False, **scope: int) -> dict[str, Any]:
    """A page of ports; ``scope`` pins ``node_id`` or ``portgroup_id``."""
    listing = parse_listing(
        call.query,
        max_limit=call.deps.settings.api.max_limit,
        sortable=view.PORT_SORTABLE,
        known_fields=view.visible(view.PORT_FIELDS, call.version),
        newer_fields=view.PORT_FIELDS,
        version=call.version,
        detail_path=detail_path,
    )
    with call.deps.db.read() as conn:
        filters = {**_filters(conn, call), **scope}
        ports = repo.list_ports(conn, listing.page, **filters)
        uuids = view.port_uuids(conn, ports)
    fields = None if listing.detail else (listing.fields or view.PORT_LIST_FIELDS)
    docs = [
        view.render_port(p, uuids, base_url=call.base_url, version=call.version, fields=fields)
        for p in ports
    ]
    return collection(
        "ports",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=listing.page.limit,
        last_marker=last_marker([p.uuid for p in ports], listing.page.limit),
    )


@endpoint("baremetal:port:list", doc=_LIST_DOC)
def get_ports(call: Call) -> object:
    return list_ports(call)


@endpoint(
    "baremetal:port:list",
    doc=Operation(
        "List ports with every field",
        answers={200: _LIST},
        query=LIST_QUERY,
        errors=_FILTER_ERRORS,
    ),
)
def get_ports_detail(call: Call) -> object:
    return list_ports(call, detail_path=True)


@endpoint(
    "baremetal:port:list",
    doc=Operation("List a node's ports", answers={200: _LIST}, query=LIST_QUERY),
)
def get_node_ports(call: Call) -> object:
    return _node_ports(call)


@endpoint(
    "baremetal:port:list",
    doc=Operation("List a node's ports with every field", answers={200: _LIST}, query=LIST_QUERY),
)
def get_node_ports_detail(call: Call) -> object:
    return _node_ports(call, detail_path=True)


def _node_ports(call: Call, *, detail_path: bool = False) -> dict[str, Any]:
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action=lookup.NODE_GET)
    return list_ports(call, detail_path=detail_path, node_id=node.id)


@endpoint(
    "baremetal:port:list",
    doc=Operation(
        "List a portgroup's ports",
        answers={200: _LIST},
        query=LIST_QUERY,
        feature="portgroup_subresources",
    ),
)
def get_portgroup_ports(call: Call) -> object:
    return _portgroup_ports(call)


@endpoint(
    "baremetal:port:list",
    doc=Operation(
        "List a portgroup's ports with every field",
        answers={200: _LIST},
        query=LIST_QUERY,
        feature="portgroup_subresources",
    ),
)
def get_portgroup_ports_detail(call: Call) -> object:
    return _portgroup_ports(call, detail_path=True)


def _portgroup_ports(call: Call, *, detail_path: bool = False) -> dict[str, Any]:
    require_subresources(call)
    with call.deps.db.read() as conn:
        group = lookup.portgroup(conn, call, ident=call.args["portgroup"], action=lookup.NODE_GET)
    return list_ports(call, detail_path=detail_path, portgroup_id=group.id)


# ------------------------------------------------------------------------- one port


def _render(
    call: Call,
    port: Port,
    *,
    fields: tuple[str, ...] | None = None,
    known: view.Uuids | None = None,
) -> dict[str, Any]:
    """The port's document; ``known``: the UUIDs of its node and portgroup, when the
    caller has them (else they are read)."""
    uuids = known
    if uuids is None or not uuids.cover(port):
        with call.deps.db.read() as conn:
            uuids = view.port_uuids(conn, [port])
    return view.render_port(
        port, uuids, base_url=call.base_url, version=call.version, fields=fields
    )


@endpoint(
    "baremetal:port:get",
    doc=Operation("Show a port", answers={200: view.PORT}, query=(fields_param(view.PORT_FIELDS),)),
)
def get_port(call: Call) -> object:
    fields = parse_fields(
        call.query.get("fields"),
        view.visible(view.PORT_FIELDS, call.version),
        version=call.version,
        newer=view.PORT_FIELDS,
    )
    with call.deps.db.read() as conn:
        port = lookup.port(conn, call, ident=_ident(call), action="baremetal:port:get")
    return _render(call, port, fields=fields)


def to_columns(
    conn: sa.Connection,
    call: Call,
    *,
    values: Mapping[str, Any],
    port: Port | None = None,
    uuids: view.Uuids | None = None,
) -> dict[str, Any]:
    """API attributes as column values, checking the named node, portgroup and, on a
    PATCH, the MAC (a new port's is checked by its insert); ``port`` is the port a
    PATCH changes (None: a new port); ``uuids`` collects the UUIDs of the node and
    portgroup named."""
    columns = {k: v for k, v in values.items() if k not in ("node_uuid", "portgroup_uuid")}
    ident = values.get("node_uuid")
    if ident is not None and port is None:
        on = lookup.node_to_create_on(conn, call, ident=ident, action="baremetal:port:create")
        columns["node_id"] = on.id
        if uuids is not None:
            uuids.nodes[on.id] = on.uuid
    elif ident is not None and port is not None:
        current = repo.get_node_by_id(conn, port.node_id)
        node = lookup.node_to_link(conn, call, ident=ident, current=current, field="node_uuid")
        columns["node_id"] = node.id
    if "portgroup_uuid" in values:
        ident = values["portgroup_uuid"]
        columns["portgroup_id"] = None if ident is None else _portgroup_id(conn, ident)
    if "address" in values:
        columns["address"] = normalize_mac(values["address"])
        if port is not None:
            _check_free_mac(conn, columns["address"], port_id=port.id)
    return columns


def _portgroup_id(conn: sa.Connection, ident: str) -> int:
    try:
        return repo.get_portgroup(conn, ident).id
    except NotFound as exc:
        raise InvalidInput(exc.message) from None


def _check_free_mac(conn: sa.Connection, address: str, *, port_id: int) -> None:
    p = t.ports.c
    query = sa.select(p.id).where(p.address == address, p.id != port_id)
    if conn.execute(query).first() is not None:
        raise Conflict(f"A port with MAC address {address} already exists.")


@endpoint(
    "baremetal:port:create",
    body=True,
    doc=Operation(
        "Create a port",
        answers={201: view.PORT},
        body=body(CREATABLE, required=("address", "node_uuid"), name="PortCreate"),
    ),
)
def create_port(call: Call) -> object:
    body = validate_body(
        call.body, CREATABLE, what="port", version=call.version, required=("address", "node_uuid")
    )
    _check_network_type(body, call.version)
    _check_vtep(body, call.version)
    known = view.Uuids()
    with call.deps.db.read() as conn:
        values = to_columns(conn, call, values=body, uuids=known)
    port = call.deps.conductor.call(CreatePort(values), context=call.context)
    doc = _render(call, port, known=known)
    return Reply(201, doc, {"Location": call.url("v1", "ports", port.uuid)})


@endpoint(
    "baremetal:port:update",
    body=True,
    doc=Operation(
        "Update a port (JSON Patch)",
        answers={200: view.PORT},
        body=patch(PATCHABLE_FIELDS, name="PortPatch"),
    ),
)
def patch_port(call: Call) -> object:
    with call.deps.db.read() as conn:
        port = lookup.port(conn, call, ident=_ident(call), action="baremetal:port:update")
        uuids = view.port_uuids(conn, [port])
        before = {name: getattr(port, name) for name in PATCHABLE_FIELDS if hasattr(port, name)}
        before["node_uuid"] = uuids.nodes.get(port.node_id)
        before["portgroup_uuid"] = uuids.portgroups.get(port.portgroup_id or 0)
        changes = patching.changes(before, call.body, spec=PATCHABLE, version=call.version)
        _check_network_type(changes, call.version, before.get("local_link_connection"))
        _check_vtep(changes, call.version)
        values = to_columns(conn, call, values=changes, port=port)
    if values:
        port = call.deps.conductor.call(UpdatePort(port.id, values), context=call.context)
    return _render(call, port)


@endpoint("baremetal:port:delete", doc=Operation("Delete a port", answers={204: None}))
def delete_port(call: Call) -> object:
    with call.deps.db.read() as conn:
        port = lookup.port(conn, call, ident=_ident(call), action="baremetal:port:delete")
    call.deps.conductor.call(DestroyPort(port.id), context=call.context)
    return Reply(204)


ROUTES = [
    Route("/v1/ports", get_ports, methods=["GET"]),
    Route("/v1/ports", create_port, methods=["POST"]),
    Route("/v1/ports/detail", get_ports_detail, methods=["GET"]),
    Route("/v1/ports/{port}", get_port, methods=["GET"]),
    Route("/v1/ports/{port}", patch_port, methods=["PATCH"]),
    Route("/v1/ports/{port}", delete_port, methods=["DELETE"]),
    Route("/v1/nodes/{node}/ports", get_node_ports, methods=["GET"]),
    Route("/v1/nodes/{node}/ports/detail", get_node_ports_detail, methods=["GET"]),
    Route("/v1/portgroups/{portgroup}/ports", get_portgroup_ports, methods=["GET"]),
    Route("/v1/portgroups/{portgroup}/ports/detail", get_portgroup_ports_detail, methods=["GET"]),
]
