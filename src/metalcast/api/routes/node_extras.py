"""/v1/nodes/{node}/traits, /bios, /vifs, /history and /vendor_passthru."""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from metalcast.api import lookup, vendor
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import (
    Operation,
    Param,
    array,
    integer,
    no_content,
    obj,
    resource,
    string,
)
from metalcast.api.operations import collection as collection_of
from metalcast.api.params import (
    check_query,
    collection,
    flag,
    last_marker,
    parse_bool,
    parse_fields,
    parse_limit,
)
from metalcast.api.schema import MAX_TRAITS, Field, check_trait, check_traits, validate_body
from metalcast.api.versions import MethodNotAllowed, Version, allows, shows
from metalcast.api.views.common import iso, links
from metalcast.calls import (
    RemoveTraits,
    SetTraits,
    VendorMethods,
    VendorPassthru,
    VifAttach,
    VifDetach,
    VifList,
)
from metalcast.db import bios, inventories
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.models import BiosSetting, HistoryEvent, Node
from metalcast.errors import InvalidInput, NotAcceptable, NotFound
from metalcast.secrecy import MASK, is_secret_key, scrub_text


def _load(call: Call, action: str) -> Node:
    with call.deps.db.read() as conn:
        return lookup.node(conn, call, ident=call.args["node"], action=action)


def _require(call: Call, feature: str) -> None:
    """Endpoints newer than the requested version do not exist for it (Ironic: 404)."""
    if not allows(feature, call.version):
        raise NotFound("The resource could not be found.")


# ---------------------------------------------------------------------------- traits


def _require_traits(call: Call) -> None:
    """Refuse the traits endpoints below 1.37 as Ironic does: there, a GET reads
    ``traits`` as a node field the version lacks (406), a PUT finds no method (405)
    and a DELETE no resource (404).

    Raises:
        NotAcceptable, MethodNotAllowed, NotFound: below 1.37, by method.
    """
    if allows("traits", call.version):
        return
    message = f"Node traits need API version 1.37 or later (requested {call.version})."
    if call.method == "GET":
        raise NotAcceptable(message)
    if call.method == "PUT":
        raise MethodNotAllowed(message)
    raise NotFound(message)


#: a PUT of traits below 1.37 is 405, as in Ironic
_PUT_ERRORS = frozenset({405})


_TRAIT = string(
    maxLength=255,
    pattern="^(CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*)$",
    description="A standard trait in upper case, or CUSTOM_[A-Z0-9_]+.",
)
_TRAITS_BODY = {"traits": Field("list", nullable=False, max_length=None)}


@endpoint(
    "baremetal:node:traits:list",
    doc=Operation(
        "List a node's traits",
        answers={200: obj({"traits": array(string())}, required=("traits",))},
        feature="traits",
    ),
)
def get_traits(call: Call) -> object:
    _require_traits(call)
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="baremetal:node:traits:list")
        return {"traits": repo.get_traits(conn, node.id)}


@endpoint(
    "baremetal:node:traits:set",
    body=True,
    doc=no_content(
        "Replace a node's traits",
        body=obj({"traits": array(_TRAIT, maxItems=MAX_TRAITS)}, required=("traits",)),
        feature="traits",
        errors=_PUT_ERRORS,
    ),
)
def put_traits(call: Call) -> object:
    _require_traits(call)
    body = validate_body(
        call.body,
        _TRAITS_BODY,
        what="traits request",
        version=call.version,
        required=("traits",),
    )
    traits = check_traits(body["traits"])
    node = _load(call, "baremetal:node:traits:set")
    call.deps.conductor.call(SetTraits(node.id, traits, replace=True), context=call.context)
    return Reply(204)


@endpoint(
    "baremetal:node:traits:set",
    doc=no_content("Add a trait to a node", feature="traits", errors=_PUT_ERRORS),
)
def put_trait(call: Call) -> object:
    _require_traits(call)
    trait = check_trait(call.args["trait"])
    node = _load(call, "baremetal:node:traits:set")
    call.deps.conductor.call(SetTraits(node.id, [trait], replace=False), context=call.context)
    return Reply(204)


@endpoint(
    "baremetal:node:traits:delete", doc=no_content("Remove every trait of a node", feature="traits")
)
def delete_traits(call: Call) -> object:
    _require_traits(call)
    node = _load(call, "baremetal:node:traits:delete")
    call.deps.conductor.call(RemoveTraits(node.id, None), context=call.context)
    return Reply(204)


