"""The node table: filters, one page of rows, each row as the event stream redraws it.

Filters map to the API's own list filters (``provision_state``, ``maintenance``,
``owner``); paging is the API's (``limit`` and ``marker``), so a fleet of any size
costs one page per request.  Search finds the node whose name or UUID is the term,
as ``GET /v1/nodes/{ident}`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from metalcast.api.dashboard.api_calls import Answer, Api
from metalcast.api.dashboard.markup import Html, join, path, render, with_query
from metalcast.reports import progress_of
from metalcast.states import WAIT, WORK, ProvisionState

#: rows per page
PAGE_SIZE = 50
#: what a row shows (and asks the API for)
ROW_FIELDS = (
    "uuid",
    "name",
    "provision_state",
    "target_provision_state",
    "power_state",
    "target_power_state",
    "maintenance",
    "maintenance_reason",
    "owner",
    "last_error",
    "driver_internal_info",
    "parent_node",
)
_MAINTENANCE = ("", "true", "false")


@dataclass(frozen=True, slots=True)
class Filters:
    """What the filter form asks for; empty means any."""

    provision_state: str = ""
    maintenance: str = ""
    owner: str = ""
    search: str = ""
    marker: str = ""

    @classmethod
    def of(cls, query: QueryParams) -> Filters:
        maintenance = query.get("maintenance", "")
        return cls(
            provision_state=query.get("provision_state", "").strip()[:64],
            maintenance=maintenance if maintenance in _MAINTENANCE else "",
            owner=query.get("owner", "").strip()[:255],
            search=query.get("q", "").strip()[:255],
            marker=query.get("marker", "").strip()[:64],
        )

    def api_query(self) -> dict[str, str]:
        query = {
            "provision_state": self.provision_state,
            "maintenance": self.maintenance,
            "owner": self.owner,
            "marker": self.marker,
        }
        kept = {name: value for name, value in query.items() if value}
        # the fleet is every machine: child nodes too, which the API leaves out by
        # default (Ironic's 1.83); each shows its parent
        paging = {"limit": str(PAGE_SIZE), "include_children": "True"}
        return {**kept, **paging, "fields": ",".join(ROW_FIELDS)}

    def keeps(self, node: Mapping[str, Any]) -> bool:
        """Whether a node found by search passes the other filters too."""
        if self.provision_state and node.get("provision_state") != self.provision_state:
            return False
        if self.maintenance and bool(node.get("maintenance")) != (self.maintenance == "true"):
            return False
        return not self.owner or node.get("owner") == self.owner


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of nodes, or the API's refusal."""

    nodes: list[dict[str, Any]]
    #: the marker of the next page (None: this is the last)
    next_marker: str | None = None
    error: str | None = None


async def fetch(api: Api, filters: Filters) -> Listing:
    """The page of nodes the filters ask for, as the caller may see them."""
    if filters.search:
        found = await api.get("/v1/nodes/" + _quoted(filters.search), fields=",".join(ROW_FIELDS))
        if found.status in (400, 404):
            return Listing([])
        if not found.ok:
            return Listing([], error=found.error)
        return Listing([found.document] if filters.keeps(found.document) else [])
    answer = await api.get("/v1/nodes", **filters.api_query())
    if not answer.ok:
        return Listing([], error=answer.error)
    nodes = list(answer.document.get("nodes", []))
    more = bool(answer.document.get("next")) and len(nodes) == PAGE_SIZE
    return Listing(nodes, next_marker=nodes[-1]["uuid"] if more else None)


async def fetch_row(api: Api, uuid: str) -> Answer:
    return await api.get("/v1/nodes/" + _quoted(uuid), fields=",".join(ROW_FIELDS))


def _quoted(ident: str) -> str:
    from urllib.parse import quote

    return quote(ident, safe="")


# ------------------------------------------------------------------------ rendering

_ROW = """<tr id="node-{uuid}" data-uuid="{uuid}" data-state="{state}" data-power="{power}">
<td><input type="checkbox" class="pick" name="node" value="{uuid}" aria-label="select {label}"></td>
<td><a href="{href}">{label}</a><div class="uuid">{uuid}</div>{parent}</td>
<td class="state">{state_text}</td>
<td class="power">{power_text}</td>
<td class="maintenance">{maintenance}</td>
<td class="owner">{owner}</td>
<td class="progress">{progress}</td>
<td class="error">{error}</td>
</tr>"""


def row(node: Mapping[str, Any]) -> Html:
    uuid = str(node.get("uuid", ""))
    state = str(node.get("provision_state") or "")
    target = node.get("target_provision_state")
    power = str(node.get("power_state") or "")
    power_target = node.get("target_power_state")
    maintenance = ""
    if node.get("maintenance"):
        reason = node.get("maintenance_reason")
        maintenance = f"yes: {reason}" if reason else "yes"
    error = str(node.get("last_error") or "")
    parent = node.get("parent_node")
    return render(
        _ROW,
        uuid=uuid,
        parent=render('<div class="parent">child of {parent}</div>', parent=parent)
        if parent
        else Html(""),
        label=node.get("name") or uuid,
        href=path("nodes", uuid),
        state=state,
        state_text=f"{state} → {target}" if target else state,
        power=power,
        power_text=f"{power or 'unknown'} → {power_target}" if power_target else power or "unknown",
        maintenance=maintenance,
        owner=node.get("owner") or "",
        progress=progress(node),
        error=error if len(error) <= 120 else error[:117] + "…",
    )


