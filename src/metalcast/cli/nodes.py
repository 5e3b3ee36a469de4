"""The ``metalcast node`` commands that read and edit nodes."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any

import typer
from rich.text import Text

from metalcast.cli import enrolment, provision
from metalcast.cli.client import JSON, CliError, node_path
from metalcast.cli.output import (
    fields_table,
    print_error,
    print_json,
    print_ok,
    short,
    stdout,
    table,
)
from metalcast.cli.session import session_of
from metalcast.cli.waiting import Mark, Verdict, failure_message, is_busy, judge_rest
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.reports import progress_of

app = typer.Typer(help="Enrol, inspect, deploy and power bare-metal nodes.", no_args_is_help=True)
maintenance_app = typer.Typer(help="Put a node in or out of maintenance.", no_args_is_help=True)
boot_device_app = typer.Typer(help="Read or set a node's boot device.", no_args_is_help=True)
app.add_typer(maintenance_app, name="maintenance")
app.add_typer(boot_device_app, name="boot-device")

NodeArg = provision.NodeArg
KeyValues = Annotated[list[str] | None, typer.Option(metavar="KEY=VALUE", show_default=False)]
Text_ = Annotated[str | None, typer.Option(show_default=False)]
ShowWaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="If the node is busy, follow it until it rests, then show it "
        "(`--wait 600` also sets --wait-timeout).",
    ),
]

LIST_FIELDS = ("uuid", "name", "power_state", "provision_state", "maintenance", "last_error")
SHOW_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Node", (
        "uuid", "name", "description", "resource_class", "owner", "lessee",
        "instance_uuid", "chassis_uuid", "conductor", "conductor_group",
        "created_at", "updated_at",
    )),
    ("State", (
        "provision_state", "target_provision_state", "provision_updated_at",
        "power_state", "target_power_state", "maintenance", "maintenance_reason",
        "fault", "last_error", "reservation", "protected", "protected_reason",
        "retired", "retired_reason", "automated_clean", "clean_step", "deploy_step",
        "service_step", "agent_progress", "console_enabled", "inspection_started_at",
        "inspection_finished_at",
    )),
    ("Driver", ("driver", "driver_info", *(f"{i}_interface" for i in INTERFACE_NAMES))),
    ("Hardware", (
        "properties", "traits", "boot_mode", "secure_boot", "raid_config",
        "target_raid_config",
    )),
    ("Instance", ("instance_info", "network_data", "extra")),
)  # fmt: skip
#: link fields that say nothing to a person reading one node
HIDDEN = frozenset({"links", "ports", "portgroups", "states", "volume", "allocation_uuid"})


def parse_key_values(pairs: Iterable[str], *, option: str, typed: bool = False) -> JSON:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``; ``typed`` turns digits into ints.

    Raises:
        CliError: a pair has no ``=`` or an empty key.
    """
    result: JSON = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"{option} takes KEY=VALUE, not {pair!r}")
        result[key.strip()] = int(value) if typed and value.isdigit() else value
    return result