@endpoint(
    "baremetal:node:traits:delete", doc=no_content("Remove a trait of a node", feature="traits")
)
def delete_trait(call: Call) -> object:
    _require_traits(call)
    node = _load(call, "baremetal:node:traits:delete")
    call.deps.conductor.call(RemoveTraits(node.id, [call.args["trait"]]), context=call.context)
    return Reply(204)


# ------------------------------------------------------------------------------ BIOS


#: the BIOS attribute registry's fields of a setting (Ironic 1.74): null here, as
#: metalcast does not read a registry (docs/api-compat.md)
BIOS_REGISTRY_FIELDS = (
    "attribute_type",
    "allowable_values",
    "lower_bound",
    "max_length",
    "min_length",
    "read_only",
    "reset_required",
    "unique",
    "upper_bound",
)


def render_setting(
    setting: BiosSetting,
    node_uuid: str,
    *,
    base_url: str,
    registry: bool = False,
    fields: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """One cached BIOS setting as Ironic shows it: the 1.40 fields, the registry's
    with ``registry`` (1.74), or only ``fields`` (and links)."""
    doc: dict[str, Any] = {
        "name": setting.name,
        "value": MASK if setting.value and is_secret_key(setting.name) else setting.value,
        "created_at": iso(setting.created_at),
        "updated_at": iso(setting.updated_at),
    }
    if registry or fields:
        doc.update(dict.fromkeys(BIOS_REGISTRY_FIELDS))
    if fields:
        doc = {name: doc[name] for name in fields}
    doc["links"] = links(base_url, f"nodes/{node_uuid}/bios/{setting.name}")
    return doc


#: what a BIOS setting shows (Ironic's 1.40 fields), typed by the cache's columns
BIOS_FIELDS = ("name", "value", "created_at", "updated_at")
BIOS_SETTING = resource(
    "BiosSetting",
    {**dict.fromkeys(BIOS_FIELDS), **dict.fromkeys(BIOS_REGISTRY_FIELDS, "bios_registry")},
    table=t.bios_settings,
    special={key: {"type": "null"} for key in BIOS_REGISTRY_FIELDS},
)
BIOS_QUERY = (
    flag("detail", "Show the attribute registry's fields too.", feature="bios_registry"),
    Param(
        "fields",
        string(),
        "Comma-separated fields to show (links always).",
        "bios_registry",
    ),
)


@endpoint(
    "baremetal:node:inventory:get",
    doc=Operation(
        "Show the inventory the node's agent reported at its last inspection",
        answers={
            200: obj(
                {"inventory": obj(additional=True), "plugin_data": obj(additional=True)},
                required=("inventory", "plugin_data"),
            )
        },
        feature="inventory",
    ),
)
def get_inventory(call: Call) -> object:
    _require(call, "inventory")
    with call.deps.db.read() as conn:
        action = "baremetal:node:inventory:get"
        node = lookup.node(conn, call, ident=call.args["node"], action=action)
        return inventories.get_inventory(conn, node.id, node=call.args["node"])


@endpoint(
    "baremetal:node:bios:get",
    doc=Operation(
        "List a node's BIOS settings (as last read)",
        answers={200: obj({"bios": array(BIOS_SETTING)}, required=("bios",))},
        query=BIOS_QUERY,
        feature="bios",
    ),
)
def get_bios(call: Call) -> object:
    _require(call, "bios")
    check_query(call.query, BIOS_QUERY, what="BIOS settings")
    detail = parse_bool("detail", call.query.get("detail"))
    raw_fields = call.query.get("fields")
    if (detail is not None or raw_fields is not None) and not allows("bios_registry", call.version):
        raise NotAcceptable(  # Ironic's answer below 1.74
            "The detail and fields parameters of BIOS settings require API version 1.74."
        )
    fields = None
    if raw_fields is not None:
        known = (*BIOS_FIELDS, *BIOS_REGISTRY_FIELDS)
        fields = parse_fields(raw_fields, known, version=call.version)
    if detail and fields:
        raise InvalidInput("Can not specify ?detail=True and fields in the same request.")
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="baremetal:node:bios:get")
        settings = bios.list_settings(conn, node.id)
    docs = [
        render_setting(s, node.uuid, base_url=call.base_url, registry=bool(detail), fields=fields)
        for s in settings
    ]
    return {"bios": docs}


