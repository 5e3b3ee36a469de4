"""A node's page: what the API shows of it, its ports, inventory and history.

Everything comes from the API as the caller (driver_info with its secrets masked by
the API, as ``node show`` prints them); the history is drawn as a timeline where
each event's phase lasts until the next event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson

from metalcast.api.dashboard import deploy
from metalcast.api.dashboard.api_calls import Api
from metalcast.api.dashboard.markup import Html, join, path, render

#: history events shown (the newest)
HISTORY_LIMIT = 200


@dataclass(frozen=True, slots=True)
class NodeView:
    node: dict[str, Any]
    ports: list[dict[str, Any]]
    history: list[dict[str, Any]]
    inventory: dict[str, Any] | None


async def fetch(api: Api, ident: str) -> NodeView | None:
    """The node and what hangs off it; None when the caller may not see it."""
    found = await api.get("/v1/nodes/" + quote(ident, safe=""))
    if not found.ok:
        return None
    node = found.document
    base = "/v1/nodes/" + quote(node["uuid"], safe="")
    ports = await api.get(base + "/ports/detail")
    history = await api.get(base + "/history", detail="true", limit=str(HISTORY_LIMIT))
    inventory = await api.get(base + "/inventory")
    return NodeView(
        node=node,
        ports=list(ports.document.get("ports", [])) if ports.ok else [],
        history=list(history.document.get("history", [])) if history.ok else [],
        inventory=inventory.document if inventory.ok else None,
    )


_PAGE = """<p><a href="/dashboard">← Nodes</a> · <a href="{console}">Console</a></p>
<h1>{name} <span class="live" id="node-live-badge">not live</span></h1>
<p class="uuid">{uuid}</p>
<section><h2>State</h2>
<div id="node-live" data-node="{uuid}" data-panel="{panel_url}">{panel}</div></section>
<section><h2>Deploy</h2><div id="deploy">{deploy}</div></section>
<section><h2>Last error</h2>{error}</section>
<section><h2>Properties</h2>{properties}</section>
<section><h2>Driver info</h2>
<p class="hint">Secrets are masked by the API.</p>{driver_info}</section>
<section><h2>Ports</h2>{ports}</section>
<section><h2>Traits</h2>{traits}</section>
<section><h2>Inventory</h2>{inventory}</section>
<section><h2>History</h2>{history}</section>"""


def page(view: NodeView, *, csrf: str, now: datetime | None = None) -> Html:
    node = view.node
    uuid = str(node["uuid"])
    return render(
        _PAGE,
        name=node.get("name") or uuid,
        uuid=uuid,
        console=path("nodes", uuid, "console"),
        panel_url=path("nodes", uuid, "panel"),
        panel=live(node),
        deploy=deploy.form(node, csrf=csrf),
        error=_last_error(node),
        properties=key_values(node.get("properties") or {}),
        driver_info=key_values(node.get("driver_info") or {}),
        ports=_ports(view.ports),
        traits=_traits(node.get("traits")),
        inventory=_inventory(view.inventory),
        history=timeline(view.history, now=now or datetime.now(UTC)),
    )


_SUMMARY_FIELDS = (
    ("Provision state", "provision_state"),
    ("Target provision state", "target_provision_state"),
    ("Power", "power_state"),
    ("Maintenance", "maintenance"),
    ("Maintenance reason", "maintenance_reason"),
    ("Owner", "owner"),
    ("Lessee", "lessee"),
    ("Driver", "driver"),
    ("Resource class", "resource_class"),
    ("Instance", "instance_uuid"),
    ("Description", "description"),
    ("Provision state changed", "provision_updated_at"),
)


def live(node: Mapping[str, Any]) -> Html:
    """The node's state, the agent's progress and its fields: what the page's event
    stream redraws (``/dashboard/nodes/{node}/panel``)."""
    values = {label: node.get(name) for label, name in _SUMMARY_FIELDS}
    table = key_values({k: v for k, v in values.items() if v not in (None, "")}, ordered=True)
    return render("{panel}{table}", panel=deploy.panel(node), table=table)


def _last_error(node: Mapping[str, Any]) -> Html:
    error = node.get("last_error")
    if not error:
        return Html('<p class="notice">No error recorded.</p>')
    state = node.get("provision_state") or "unknown"
    return render(
        '<p class="error last-error">{error}</p><p class="hint">Recorded by the conductor; '
        "the node is now {state}. The history below shows the steps that led there.</p>",
        error=error,
        state=state,
    )


def key_values(values: Mapping[str, Any], *, ordered: bool = False) -> Html:
    """A table of ``values``, sorted by key unless they are ``ordered`` already."""
    if not values:
        return Html('<p class="notice">None.</p>')
    items = list(values.items())
    if not ordered:
        items.sort(key=lambda item: str(item[0]))
    rows = [
        render("<tr><th>{key}</th><td>{value}</td></tr>", key=key, value=plain(value))
        for key, value in items
    ]
    return render('<table class="kv">{rows}</table>', rows=join(rows))


def plain(value: object) -> str:
    """A value as a person reads it: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _ports(ports: Sequence[Mapping[str, Any]]) -> Html:
    if not ports:
        return Html('<p class="notice">No port.</p>')
    rows = [
        render(
            "<tr><td>{address}</td><td>{pxe}</td><td>{physnet}</td><td>{link}</td></tr>",
            address=port.get("address"),
            pxe=plain(bool(port.get("pxe_enabled"))),
            physnet=port.get("physical_network") or "",
            link=plain(port.get("local_link_connection") or {}),
        )
        for port in ports
    ]
    return render(
        '<table class="ports"><thead><tr><th>MAC address</th><th>PXE</th>'
        "<th>Physical network</th><th>Link</th></tr></thead><tbody>{rows}</tbody></table>",
        rows=join(rows),
    )


