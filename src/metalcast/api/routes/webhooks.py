"""/v1/webhooks: where conductors POST node events (metalcast's own; docs/events.md).

System administrators only.  A webhook is a URL (http or https, without credentials
in it), a signing ``secret`` (write-only: stored sealed, never returned) and the
events it wants (``kinds``, ``nodes``: empty for all).  Its deliveries, with their
status, tries, last response code and error, are at ``/v1/webhooks/{id}/deliveries``.

Where a webhook may point: anywhere, unless ``events.webhook_destinations`` lists
networks (then an address literal outside them is refused here, and every address a
name resolves to is checked by the conductor when it connects).  Administrators are
trusted; the setting is for sites that want the server unable to reach internal
services even on an administrator's word (SSRF).

Errors: ``InvalidInput`` (400), ``NotFound`` (404).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from starlette.routing import Route

from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import Operation, Param, array, integer, no_content, obj, string
from metalcast.api.params import check_query, parse_limit
from metalcast.api.routes.node_events import EVENT_DOC
from metalcast.api.schema import Field, validate_body
from metalcast.api.views.common import iso
from metalcast.db import events
from metalcast.db import webhooks as repo
from metalcast.db.rows import Page, canonical_uuid, echo
from metalcast.db.webhooks import Delivery, Webhook
from metalcast.errors import InvalidInput

MIN_SECRET, MAX_SECRET = 16, 512


def _check_url(name: str, value: Any) -> None:
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise InvalidInput(f"{name} is not a URL: '{echo(value)}'.") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(f"{name} must be an http:// or https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(
            f"{name} must not hold credentials (user:password@): every administrator "
            "would read them back and they would reach logs. Give a 'secret' instead: "
            "each delivery is signed with it (X-Metalcast-Signature)."
        )


def _check_secret(name: str, value: Any) -> None:
    if not MIN_SECRET <= len(value) <= MAX_SECRET:
        raise InvalidInput(
            f"{name} must be {MIN_SECRET} to {MAX_SECRET} characters long "
            "(a random string both sides know)."
        )


def _check_kinds(name: str, value: Any) -> None:
    if not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"{name} must be a list of event kinds (strings).")
    unknown = sorted(k for k in value if k not in events.KINDS)
    if unknown:
        raise InvalidInput(
            f"{name}: unknown event kind(s) {', '.join(echo(k) for k in unknown)}. "
            f"Known kinds: {', '.join(sorted(events.KINDS))}."
        )


def _check_nodes(name: str, value: Any) -> None:
    for item in value:
        if not isinstance(item, str):
            raise InvalidInput(f"{name} must be a list of node UUIDs.")
        canonical_uuid(item, what=f"a node UUID in {name}")


FIELDS: Mapping[str, Field] = {
    "url": Field(nullable=False, max_length=2048, check=_check_url),
    "secret": Field(nullable=False, max_length=MAX_SECRET, check=_check_secret),
    "kinds": Field("list", max_length=None, check=_check_kinds),
    "nodes": Field("list", max_length=None, check=_check_nodes),
    "description": Field(),
}
_REQUIRED = ("url", "secret")
WEBHOOK_DOC = obj(
    {
        "uuid": string(format="uuid"),
        "url": string(),
        "kinds": array(string()),
        "nodes": array(string(format="uuid")),
        "description": {"type": ["string", "null"]},
        "created_at": string(),
        "updated_at": {"type": ["string", "null"]},
    },
    required=("uuid", "url", "kinds", "nodes", "created_at"),
)
DELIVERY_DOC = obj(
    {
        "uuid": string(format="uuid"),
        "event_id": integer(),
        "event": EVENT_DOC,
        "status": string(enum=list(repo.STATUSES)),
        "attempts": integer(),
        "next_attempt_at": string(),
        "response_code": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "created_at": string(),
        "updated_at": {"type": ["string", "null"]},
    },
    required=("uuid", "event_id", "status", "attempts"),
)
DELIVERY_QUERY = (
    Param("limit", integer(minimum=0), "At most this many, newest first (0: api.max_limit)."),
    Param("status", string(enum=list(repo.STATUSES)), "Only deliveries in this status."),
)


def render(hook: Webhook) -> dict[str, Any]:
    """A webhook as the API shows it: never its secret."""
    return {
        "uuid": hook.uuid,
        "url": hook.url,
        "kinds": hook.kinds,
        "nodes": hook.nodes,
        "description": hook.description,
        "created_at": iso(hook.created_at),
        "updated_at": iso(hook.updated_at),
    }


def render_delivery(delivery: Delivery) -> dict[str, Any]:
    return {
        "uuid": delivery.uuid,
        "event_id": delivery.event_id,
        "event": delivery.payload,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.next_attempt_at),
        "response_code": delivery.response_code,
        "last_error": delivery.last_error,
        "created_at": iso(delivery.created_at),
        "updated_at": iso(delivery.updated_at),
    }


def _check_destination(call: Call, url: str) -> None:
    """An address literal outside ``events.webhook_destinations`` (when set)."""
    allowed = call.deps.settings.events.webhook_destinations
    host = urlsplit(url).hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: the conductor checks what it resolves to, at each connection
    if allowed and not any(address in ipaddress.ip_network(n, strict=False) for n in allowed):
        raise InvalidInput(
            f"url: {host} is outside the networks webhooks may reach "
            f"(events.webhook_destinations: {', '.join(allowed)})."
        )


@endpoint(
    "baremetal:webhook:create",
    body=True,
    doc=Operation(
        "Create a webhook (its secret is never shown again)",
        answers={201: WEBHOOK_DOC},
        body=obj(
            {
                "url": string(),
                "secret": string(minLength=MIN_SECRET, maxLength=MAX_SECRET),
                "kinds": array(string(enum=sorted(events.KINDS))),
                "nodes": array(string(format="uuid")),
                "description": {"type": ["string", "null"]},
            },
            required=_REQUIRED,
        ),
        examples=({"url": "http://127.0.0.1:9/metalcast", "secret": "x" * 32},),
    ),
)
def create_webhook(call: Call) -> object:
    values = validate_body(
        call.body, FIELDS, what="webhook", version=call.version, required=_REQUIRED
    )
    _check_destination(call, values["url"])
    with call.deps.db.begin() as conn:
        hook = repo.create(
            conn,
            url=values["url"],
            secret=values["secret"],
            kinds=values.get("kinds") or [],
            nodes=[canonical_uuid(n) for n in values.get("nodes") or []],
            description=values.get("description"),
        )
    return Reply(201, render(hook), {"Location": call.url("v1", "webhooks", hook.uuid)})


@endpoint(
    "baremetal:webhook:get",
    doc=Operation("List webhooks", answers={200: obj({"webhooks": array(WEBHOOK_DOC)})}),
)
def list_webhooks(call: Call) -> object:
    check_query(call.query, (), what="listing webhooks")
    with call.deps.db.read() as conn:
        return {"webhooks": [render(h) for h in repo.list_all(conn)]}


def _webhook(call: Call) -> Webhook:
    with call.deps.db.read() as conn:
        return repo.get(conn, canonical_uuid(call.args["webhook"], what="a webhook UUID"))


@endpoint(
    "baremetal:webhook:get",
    doc=Operation("Show a webhook", answers={200: WEBHOOK_DOC}, errors=frozenset({404})),
)
def get_webhook(call: Call) -> object:
    return render(_webhook(call))


@endpoint(
    "baremetal:webhook:delete",
    doc=no_content("Delete a webhook and its deliveries", errors=frozenset({404})),
)
def delete_webhook(call: Call) -> object:
    hook = _webhook(call)
    with call.deps.db.begin() as conn:
        repo.delete(conn, hook)
    return Reply(204)


@endpoint(
    "baremetal:webhook:get",
    doc=Operation(
        "A webhook's deliveries, newest first: status, tries, last answer and error",
        answers={200: obj({"deliveries": array(DELIVERY_DOC)})},
        query=DELIVERY_QUERY,
        errors=frozenset({404}),
    ),
)
def list_deliveries(call: Call) -> object:
    check_query(call.query, DELIVERY_QUERY, what="listing webhook deliveries")
    status = call.query.get("status")
    if status is not None and status not in repo.STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(repo.STATUSES)}.")
    hook = _webhook(call)
    limit = parse_limit(call.query.get("limit"), call.deps.settings.api.max_limit)
    with call.deps.db.read() as conn:
        found = repo.deliveries(conn, hook, Page(limit=limit, sort_dir="desc"), status=status)
    return {"deliveries": [render_delivery(d) for d in found]}


ROUTES = [
    Route("/v1/webhooks", list_webhooks, methods=["GET"]),
    Route("/v1/webhooks", create_webhook, methods=["POST"]),
    Route("/v1/webhooks/{webhook}", get_webhook, methods=["GET"]),
    Route("/v1/webhooks/{webhook}", delete_webhook, methods=["DELETE"]),
    Route("/v1/webhooks/{webhook}/deliveries", list_deliveries, methods=["GET"]),
]
