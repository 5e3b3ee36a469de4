"""The conductors and what they serve: ``GET /v1/conductors`` and ``GET /v1/drivers``
as the caller (rule ``baremetal:conductor:get``, ``baremetal:driver:get``).

Conductors are grouped by conductor group (a site or provisioning network, with its
own boot services); each shows whether it is alive, the hardware types it runs and
its last heartbeat (``updated_at``).  The hardware types table shows, per type, the
conductors running it and the boot interfaces they enable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from metalcast.api.dashboard.api_calls import Api
from metalcast.api.dashboard.markup import Html, join, render
from metalcast.api.dashboard.node_page import duration


@dataclass(frozen=True, slots=True)
class Fleet:
    conductors: list[dict[str, Any]]
    drivers: list[dict[str, Any]]
    error: str | None = None


async def fetch(api: Api) -> Fleet:
    conductors = await api.get("/v1/conductors", detail="true", limit="0")
    if not conductors.ok:
        return Fleet([], [], error=conductors.error)
    drivers = await api.get("/v1/drivers", detail="true")
    return Fleet(
        list(conductors.document.get("conductors", [])),
        list(drivers.document.get("drivers", [])) if drivers.ok else [],
        error=None if drivers.ok else drivers.error,
    )


def page(fleet: Fleet, *, now: datetime | None = None) -> Html:
    moment = now or datetime.now(UTC)
    parts = [Html("<h1>Conductors</h1>")]
    if fleet.error:
        parts.append(render('<p class="notice error">{text}</p>', text=fleet.error))
    groups: dict[str, list[dict[str, Any]]] = {}
    for conductor in fleet.conductors:
        groups.setdefault(str(conductor.get("conductor_group") or ""), []).append(conductor)
    if not fleet.conductors and not fleet.error:
        parts.append(Html('<p class="notice">No conductor has registered.</p>'))
    for group in sorted(groups):
        parts.append(_group(group, groups[group], now=moment))
    parts.append(Html("<h2>Hardware types and boot interfaces</h2>"))
    parts.append(_drivers(fleet.drivers))
    parts.append(
        Html(
            '<p class="hint">Each conductor group\'s boot services (DHCP, TFTP, HTTP boot '
            "files) run beside its conductors; the API does not report their state yet.</p>"
        )
    )
    return join(parts, "\n")


def _group(group: str, conductors: Sequence[Mapping[str, Any]], *, now: datetime) -> Html:
    alive = sum(bool(c.get("alive")) for c in conductors)
    rows = [
        render(
            '<tr class="{kind}" data-hostname="{host}"><td>{host}</td>'
            '<td class="alive">{alive}</td><td>{types}</td><td>{beat}</td></tr>',
            kind="alive" if c.get("alive") else "dead",
            host=c.get("hostname"),
            alive="alive" if c.get("alive") else "dead",
            types=", ".join(c.get("drivers") or []) or "none",
            beat=_ago(c.get("updated_at") or c.get("created_at"), now=now),
        )
        for c in sorted(conductors, key=lambda c: str(c.get("hostname")))
    ]
    return render(
        '<section class="group" data-group="{group}"><h2>Group {label}</h2>'
        '<p class="hint">{alive} of {count} alive.</p>'
        '<table class="conductors"><thead><tr><th>Host</th><th>State</th>'
        "<th>Hardware types</th><th>Last heartbeat</th></tr></thead>"
        "<tbody>{rows}</tbody></table></section>",
        group=group,
        label=f"'{group}'" if group else "(default, '')",
        alive=alive,
        count=len(conductors),
        rows=join(rows),
    )


def _ago(value: object, *, now: datetime) -> str:
    if not isinstance(value, str):
        return "never"
    try:
        then = datetime.fromisoformat(value)
    except ValueError:
        return value
    then = then if then.tzinfo else then.replace(tzinfo=UTC)
    seconds = (now - then).total_seconds()
    return f"{then.strftime('%Y-%m-%d %H:%M:%S UTC')} ({duration(seconds)} ago)"


def _drivers(drivers: Sequence[Mapping[str, Any]]) -> Html:
    if not drivers:
        return Html('<p class="notice">No hardware type is served.</p>')
    rows = [
        render(
            '<tr data-driver="{name}"><td>{name}</td><td>{hosts}</td><td>{boot}</td>'
            "<td>{default}</td></tr>",
            name=d.get("name"),
            hosts=", ".join(d.get("hosts") or []) or "none",
            boot=", ".join(d.get("enabled_boot_interfaces") or []) or "",
            default=d.get("default_boot_interface") or "",
        )
        for d in sorted(drivers, key=lambda d: str(d.get("name")))
    ]
    return render(
        '<table class="drivers"><thead><tr><th>Hardware type</th><th>Conductors</th>'
        "<th>Boot interfaces</th><th>Default boot</th></tr></thead>"
        "<tbody>{rows}</tbody></table>",
        rows=join(rows),
    )
