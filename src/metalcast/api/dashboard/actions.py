"""Bulk actions on the selected nodes, each one the API request the CLI would send.

Each node's request goes through :class:`~.api_calls.Api` (the API's routes, policy
and audit, as the caller); each node's answer is shown: accepted, or the API's
error in its own words.  The table's rows change as the nodes do (the event
stream), not because of this answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from metalcast.api.dashboard.api_calls import Answer, Api
from metalcast.api.dashboard.markup import Html, join, render
from metalcast.errors import InvalidInput

#: nodes one action may name (a page holds fewer)
MAX_NODES = 200


@dataclass(frozen=True, slots=True)
class Request:
    """The API request of an action on one node."""

    method: str
    #: after ``/v1/nodes/<uuid>``
    suffix: str
    body: object = None


ACTIONS: Mapping[str, Request] = {
    "manage": Request("PUT", "/states/provision", {"target": "manage"}),
    "provide": Request("PUT", "/states/provision", {"target": "provide"}),
    "power on": Request("PUT", "/states/power", {"target": "power on"}),
    "power off": Request("PUT", "/states/power", {"target": "power off"}),
    "maintenance on": Request("PUT", "/maintenance", {"reason": "set from the dashboard"}),
    "maintenance off": Request("DELETE", "/maintenance"),
    "delete": Request("DELETE", ""),
}


def parse(form: Mapping[str, list[str]]) -> tuple[str, list[str]]:
    """The action and the nodes of a submitted form.

    Raises:
        InvalidInput: no known action, no node, or too many.
    """
    action = (form.get("action") or [""])[0]
    if action not in ACTIONS:
        raise InvalidInput(f"Unknown action '{action[:40]}': one of {', '.join(ACTIONS)}.")
    nodes = list(dict.fromkeys(n.strip() for n in form.get("node", []) if n.strip()))
    if not nodes:
        raise InvalidInput("Select at least one node first.")
    if len(nodes) > MAX_NODES:
        raise InvalidInput(f"Select at most {MAX_NODES} nodes for one action.")
    return action, nodes


@dataclass(frozen=True, slots=True)
class Outcome:
    """One node's answer to an action."""

    #: as the form named it (a UUID)
    node: str
    #: its name, when the caller may see the node and it has one
    name: str | None
    answer: Answer


async def run(api: Api, action: str, nodes: list[str]) -> list[Outcome]:
    """Each node's answer to ``action``, in order."""
    spec = ACTIONS[action]
    out = []
    for node in nodes:
        path = "/v1/nodes/" + quote(node, safe="")
        found = await api.get(path, fields="uuid,name")
        name = found.document.get("name") if found.ok else None
        answer = await api.send(spec.method, path + spec.suffix, body=spec.body)
        out.append(Outcome(node, name if isinstance(name, str) else None, answer))
    return out


_RESULTS = """<div class="results">
<p>{summary}</p>
<ul>{items}</ul>
</div>"""


def results(action: str, outcomes: list[Outcome]) -> Html:
    failed = sum(not outcome.answer.ok for outcome in outcomes)
    summary = f"{action}: {len(outcomes) - failed} accepted"
    if failed:
        summary += f", {failed} refused"
    items = [
        render(
            '<li class="{kind}" data-node="{node}"><strong>{name}</strong> '
            '<span class="uuid">{node}</span> {text}</li>',
            kind="ok" if outcome.answer.ok else "failed",
            node=outcome.node,
            name=outcome.name or "",
            text="accepted" if outcome.answer.ok else outcome.answer.error,
        )
        for outcome in outcomes
    ]
    return render(_RESULTS, summary=summary, items=join(items))


def refusal(message: str) -> Html:
    return render('<div class="results"><p class="failed">{text}</p></div>', text=message)