def show_groups(node: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """The groups ``node show`` prints, with the fields of ``node`` each holds;
    fields no group names end up in "Other"."""
    groups = [(title, [k for k in keys if k in node]) for title, keys in SHOW_GROUPS]
    named = {k for _, keys in SHOW_GROUPS for k in keys}
    other = sorted(k for k in node if k not in named and k not in HIDDEN)
    if other:
        groups.append(("Other", other))
    return [(title, keys) for title, keys in groups if keys]


def shown_fields(node: Mapping[str, Any]) -> dict[str, Any]:
    """``node`` with what ``node show`` derives for people: ``agent_progress``, the
    deploy agent's last report (from ``driver_internal_info``) as one line."""
    progress = progress_of(node)
    return dict(node) if progress is None else {**node, "agent_progress": str(progress)}


def print_node(node: Mapping[str, Any]) -> None:
    """Print one node as grouped field tables."""
    console = stdout()
    fields = shown_fields(node)
    for title, keys in show_groups(fields):
        console.print(fields_table(fields, keys, title=title))


def list_rows(nodes: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """The rows of ``node list``: UUID, name, power, provision, maintenance, error."""
    return [
        [
            n.get("uuid"),
            n.get("name"),
            n.get("power_state"),
            n.get("provision_state"),
            Text("yes", style="yellow") if n.get("maintenance") else "no",
            Text(short(n.get("last_error")), style="red"),
        ]
        for n in nodes
    ]


@app.command("list")
def list_nodes(
    ctx: typer.Context,
    *,
    provision_state: Text_ = None,
    driver: Text_ = None,
    maintenance: Annotated[
        bool | None, typer.Option("--maintenance/--no-maintenance", show_default=False)
    ] = None,
    owner: Text_ = None,
    include_children: Annotated[
        bool, typer.Option("--include-children", help="Child nodes too (hidden by default).")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many nodes (0: all).", min=0)] = 0,
) -> None:
    """List nodes (following every page unless --limit says otherwise); child nodes
    (a parent_node set) only with --include-children, as the API and `baremetal`."""
    session = session_of(ctx)
    params: JSON = {"fields": ",".join(LIST_FIELDS)}
    filters = {"provision_state": provision_state, "driver": driver, "owner": owner}
    params.update({k: v for k, v in filters.items() if v is not None})
    if maintenance is not None:
        params["maintenance"] = str(maintenance).lower()
    if include_children:
        params["include_children"] = "True"
    nodes = list(session.client.paginate("/v1/nodes", "nodes", params=params, limit=limit))
    if session.as_json:
        print_json(nodes)
        return
    columns = ("UUID", "Name", "Power", "Provision state", "Maintenance", "Last error")
    stdout().print(table(columns, list_rows(nodes)))


@app.command()
def show(
    ctx: typer.Context,
    node: NodeArg,
    *,
    wait: ShowWaitOpt = False,
    wait_timeout: provision.TimeoutOpt = 0,
) -> None:
    """Show one node, its fields grouped (secrets come back masked).

    With --wait a busy node (deploying, cleaning, waiting for its agent…) is followed
    until it rests; exit 1 if it ends failed."""
    session = session_of(ctx)
    found = session.client.get(node_path(node))
    judge = functools.partial(judge_rest, before=Mark.of(found))
    followed = wait and is_busy(found)
    if followed:
        found = provision.follow(session.client, node, judge=judge, timeout=wait_timeout)
    if session.as_json:
        print_json(found)
    else:
        print_node(found)
    if followed and judge(found) is Verdict.FAILED:
        raise CliError(failure_message(node, found, wanted=None))


@app.command()
def create(
    ctx: typer.Context,
    *,
    driver: Annotated[str, typer.Option(help="Hardware type: ipmi, redfish, fake-hardware…")],
    name: Text_ = None,
    driver_info: KeyValues = None,
    prop: Annotated[
        list[str] | None,
        typer.Option("--property", metavar="KEY=VALUE", help="e.g. cpus=8 memory_mb=16384"),
    ] = None,
    resource_class: Text_ = None,
    port: Annotated[
        list[str] | None, typer.Option(metavar="MAC", help="Create a port with this MAC.")
    ] = None,
) -> None:
    """Enrol a node, and its ports (if a port fails, the node is deleted again)."""
    session = session_of(ctx)
    body: JSON = {"driver": driver}
    body["driver_info"] = parse_key_values(driver_info or [], option="--driver-info")
    body["properties"] = parse_key_values(prop or [], option="--property", typed=True)
    if name:
        body["name"] = name
    if resource_class:
        body["resource_class"] = resource_class
    created = enrolment.enrol(session.client, body, macs=port or [])
    if session.as_json:
        print_json({**created.node, "ports": [p.get("address") for p in created.ports]})
        return
    print_node(created.node)
    for item in created.ports:
        print_ok(f"port {item.get('address')} created ({item.get('uuid')})")


@app.command("set")
def set_fields(
    ctx: typer.Context,
    node: NodeArg,
    *,
    name: Text_ = None,
    resource_class: Text_ = None,
    driver_info: KeyValues = None,
    prop: Annotated[list[str] | None, typer.Option("--property", metavar="KEY=VALUE")] = None,
    instance_info: KeyValues = None,
    extra: KeyValues = None,
) -> None:
    """Set node fields (JSON-Patch), e.g. --instance-info image_source=http://…"""
    patch: list[JSON] = [
        {"op": "add", "path": f"/{field}", "value": value}
        for field, value in (("name", name), ("resource_class", resource_class))
        if value is not None
    ]
    maps = (("driver_info", driver_info), ("properties", prop), ("instance_info", instance_info))
    for field, pairs in (*maps, ("extra", extra)):
        values = parse_key_values(pairs or [], option=f"--{field.replace('_', '-')}")
        patch += [{"op": "add", "path": f"/{field}/{k}", "value": v} for k, v in values.items()]
    if not patch:
        raise CliError("nothing to set")
    session = session_of(ctx)
    updated = session.client.request("PATCH", node_path(node), json=patch)
    print_json(updated) if session.as_json else print_node(updated)


@app.command()
def delete(
    ctx: typer.Context,
    nodes: Annotated[list[str], typer.Argument(help="Node UUIDs or names.", show_default=False)],
) -> None:
    """Delete nodes (and their ports); exit 1 if any could not be deleted."""
    client = session_of(ctx).client
    failed = 0
    for node in nodes:
        try:
            client.delete(node_path(node))
        except CliError as exc:
            failed += 1
            print_error(f"node {node}: {exc.message}")
        else:
            print_ok(f"deleted node {node}")
    if failed:
        raise typer.Exit(1)


def result_label(outcome: object) -> Text:
    """How ``validate`` shows an interface's result: ok, failed or n/a (unsupported)."""
    if outcome is True:
        return Text("ok", style="green")
    if outcome is False:
        return Text("failed", style="bold red")
    return Text("n/a", style="dim")


def validation_rows(result: Mapping[str, Any]) -> list[list[Any]]:
    """``GET …/validate`` as rows of (interface, result, reason)."""
    rows: list[list[Any]] = []
    for interface in sorted(result):
        entry = result[interface] if isinstance(result[interface], dict) else {}
        rows.append([interface, result_label(entry.get("result")), entry.get("reason")])
    return rows


@app.command()
def validate(ctx: typer.Context, node: NodeArg) -> None:
    """Ask every interface of the node what it is missing."""
    session = session_of(ctx)
    result = session.client.get(node_path(node, "validate"))
    if session.as_json:
        print_json(result)
        return
    stdout().print(table(("Interface", "Result", "Reason"), validation_rows(result)))


def history_rows(events: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """History events as rows of (time, severity, event, user, project)."""
    styles = {"ERROR": "bold red", "WARNING": "yellow"}
    return [
        [
            e.get("created_at"),
            Text(str(e.get("severity") or ""), style=styles.get(str(e.get("severity")), "")),
            e.get("event"),
            e.get("user"),
            e.get("project"),
        ]
        for e in events
    ]


@app.command()
def history(
    ctx: typer.Context,
    node: NodeArg,
    *,
    limit: Annotated[int, typer.Option(help="At most this many events (0: all).", min=0)] = 0,
) -> None:
    """Show the node's history: every transition and failure, who asked (user and
    project), when."""
    session = session_of(ctx)
    path = node_path(node, "history")
    events = list(session.client.paginate(path, "history", params={"detail": "True"}, limit=limit))
    if session.as_json:
        print_json(events)
        return
    columns = ("Time", "Severity", "Event", "User", "Project")
    stdout().print(table(columns, history_rows(events), wrap="Event"))


def inventory_summary(inventory: Mapping[str, Any]) -> dict[str, Any]:
    """The lines of ``node inventory`` about the machine as a whole."""
    cpu, memory = inventory.get("cpu") or {}, inventory.get("memory") or {}
    system, boot = inventory.get("system_vendor") or {}, inventory.get("boot") or {}
    return {
        "system": " ".join(str(system.get(k) or "") for k in ("manufacturer", "product_name")),
        "serial": system.get("serial_number"),
        "cpus": f"{cpu.get('count')} x {cpu.get('model_name')} ({cpu.get('architecture')})",
        "memory_mb": memory.get("physical_mb") or (memory.get("total") or 0) // 2**20,
        "boot_mode": boot.get("current_boot_mode"),
        "pxe_interface": boot.get("pxe_interface"),
        "bmc_address": inventory.get("bmc_address"),
    }


@app.command()
def inventory(ctx: typer.Context, node: NodeArg) -> None:
    """Show the hardware the node's agent reported at its last inspection (`--json`:
    the inventory and plugin data as the API returns them)."""
    session = session_of(ctx)
    found = session.client.get(node_path(node, "inventory"))
    if session.as_json:
        print_json(found)
        return
    data = found.get("inventory") or {}
    summary = inventory_summary(data)
    out = stdout()
    out.print(fields_table(summary, list(summary), title=f"Inventory of {node}"))
    disks = [
        [d.get("name"), d.get("size"), d.get("model"), d.get("serial"), d.get("wwn"),
         d.get("rotational"), d.get("by_path")]
        for d in data.get("disks") or []
    ]  # fmt: skip
    out.print(table(("Disk", "Bytes", "Model", "Serial", "WWN", "Rotational", "By path"), disks))
    nics = [
        [n.get("name"), n.get("mac_address"), n.get("ipv4_address"), n.get("speed_mbps"),
         n.get("has_carrier")]
        for n in data.get("interfaces") or []
    ]  # fmt: skip
    out.print(table(("NIC", "MAC", "IPv4", "Mb/s", "Carrier"), nics))


def firmware_row(component: Mapping[str, Any]) -> list[Any]:
    """One firmware component as a row of ``node firmware``."""
    keys = ("component", "initial_version", "current_version", "last_version_flashed", "vendor")
    return [component.get(k) for k in keys] + [
        component.get("updated_at") or component.get("created_at")
    ]


@app.command()
def firmware(ctx: typer.Context, node: NodeArg) -> None:
    """Show the node's firmware components and their versions, as last read from its
    BMC (update them with the clean or service step ``firmware.update``)."""
    session = session_of(ctx)
    found = session.client.get(node_path(node, "firmware")).get("firmware") or []
    if session.as_json:
        print_json(found)
        return
    headers = ("Component", "Initial", "Current", "Last flashed", "Vendor", "Read at")
    stdout().print(table(headers, [firmware_row(c) for c in found]))


@maintenance_app.command("set")
def maintenance_set(ctx: typer.Context, node: NodeArg, *, reason: Text_ = None) -> None:
    """Put the node in maintenance: metalcast stops acting on it."""
    session_of(ctx).client.put(node_path(node, "maintenance"), {"reason": reason})
    print_ok(f"node {node} is in maintenance")


@maintenance_app.command("unset")
def maintenance_unset(ctx: typer.Context, node: NodeArg) -> None:
    """Take the node out of maintenance."""
    session_of(ctx).client.delete(node_path(node, "maintenance"))
    print_ok(f"node {node} is out of maintenance")


@boot_device_app.command("set")
def boot_device_set(
    ctx: typer.Context,
    node: NodeArg,
    device: Annotated[str, typer.Argument(help="pxe, disk, cdrom, bios, safe…")],
    *,
    persistent: Annotated[
        bool, typer.Option("--persistent", help="Keep it for every boot.")
    ] = False,
) -> None:
    """Set the device the node boots from next (or always, with --persistent)."""
    body = {"boot_device": device, "persistent": persistent}
    session_of(ctx).client.put(node_path(node, "management", "boot_device"), body)
    print_ok(f"node {node} boots from {device}" + (" (persistent)" if persistent else ""))


@boot_device_app.command("get")
def boot_device_get(ctx: typer.Context, node: NodeArg) -> None:
    """Show the device the node boots from."""
    session = session_of(ctx)
    result = session.client.get(node_path(node, "management", "boot_device"))
    if session.as_json:
        print_json(result)
    else:
        stdout().print(fields_table(result, ("boot_device", "persistent"), title="Boot device"))


enrolment.register(app)
provision.register(app)