@endpoint(
    "baremetal:node:bios:get",
    doc=Operation(
        "Show one BIOS setting of a node",
        answers={
            200: obj(
                additional=BIOS_SETTING,
                minProperties=1,
                maxProperties=1,
                description="{<name>: the setting}",
            )
        },
        feature="bios",
    ),
)
def get_bios_setting(call: Call) -> object:
    _require(call, "bios")
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="baremetal:node:bios:get")
        setting = bios.get_setting(conn, node.id, call.args["setting"])
    registry = allows("bios_registry", call.version)
    doc = render_setting(setting, node.uuid, base_url=call.base_url, registry=registry)
    return {setting.name: doc}


# ------------------------------------------------------------------------------ VIFs


def _require_vifs(call: Call) -> None:
    """Below 1.28 a node has no ``vifs`` resource: 404 whatever the method, as in
    Ironic."""
    if not allows("vifs", call.version):
        raise NotFound(f"Node VIFs need API version 1.28 or later (requested {call.version}).")


@endpoint(
    "baremetal:node:vif:list",
    doc=Operation(
        "List the VIFs attached to a node",
        answers={
            200: obj(
                {"vifs": array(obj({"id": string()}, required=("id",), additional=True))},
                required=("vifs",),
            )
        },
        feature="vifs",
    ),
)
def get_vifs(call: Call) -> object:
    _require_vifs(call)
    node = _load(call, "baremetal:node:vif:list")
    return {"vifs": call.deps.conductor.call(VifList(node.id), context=call.context)}


@endpoint(
    "baremetal:node:vif:attach",
    body=True,
    doc=no_content(
        "Attach a VIF to a node",
        body=obj({"id": string()}, required=("id",), additional=True),
        feature="vifs",
    ),
)
def attach_vif(call: Call) -> object:
    _require_vifs(call)
    if not isinstance(call.body, dict) or not isinstance(call.body.get("id"), str):
        raise InvalidInput('The request body must be an object with the VIF\'s "id" (a string).')
    vif = dict(call.body)
    if "port_uuid" in vif and "portgroup_uuid" in vif:
        if allows("vif_port_choice", call.version):  # Ironic 1.67
            raise InvalidInput("Cannot specify both port_uuid and portgroup_uuid.")
        del vif["portgroup_uuid"]  # older versions: the port wins, as in Ironic
    node = _load(call, "baremetal:node:vif:attach")
    call.deps.conductor.call(VifAttach(node.id, vif), context=call.context)
    return Reply(204)


@endpoint(
    "baremetal:node:vif:detach",
    doc=no_content("Detach a VIF from a node", feature="vifs"),
)
def detach_vif(call: Call) -> object:
    _require_vifs(call)
    node = _load(call, "baremetal:node:vif:detach")
    call.deps.conductor.call(VifDetach(node.id, call.args["vif"]), context=call.context)
    return Reply(204)


# --------------------------------------------------------------------------- history


#: what an event shows, and what it shows with ``detail`` (project: the caller's, as
#: Ironic's history shows it from 1.113)
EVENT_FIELDS = ("uuid", "created_at", "severity", "event")
#: detail field -> the feature that introduced it (None: with history itself)
EVENT_DETAIL: dict[str, str | None] = {
    "event_type": None,
    "conductor": None,
    "user": None,
    "project": "history_project",
    "state": "history_states",
    "target_provision_state": "history_states",
    "duration_seconds": "history_states",
}
EVENT = resource(
    "HistoryEvent",
    {**dict.fromkeys(EVENT_FIELDS), **EVENT_DETAIL},
    table=t.node_history,
)


def render_event(
    event: HistoryEvent, node_uuid: str, *, base_url: str, detail: bool, version: Version
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "uuid": event.uuid,
        "created_at": iso(event.created_at),
        "severity": event.severity,
        # scrubbed when written; again here for rows older than that rule
        "event": scrub_text(event.event),
    }
    if detail:
        doc.update(
            {
                name: getattr(event, name)
                for name, feature in EVENT_DETAIL.items()
                if feature is None or shows(feature, version)
            }
        )
    doc["links"] = links(base_url, f"nodes/{node_uuid}/history/{event.uuid}")
    return doc


HISTORY_QUERY = (
    flag("detail", f"Show each event's {', '.join(EVENT_DETAIL)}."),
    Param("limit", integer(minimum=0), "The page size (0: the largest, api.max_limit)."),
    Param("marker", string(format="uuid"), "The UUID of the last event of the previous page."),
)


