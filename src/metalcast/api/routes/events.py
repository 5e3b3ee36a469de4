"""/v1/events (API 1.54): external events, as a networking service posts them.

Ironic accepts Neutron's port events (``network.bind_port``, ``network.unbind_port``,
``network.delete_port``), validates them and only logs them; no network interface
acts on them.  metalcast does the same: its network interfaces (``noop``, ``flat``)
have no use for a port binding made elsewhere, so an event is checked and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.routing import Route

from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import array, body, no_content, obj
from metalcast.api.schema import Field, check_choice, check_mac, check_uuid, describe, validate_body
from metalcast.api.versions import allows
from metalcast.errors import InvalidInput, NotFound

_log = logging.getLogger(__name__)

EVENT_TYPES = ("network.bind_port", "network.unbind_port", "network.delete_port")

#: one event: Ironic's schema (the first four are required)
EVENT_FIELDS: Mapping[str, Field] = {
    "event": Field(nullable=False, check=check_choice(EVENT_TYPES)),
    "port_id": Field(nullable=False, check=check_uuid),
    "mac_address": Field(nullable=False, check=check_mac),
    "status": Field(nullable=False, max_length=None),
    "device_id": Field(check=check_uuid),
    "binding:host_id": Field(check=check_uuid),
    "binding:vnic_type": Field(max_length=None),
}
_REQUIRED = ("event", "port_id", "mac_address", "status")


def parse_events(body: object, *, call: Call) -> list[dict[str, Any]]:
    """The events of a POST /v1/events body.

    Raises:
        InvalidInput: not ``{"events": [...]}`` with at least one valid event.
    """
    outer = validate_body(
        body,
        {"events": Field("list", nullable=False, max_length=None)},
        what="events request",
        version=call.version,
        required=("events",),
    )
    events = outer["events"]
    if not events:
        raise InvalidInput("'events' must hold at least one event.")
    out = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise InvalidInput(f"Event {index} is not an object: {describe(event)[:80]}.")
        out.append(
            validate_body(
                event,
                EVENT_FIELDS,
                what=f"event (events[{index}])",
                version=call.version,
                required=_REQUIRED,
            )
        )
    return out


@endpoint(
    "baremetal:events:post",
    body=True,
    doc=no_content(
        "Post external events (a networking service's port events; logged)",
        body=obj(
            {"events": array(body(EVENT_FIELDS, required=_REQUIRED), minItems=1)},
            required=("events",),
        ),
        feature="events",
        examples=(
            {
                "events": [
                    {
                        "event": "network.bind_port",
                        "port_id": "11111111-2222-4333-8444-555555555555",
                        "mac_address": "52:54:00:12:34:56",
                        "status": "ACTIVE",
                    }
                ]
            },
        ),
    ),
)
def post_events(call: Call) -> object:
    if not allows("events", call.version):  # Ironic: 404, whatever the method
        raise NotFound("The API version does not allow events")
    for event in parse_events(call.body, call=call):
        _log.info(
            "external event %s for port %s (%s): %s; no network interface acts on it",
            event["event"],
            event["port_id"],
            event["mac_address"],
            event["status"],
        )
    return Reply(204)


ROUTES = [Route("/v1/events", post_events, methods=["POST"])]
