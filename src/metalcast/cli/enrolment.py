"""Enrolment: create a node with its ports as one unit, one or a whole file of them.

If a port cannot be created, the ports created so far and the node are deleted
again, so that a failed enrolment leaves nothing half-created.

Errors::

    CliError
    └── EnrolmentFailed   the node or one of its ports could not be created
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from metalcast.cli.client import JSON, ApiClient, ApiError, CliError, node_path
from metalcast.cli.output import print_error, print_json, stdout, table
from metalcast.cli.session import session_of
from metalcast.enrolment_rows import NodeSpec, Rejected, check_rows, read_rows


class EnrolmentFailed(CliError):
    """A node could not be enrolled; whatever was created for it is gone again
    unless the message says otherwise."""


@dataclass(frozen=True, slots=True)
class Enrolled:
    node: JSON
    ports: list[JSON] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RowResult:
    """What ``node import`` did with one row."""

    row: int
    name: str | None
    created: bool
    text: str
    uuid: str | None = None

    def as_json(self) -> JSON:
        return {"row": self.row, "name": self.name, "result": self.text, "uuid": self.uuid}


def enrol(client: ApiClient, body: JSON, *, macs: Sequence[str]) -> Enrolled:
    """Create a node from ``body``, then one port per MAC.

    Raises:
        ApiError: the node was refused (nothing was created).
        EnrolmentFailed: a port was refused; the node and its ports were deleted.
    """
    node: JSON = client.post("/v1/nodes", body)
    ports: list[JSON] = []
    for mac in macs:
        try:
            ports.append(client.post("/v1/ports", {"address": mac, "node_uuid": node["uuid"]}))
        except CliError as exc:
            problem = f"port {mac}: {exc.message}"
            raise EnrolmentFailed(roll_back(client, node, ports=ports, problem=problem)) from exc
    return Enrolled(node, ports)


def roll_back(client: ApiClient, node: JSON, *, ports: Sequence[JSON], problem: str) -> str:
    """Delete ``ports`` and ``node``; return ``problem`` plus what happened to them."""
    try:
        for port in reversed(ports):
            client.delete(f"/v1/ports/{port['uuid']}")
        client.delete(node_path(str(node["uuid"])))
    except CliError as exc:
        return f"{problem}; deleting the half-created node {node['uuid']} failed: {exc.message}"
    return f"{problem} (the node was deleted again)"


def import_specs(
    client: ApiClient | None, checked: Sequence[NodeSpec | Rejected]
) -> list[RowResult]:
    """Create the node of every checked row, in order; ``client`` None is a dry run.

    Raises:
        Unreachable: the API went away (rows done so far stay created).
    """
    results: list[RowResult] = []
    for item in checked:
        if isinstance(item, Rejected):
            results.append(RowResult(item.row, item.name, False, f"rejected: {item.reason}"))
        elif client is None:
            results.append(RowResult(item.row, item.name, True, "valid"))
        else:
            results.append(_import_one(client, item))
    return results


def _import_one(client: ApiClient, spec: NodeSpec) -> RowResult:
    try:
        done = enrol(client, spec.body(), macs=spec.macs)
    except (ApiError, EnrolmentFailed) as exc:
        return RowResult(spec.row, spec.name, False, f"rejected: {exc.message}")
    uuid = str(done.node.get("uuid"))
    return RowResult(spec.row, spec.name, True, f"created {uuid}", uuid)


def _print_results(results: Sequence[RowResult]) -> None:
    rows = [[r.row, r.name, Text(r.text, style="green" if r.created else "red")] for r in results]
    stdout().print(table(("Row", "Name", "Result"), rows))


def import_nodes(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="A .csv (with a header row) or .yaml file.", show_default=False)
    ],
    *,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the file; create nothing.")
    ] = False,
) -> None:
    """Enrol nodes in bulk from CSV or YAML; exit 1 if any row was rejected.

    Every row is checked before anything is created; a row whose node or ports
    cannot be created leaves nothing behind.

    Fields: name, driver, bmc_address, bmc_username, bmc_password, bmc_port,
    mac (several: separated by spaces or ';'), cpus, memory_mb (or memory),
    local_gb (or disk), cpu_arch, resource_class.
    """
    session = session_of(ctx)
    checked = check_rows(read_rows(file))
    results = import_specs(None if dry_run else session.client, checked)
    if session.as_json:
        print_json([r.as_json() for r in results])
    else:
        _print_results(results)
    rejected = [r for r in results if not r.created]
    for result in rejected:
        print_error(f"row {result.row}: {result.text.removeprefix('rejected: ')}")
    if rejected:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``node import`` to the ``node`` command group."""
    app.command("import")(import_nodes)
