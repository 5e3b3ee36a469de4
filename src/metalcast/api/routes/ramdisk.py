"""/v1/lookup and /v1/heartbeat/{node}: the endpoints a ramdisk agent calls (1.22).

The agent has no credentials: both actions are public in the policy (as Ironic's
``baremetal:driver:ipa_lookup`` and ``baremetal:node:ipa_heartbeat``), so neither
endpoint returns a secret.  A lookup only finds a node in a state where an agent is
expected (``states.AGENT_STATES``); every failure to find one is the same 404, so a
caller learns nothing of other nodes.  Images and config drives are not served here:
the boot HTTP server hands them to agents with URLs signed for the node's token
(:mod:`metalcast.agent_downloads`).  Invalid MAC addresses are ignored when another
address or ``node_uuid`` remains, as in Ironic; otherwise they are a 400.

Errors: ``NotFound`` (404, also below 1.22), ``InvalidInput`` (400), and those of
:class:`metalcast.calls.AgentHeartbeat` (409 when the node is locked or not
expecting an agent).
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import (
    LINKS,
    UUID,
    Named,
    Operation,
    Param,
    body,
    obj,
    string,
)
from metalcast.api.params import check_query
from metalcast.api.schema import Field, check_choice, normalize_mac, validate_body
from metalcast.api.versions import allows
from metalcast.api.views.common import links
from metalcast.calls import AgentHeartbeat, AgentLookup, DiscoverMachine
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.errors import Conflict, InvalidInput, NotFound
from metalcast.reports import AgentReport
from metalcast.secrecy import mask
from metalcast.states import AGENT_STATES
from metalcast_agent.protocol import CommandResult, ProgressReport

#: the one answer to every lookup that finds nothing an agent may have
NOT_FOUND = "No node matching the lookup is waiting for an agent."
#: Ironic's valid agent_status values (1.72)
AGENT_STATUSES = ("start", "end", "error")
_HEARTBEAT_FIELDS = {
    "callback_url": Field(nullable=False, max_length=2048),
    "agent_version": Field(),
    # metalcast agents (docs/agent-protocol.md)
    "agent_token": Field(nullable=False, max_length=256),
    # Ironic 1.68: the CA to verify the agent's TLS certificate with; metalcast never
    # connects to an agent, so it is checked and not kept
    "agent_verify_ca": Field(max_length=65536, feature="agent_verify_ca"),
    # Ironic 1.72: what an installer ramdisk reports to Ironic's anaconda deploy
    # interface, its only reader; metalcast has none, so it is checked, not kept
    "agent_status": Field(check=check_choice(AGENT_STATUSES), feature="agent_status"),
    "agent_status_message": Field(max_length=1024, feature="agent_status"),
    "results": Field(kind="list"),
    "progress": Field(kind="object"),
    "log": Field(kind="list"),
}
#: heartbeat fields newer than 1.36, and Ironic's 400 for each below its version
_NEWER_FIELDS: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("agent_version",), "agent_version", 'Field "agent_version" not recognised.'),
    (
        ("agent_status", "agent_status_message"),
        "agent_status",
        'Fields "agent_status" and "agent_status_message" not recognised.',
    ),
    (
        ("agent_verify_ca",),
        "agent_verify_ca",
        'Field "agent_verify_ca" not recognised in this version.',
    ),
)
#: log lines taken from one heartbeat
_MAX_LOG_LINES = 200
#: seconds between a metalcast agent's heartbeats
HEARTBEAT_INTERVAL = 2.0


LOOKUP_QUERY = (
    Param("addresses", string(), "Comma-separated MAC addresses of the node's ports."),
    Param("node_uuid", string(format="uuid"), "The node's UUID (wins over addresses)."),
)
LOOKUP = Named(
    "Lookup",
    obj(
        {
            "node": obj(
                {
                    "uuid": UUID,
                    "properties": obj(),
                    "instance_info": obj(),
                    "driver_internal_info": obj(),
                    "links": LINKS,
                },
                required=("uuid", "properties", "instance_info", "driver_internal_info", "links"),
            ),
            "config": obj(
                {
                    "heartbeat_timeout": {"type": "number"},
                    "metrics": obj(),
                    "metalcast": obj(),
                    "agent_token": string(description="The first lookup's only; ****** after."),
                },
                required=("heartbeat_timeout", "metrics", "metalcast", "agent_token"),
            ),
        },
        required=("node", "config"),
    ),
)
HEARTBEAT_REPLY = obj(
    description="To a metalcast agent (with agent_token): its next command; an Ironic "
    "agent's answer has no body.",
    additional=True,
)


def _require(call: Call) -> None:
    if not allows("ramdisk_endpoints", call.version):
        raise NotFound("The resource could not be found.")


# ---------------------------------------------------------------------------- lookup


@endpoint(
    "baremetal:driver:ipa_lookup",
    doc=Operation(
        "A ramdisk agent finds its node",
        answers={200: LOOKUP},
        query=LOOKUP_QUERY,
        feature="ramdisk_endpoints",
        description="Only a node waiting for an agent is found; every other lookup is the "
        "same 404. Secrets are masked.",
    ),
)
def lookup(call: Call) -> object:
    _require(call)
    check_query(call.query, LOOKUP_QUERY, what="a lookup")
    node_uuid = call.query.get("node_uuid") or None
    if node_uuid is not None:
        node_uuid = repo.canonical_uuid(node_uuid, what="node_uuid to be a UUID")
    macs = _macs(call.query.get("addresses") or "", node_uuid=node_uuid)
    with call.deps.db.read() as conn:
        node = _find(conn, node_uuid, macs)
    try:
        token = call.deps.conductor.call(AgentLookup(node.id), context=call.context)
    except Conflict:
        raise NotFound(NOT_FOUND) from None  # it stopped waiting meanwhile
    config = {**_config(call), "agent_token": token}
    return {"node": _render(node, base_url=call.base_url), "config": config}


def _macs(addresses: str, *, node_uuid: str | None) -> list[str]:
    """The valid MAC addresses of ``addresses`` (comma-separated), normalized."""
    valid: list[str] = []
    invalid: list[str] = []
    for text in filter(None, (a.strip() for a in addresses.split(","))):
        try:
            valid.append(normalize_mac(text))
        except InvalidInput:
            invalid.append(text)
    if valid or node_uuid:
        return valid
    if invalid:
        raise InvalidInput(f"Expected MAC addresses but received {', '.join(invalid)}.")
    raise InvalidInput("At least one of 'addresses' and 'node_uuid' parameters is required.")


def _find(conn: sa.Connection, node_uuid: str | None, macs: list[str]) -> Node:
    """The one node the lookup names, if an agent is expected on it."""
    try:
        node = repo.get_node(conn, node_uuid) if node_uuid else _by_macs(conn, macs)
    except NotFound:
        raise NotFound(NOT_FOUND) from None
    if node.provision_state not in AGENT_STATES:
        raise NotFound(NOT_FOUND)
    return node


def _by_macs(conn: sa.Connection, macs: list[str]) -> Node:
    node_ids: set[int] = set()
    for mac in macs:
        ports = repo.list_ports(conn, repo.Page(limit=10), address=mac)
        node_ids.update(p.node_id for p in ports if p.node_id is not None)
    if len(node_ids) != 1:  # none, or the MACs span several nodes
        raise NotFound(NOT_FOUND)
    return repo.get_node_by_id(conn, node_ids.pop())


def _render(node: Node, *, base_url: str) -> dict[str, Any]:
    """Ironic's lookup fields of a node, with every secret masked."""
    return {
        "uuid": node.uuid,
        "properties": mask(node.properties),
        "instance_info": mask(node.instance_info),
        "driver_internal_info": mask(node.driver_internal_info),
        "links": links(base_url, f"nodes/{node.uuid}"),
    }