def _traits(traits: object) -> Html:
    if not isinstance(traits, list) or not traits:
        return Html('<p class="notice">No trait.</p>')
    return render(
        '<ul class="traits">{items}</ul>',
        items=join(render("<li>{trait}</li>", trait=trait) for trait in traits),
    )


def _inventory(inventory: Mapping[str, Any] | None) -> Html:
    if not inventory:
        return Html('<p class="notice">No inventory: the node has not been inspected.</p>')
    data = inventory.get("inventory") or {}
    cpu = data.get("cpu") or {}
    memory = data.get("memory") or {}
    disks = data.get("disks") or []
    summary = {
        "CPUs": f"{cpu.get('count', '?')}, {cpu.get('model_name') or cpu.get('architecture', '?')}",
        "Memory (MiB)": memory.get("physical_mb", "?"),
        "Disks": ", ".join(f"{d.get('name')} ({d.get('size')} B)" for d in disks) or "none",
        "Interfaces": ", ".join(
            f"{i.get('name')} {i.get('mac_address')}" for i in data.get("interfaces") or []
        )
        or "none",
    }
    whole = orjson.dumps(inventory, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()
    return render(
        "{summary}<details><summary>Whole inventory</summary><pre>{whole}</pre></details>",
        summary=key_values(summary, ordered=True),
        whole=whole,
    )


def timeline(events: Sequence[Mapping[str, Any]], *, now: datetime) -> Html:
    """The history, oldest first; each event's phase lasts until the next one."""
    if not events:
        return Html('<p class="notice">No history yet.</p>')
    ordered = sorted(events, key=lambda e: str(e.get("created_at") or ""))
    items = []
    for index, event in enumerate(ordered):
        start = _time(event.get("created_at"))
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        end = _time(following.get("created_at")) if following else now
        lasted = duration((end - start).total_seconds()) if start and end else "?"
        items.append(
            render(
                '<li class="{severity}"><time datetime="{iso}">{at}</time> '
                '<span class="type">{type}</span> <span class="event">{text}</span> '
                '<span class="lasted">{lasted}</span></li>',
                severity=str(event.get("severity") or "info").lower(),
                iso=event.get("created_at") or "",
                at=start.strftime("%Y-%m-%d %H:%M:%S UTC") if start else "",
                type=event.get("event_type") or "",
                text=event.get("event") or "",
                lasted=f"{lasted} so far" if following is None else f"lasted {lasted}",
            )
        )
    return render('<ol class="timeline">{items}</ol>', items=join(items))


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration(seconds: float) -> str:
    """``0.4 s``, ``12 s``, ``3 min 5 s``, ``2 h 4 min``."""
    if seconds < 0:
        return "0 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"