@endpoint(
    "baremetal:node:history:get",
    doc=Operation(
        "List a node's history",
        answers={200: collection_of("history", EVENT)},
        query=HISTORY_QUERY,
        feature="history",
    ),
)
def get_history(call: Call) -> object:
    _require(call, "history")
    check_query(call.query, HISTORY_QUERY, what="node history")
    detail = bool(parse_bool("detail", call.query.get("detail")))
    limit = parse_limit(call.query.get("limit"), call.deps.settings.api.max_limit)
    page = repo.Page(limit=limit, marker=call.query.get("marker"))
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="baremetal:node:history:get")
        events = repo.list_history(conn, node.id, page)
    docs = [
        render_event(e, node.uuid, base_url=call.base_url, detail=detail, version=call.version)
        for e in events
    ]
    return collection(
        "history",
        docs,
        url=call.base_url + call.path,
        query=call.query,
        limit=limit,
        last_marker=last_marker([e.uuid for e in events], limit),
    )


@endpoint(
    "baremetal:node:history:get",
    doc=Operation("Show a history event", answers={200: EVENT}, feature="history"),
)
def get_history_event(call: Call) -> object:
    _require(call, "history")
    with call.deps.db.read() as conn:
        node = lookup.node(conn, call, ident=call.args["node"], action="baremetal:node:history:get")
        event = repo.get_history_event(conn, node.id, call.args["event"])
    return render_event(event, node.uuid, base_url=call.base_url, detail=True, version=call.version)


# -------------------------------------------------------------------- vendor passthru


@endpoint(
    "baremetal:node:vendor_passthru",
    doc=Operation("List a node's vendor passthru methods", answers={200: vendor.METHODS}),
)
def get_vendor_methods(call: Call) -> object:
    node = _load(call, "baremetal:node:vendor_passthru")
    return call.deps.conductor.call(VendorMethods(node.id), context=call.context)


@endpoint("baremetal:node:vendor_passthru", body=True, doc=vendor.PASSTHRU)
def vendor_passthru(call: Call) -> object:
    method, args = vendor.passthru_request(call)
    node = _load(call, "baremetal:node:vendor_passthru")
    methods = call.deps.conductor.call(VendorMethods(node.id), context=call.context)
    spec = methods.get(method)
    if spec is None:
        known = ", ".join(sorted(methods)) or "none"
        raise InvalidInput(f"Unsupported vendor passthru method '{method}'; methods: {known}.")
    allowed = spec.get("http_methods") or ["POST"]
    if call.method not in allowed:
        raise InvalidInput(
            f"The vendor method '{method}' does not support HTTP {call.method}; "
            f"use {', '.join(allowed)}."
        )
    result = call.deps.conductor.call(VendorPassthru(node.id, method, args), context=call.context)
    return Reply(202 if spec.get("async") else 200, result)


_NODE = "/v1/nodes/{node}"
_ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ROUTES = [
    Route(f"{_NODE}/traits", get_traits, methods=["GET"]),
    Route(f"{_NODE}/traits", put_traits, methods=["PUT"]),
    Route(f"{_NODE}/traits", delete_traits, methods=["DELETE"]),
    Route(f"{_NODE}/traits/{{trait}}", put_trait, methods=["PUT"]),
    Route(f"{_NODE}/traits/{{trait}}", delete_trait, methods=["DELETE"]),
    Route(f"{_NODE}/bios", get_bios, methods=["GET"]),
    Route(f"{_NODE}/inventory", get_inventory, methods=["GET"]),
    Route(f"{_NODE}/bios/{{setting}}", get_bios_setting, methods=["GET"]),
    Route(f"{_NODE}/vifs", get_vifs, methods=["GET"]),
    Route(f"{_NODE}/vifs", attach_vif, methods=["POST"]),
    Route(f"{_NODE}/vifs/{{vif}}", detach_vif, methods=["DELETE"]),
    Route(f"{_NODE}/history", get_history, methods=["GET"]),
    Route(f"{_NODE}/history/{{event}}", get_history_event, methods=["GET"]),
    Route(f"{_NODE}/vendor_passthru/methods", get_vendor_methods, methods=["GET"]),
    Route(f"{_NODE}/vendor_passthru", vendor_passthru, methods=_ANY),
    # python-ironicclient names the method in the path
    Route(f"{_NODE}/vendor_passthru/{{method}}", vendor_passthru, methods=_ANY),
]