def progress(node: Mapping[str, Any]) -> Html:
    """The agent's progress while the node works (a bar when it knows how far)."""
    state = node.get("provision_state")
    if not node.get("target_provision_state") and state not in WORK | WAIT:
        return Html("")
    agent = progress_of(node)
    if agent is None:
        return Html("")
    if agent.percent is None:
        return render('<span class="agent">{text}</span>', text=str(agent))
    return render(
        '<progress max="100" value="{percent}"></progress> <span class="agent">{text}</span>',
        percent=agent.percent,
        text=str(agent),
    )


_TABLE = """<table class="nodes">
<thead><tr>
<th><input type="checkbox" id="pick-all" aria-label="select all"></th>
<th>Node</th><th>Provision state</th><th>Power</th><th>Maintenance</th>
<th>Owner</th><th>Progress</th><th>Last error</th>
</tr></thead>
<tbody id="node-rows">
{rows}
</tbody>
</table>
{empty}
<nav class="pager">{pager}</nav>"""


def table(listing: Listing, filters: Filters) -> Html:
    empty = Html("")
    if listing.error:
        empty = render('<p class="notice error">{text}</p>', text=listing.error)
    elif not listing.nodes:
        empty = Html('<p class="notice">No node matches.</p>')
    links = []
    query = {"provision_state": filters.provision_state, "maintenance": filters.maintenance}
    query.update(owner=filters.owner, q=filters.search)
    if filters.marker:
        href = with_query("/dashboard", query)
        links.append(render('<a href="{href}">First page</a>', href=href))
    if listing.next_marker:
        href = with_query("/dashboard", {**query, "marker": listing.next_marker})
        links.append(render('<a href="{href}" rel="next">Next page</a>', href=href))
    return render(
        _TABLE,
        rows=join(row(node) for node in listing.nodes),
        empty=empty,
        pager=join(links, " "),
    )


_FILTERS = """<form id="filters" class="filters" method="get" action="/dashboard"
 hx-get="/dashboard/nodes/table" hx-target="#node-table" hx-push-url="false"
 hx-trigger="change, input from:#search delay:400ms, refresh">
<label>Provision state <select name="provision_state">{states}</select></label>
<label>Maintenance <select name="maintenance">{maintenance}</select></label>
<label>Owner <input type="text" name="owner" value="{owner}" placeholder="project id"></label>
<label>Name or UUID <input type="search" id="search" name="q" value="{search}"></label>
<input type="hidden" name="marker" value="{marker}">
<noscript><button type="submit">Filter</button></noscript>
</form>"""


def filters_form(filters: Filters) -> Html:
    states = [_option("", "any", filters.provision_state)]
    states += [_option(s.value, s.value, filters.provision_state) for s in ProvisionState]
    maintenance = [
        _option("", "any", filters.maintenance),
        _option("true", "in maintenance", filters.maintenance),
        _option("false", "not in maintenance", filters.maintenance),
    ]
    return render(
        _FILTERS,
        states=join(states),
        maintenance=join(maintenance),
        owner=filters.owner,
        search=filters.search,
        marker=filters.marker,
    )


def _option(value: str, text: str, chosen: str) -> Html:
    selected = " selected" if value == chosen else ""
    return render(
        '<option value="{value}"{selected}>{text}</option>',
        value=value,
        selected=Html(selected),
        text=text,
    )


_ACTIONS = """<div class="actions" id="actions" hx-include="#node-rows .pick:checked"
 hx-target="#action-results">
<span>Selected nodes:</span>
{buttons}
</div>
<div id="action-results" aria-live="polite"></div>"""
#: button text -> the action's name (:mod:`.actions`)
ACTION_BUTTONS = (
    ("Manage", "manage"),
    ("Provide", "provide"),
    ("Power on", "power on"),
    ("Power off", "power off"),
    ("Maintenance on", "maintenance on"),
    ("Maintenance off", "maintenance off"),
)


def _actions() -> Html:
    buttons = [
        render(
            '<button type="button" hx-post="/dashboard/actions" name="action" '
            'value="{value}">{text}</button>',
            value=value,
            text=text,
        )
        for text, value in ACTION_BUTTONS
    ]
    buttons.append(
        Html(
            '<button type="button" class="danger" hx-post="/dashboard/actions" name="action" '
            'value="delete" hx-confirm="Delete the selected nodes?">Delete</button>'
        )
    )
    return render(_ACTIONS, buttons=join(buttons, "\n"))


def nodes_page(listing: Listing, filters: Filters) -> Html:
    return render(
        """<h1>Nodes <span class="live" id="live">not live</span></h1>
{filters}
{actions}
<div id="node-table">{table}</div>""",
        filters=filters_form(filters),
        actions=_actions(),
        table=table(listing, filters),
    )