def _config(call: Call) -> dict[str, Any]:
    """What the agent should know: how often to heartbeat, and no metrics."""
    return {
        "heartbeat_timeout": call.deps.settings.api.ramdisk_heartbeat_timeout,
        "metrics": {"backend": "noop"},
        "metalcast": {"heartbeat_interval": HEARTBEAT_INTERVAL},
    }


# ------------------------------------------------------------------------- heartbeat


@endpoint(
    "baremetal:node:ipa_heartbeat",
    body=True,
    doc=Operation(
        "A ramdisk agent reports in",
        answers={202: HEARTBEAT_REPLY},
        body=body(
            {
                **_HEARTBEAT_FIELDS,
                "agent_version": Field(feature="agent_version"),
            },
            name="Heartbeat",
        ),
        feature="ramdisk_endpoints",
        errors=frozenset({403, 409}),
        description="callback_url (Ironic's agents) or agent_token (metalcast's) is "
        "needed; once a token was issued, a heartbeat without it is 403.",
    ),
)
def heartbeat(call: Call) -> object:
    return _heartbeat(call, call.args["node"], call.body)


@endpoint(
    "baremetal:node:ipa_heartbeat",
    body=True,
    doc=Operation(
        "A ramdisk agent reports in, naming its node in the body",
        answers={202: HEARTBEAT_REPLY},
        body=body(
            {
                "node_ident": Field(nullable=False, max_length=255),
                **_HEARTBEAT_FIELDS,
                "agent_version": Field(feature="agent_version"),
            },
            required=("node_ident",),
            name="HeartbeatWithNode",
        ),
        feature="ramdisk_endpoints",
        errors=frozenset({403, 409}),
        description="POST /v1/heartbeat/{node} with the node's UUID or name in the body "
        "as node_ident, which Ironic accepts too.",
    ),
)
def heartbeat_naming_node(call: Call) -> object:
    document = call.body if isinstance(call.body, dict) else {}
    ident = document.get("node_ident")
    if not isinstance(ident, str) or not ident:
        _require(call)
        raise InvalidInput(
            "A heartbeat to /v1/heartbeat names its node: node_ident (UUID or name) in "
            "the body, or POST /v1/heartbeat/{node}."
        )
    rest = {key: value for key, value in document.items() if key != "node_ident"}
    return _heartbeat(call, ident, rest)


