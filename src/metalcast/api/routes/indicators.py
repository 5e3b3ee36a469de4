"""/v1/nodes/{node}/management/indicators: a node's LEDs (Ironic 1.63).

An indicator is named ``<name>@<component>`` (``led@system``), components being
Ironic's (``system``, ``chassis``, ``disk``, ``power``, ``nic``).  What a node has is
its management interface's: the fake one has Ironic's fake indicators, IPMI none
(400, as Ironic's ``ipmi``).  Ironic serves these endpoints at every version (it
checks no version for them); so does metalcast.

Errors: ``InvalidInput`` (400: a malformed name, no such indicator, a read-only one,
a state it does not take, an interface without indicators), ``NotFound`` (404),
``NodeLocked`` (409).
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Route

from metalcast.api import lookup
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import LINKS, Named, Operation, array, boolean, no_content, obj
from metalcast.api.operations import string as text
from metalcast.api.schema import Field, check_choice, validate_body
from metalcast.api.views.common import links
from metalcast.calls import GetIndicatorState, ListIndicators, SetIndicatorState
from metalcast.db.models import Node
from metalcast.errors import InvalidInput
from metalcast.states import INDICATOR_STATES

INDICATOR = Named(
    "Indicator",
    obj(
        {
            "name": text(description="<name>@<component>, e.g. led@system."),
            "component": text(),
            "readonly": boolean(),
            "states": array(text(enum=list(INDICATOR_STATES))),
            "links": LINKS,
        },
        required=("name", "component", "readonly", "states", "links"),
    ),
)
_STATE = obj({"state": text(enum=list(INDICATOR_STATES))}, required=("state",))
_SET_BODY = {"state": Field(nullable=False, check=check_choice(INDICATOR_STATES))}


def _load(call: Call, action: str) -> Node:
    with call.deps.db.read() as conn:
        return lookup.node(conn, call, ident=call.args["node"], action=action)


def split_name(ident: str) -> tuple[str, str]:
    """``led@system`` -> ``("system", "led")``, as Ironic splits it (at the first
    ``@``).  Raises InvalidInput for a name without one."""
    name, at, component = ident.partition("@")
    if not at or not name or not component:
        raise InvalidInput(
            f'Malformed indicator name "{ident}": expected <name>@<component>, e.g. led@system.'
        )
    return component, name


@endpoint(
    "baremetal:node:get_indicator_state",
    doc=Operation(
        "List a node's indicators (LEDs)",
        answers={200: obj({"indicators": array(INDICATOR)}, required=("indicators",))},
        description="Ironic 1.63, served at every version as in Ironic. 400 when the "
        "node's management interface has none (ipmi).",
    ),
)
def list_indicators(call: Call) -> object:
    node = _load(call, "baremetal:node:get_indicator_state")
    found = call.deps.conductor.call(ListIndicators(node.id), context=call.context)
    docs: list[dict[str, Any]] = []
    for component, names in sorted(found.items()):
        for name, spec in sorted(names.items()):
            unique = f"{name}@{component}"
            docs.append(
                {
                    "name": unique,
                    "component": component,
                    "readonly": bool(spec.get("readonly", True)),
                    "states": list(spec.get("states", [])),
                    "links": links(
                        call.base_url, f"nodes/{node.uuid}/management/indicators/{unique}"
                    ),
                }
            )
    return {"indicators": docs}


@endpoint(
    "baremetal:node:get_indicator_state",
    doc=Operation("Show the state of a node's indicator", answers={200: _STATE}),
)
def get_indicator(call: Call) -> object:
    component, name = split_name(call.args["indicator"])
    node = _load(call, "baremetal:node:get_indicator_state")
    state = call.deps.conductor.call(
        GetIndicatorState(node.id, component, name), context=call.context
    )
    return {"state": state}


@endpoint(
    "baremetal:node:set_indicator_state",
    body=True,
    doc=no_content(
        "Set the state of a node's indicator",
        body=obj({"state": text(enum=list(INDICATOR_STATES))}, required=("state",)),
        description="400 for a read-only indicator or a state it does not take.",
    ),
)
def set_indicator(call: Call) -> object:
    component, name = split_name(call.args["indicator"])
    values = validate_body(
        call.body, _SET_BODY, what="indicator state", version=call.version, required=("state",)
    )
    node = _load(call, "baremetal:node:set_indicator_state")
    call.deps.conductor.call(
        SetIndicatorState(node.id, component, name, values["state"]), context=call.context
    )
    return Reply(204)


_INDICATORS = "/v1/nodes/{node}/management/indicators"
ROUTES = [
    Route(_INDICATORS, list_indicators, methods=["GET"]),
    Route(f"{_INDICATORS}/{{indicator}}", get_indicator, methods=["GET"]),
    Route(f"{_INDICATORS}/{{indicator}}", set_indicator, methods=["PUT"]),
]