def _heartbeat(call: Call, ident: str, document: object) -> object:
    _require(call)
    given = document if isinstance(document, dict) else {}
    for names, feature, message in _NEWER_FIELDS:
        if any(name in given for name in names) and not allows(feature, call.version):
            raise InvalidInput(message)  # Ironic's 400
    body = validate_body(document, _HEARTBEAT_FIELDS, what="heartbeat", version=call.version)
    token = body.get("agent_token")
    if body.get("callback_url") is None and token is None:
        raise InvalidInput("A heartbeat needs callback_url (Ironic agents) or agent_token.")
    if body.get("callback_url") is not None:
        _check_callback_url(body["callback_url"])
    with call.deps.db.read() as conn:
        node = repo.get_node(conn, ident)
    report = AgentReport(
        callback_url=body.get("callback_url"),
        agent_version=body.get("agent_version"),
        token=token,
        # objects with an id: the conductor reads every other field with .get
        results=tuple(cast("list[CommandResult]", _objects(body.get("results"), "results"))),
        progress=cast("ProgressReport | None", _object(body.get("progress"), "progress")),
        log=tuple(str(line) for line in _list(body.get("log"), "log")[-_MAX_LOG_LINES:]),
    )
    reply = call.deps.conductor.call(AgentHeartbeat(node.id, report), context=call.context)
    if token is None:
        return Reply(202)  # an Ironic agent: no body, as Ironic answers
    # a command's download URL is relative to the agent's API URL (the boot server's
    # relay) or absolute from the boot settings: the conductor made it so, and nothing
    # a request says (Host, X-Forwarded-Host) changes where it points
    return Reply(202, reply)


def _list(value: object, name: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"Heartbeat field {name} must be a list.")
    return value


def _objects(value: object, name: str) -> list[dict[str, Any]]:
    items = _list(value, name)
    if not all(isinstance(item, dict) and "id" in item for item in items):
        raise InvalidInput(f"Heartbeat field {name} must be a list of objects with an id.")
    return items


def _object(value: object, name: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"Heartbeat field {name} must be an object.")
    return value


def _check_callback_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        valid = False
    if not valid:
        raise InvalidInput(
            f"Invalid callback_url '{url}': expected an http or https URL of the agent."
        )


# ----------------------------------------------------------------- discovery

DISCOVERED = obj(
    {"uuid": UUID},
    required=("uuid",),
    description="The node the machine was enrolled as (ironic-inspector's answer).",
)


@endpoint(
    "baremetal:driver:ipa_continue_inspection",
    body=True,
    doc=Operation(
        "An unknown machine's agent reports its inventory to be enrolled (discovery)",
        answers={202: DISCOVERED},
        body=obj(
            {"inventory": obj(additional=True)},
            required=("inventory",),
            additional=True,
            description="Ironic's inspection data: the inventory and plugin data (ignored).",
        ),
        errors=frozenset({404, 409, 503}),
        description="Only with boot.discovery on (404 otherwise). The machine is enrolled "
        "as a new node from its inventory; a machine a node has a NIC of is refused (409) "
        "and nothing changes. No credentials are needed: the ramdisk has none "
        "(docs/discovery.md).",
    ),
)
def continue_inspection(call: Call) -> object:
    if not call.deps.settings.boot.discovery:
        raise NotFound("The resource could not be found.")
    report = call.body if isinstance(call.body, dict) else None
    if report is None or not isinstance(report.get("inventory"), dict):
        raise InvalidInput(
            'A discovery report is a JSON object with the machine\'s "inventory" object.'
        )
    node = call.deps.conductor.call(
        DiscoverMachine({"inventory": report["inventory"]}), context=call.context
    )
    call.audit.node(uuid=node.uuid)
    call.audit.resource(node.uuid)
    return Reply(202, {"uuid": node.uuid})


ROUTES = [
    Route("/v1/lookup", lookup, methods=["GET"]),
    Route("/v1/continue_inspection", continue_inspection, methods=["POST"]),
    Route("/v1/heartbeat", heartbeat_naming_node, methods=["POST"]),
    Route("/v1/heartbeat/{node}", heartbeat, methods=["POST"]),
]
