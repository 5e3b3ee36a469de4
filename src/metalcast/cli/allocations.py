"""The ``metalcast allocation`` commands: ask for a node, see what you got, give it back.

An allocation is answered ``allocating``; the server finds it a node at once and it
becomes ``active`` (or ``error``, saying what did not match).  ``--wait`` follows it
there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from metalcast.cli.client import JSON, ApiClient, CliError
from metalcast.cli.output import (
    fields_table,
    print_error,
    print_json,
    print_ok,
    short,
    stderr,
    stdout,
    table,
)
from metalcast.cli.provision import TimeoutOpt, WaitOpt
from metalcast.cli.session import session_of
from metalcast.cli.waiting import POLL_INTERVAL, WaitTimeout

app = typer.Typer(help="Ask for nodes by resource class and traits.", no_args_is_help=True)

AllocationArg = Annotated[str, typer.Argument(help="Allocation UUID or name.", show_default=False)]
Text_ = Annotated[str | None, typer.Option(show_default=False)]
Many = Annotated[list[str] | None, typer.Option(show_default=False)]

FIELDS = (
    "uuid", "name", "state", "node_uuid", "resource_class", "traits", "candidate_nodes",
    "owner", "last_error", "extra", "created_at", "updated_at",
)  # fmt: skip


def allocation_path(ident: str) -> str:
    """The API path of an allocation (by UUID or name)."""
    return f"/v1/allocations/{quote(ident, safe='')}"


class AllocationFailed(CliError):
    """The allocation ended in ``error``; the message is its ``last_error``."""


def wait_for_allocation(
    client: ApiClient,
    ident: str,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> JSON:
    """Poll the allocation until it leaves ``allocating``; return it when ``active``.

    Raises:
        AllocationFailed: it ended in ``error``.
        WaitTimeout: still allocating after ``timeout`` seconds (0: wait forever).
        ApiError, Unreachable.
    """
    deadline = clock() + timeout if timeout > 0 else None
    while True:
        current: JSON = client.get(allocation_path(ident))
        if current.get("state") == "active":
            return current
        if current.get("state") == "error":
            label = current.get("name") or ident
            error = current.get("last_error") or "no error recorded"
            raise AllocationFailed(f"allocation {label} failed: {error}")
        if deadline is not None and clock() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for allocation {ident}")
        time.sleep(POLL_INTERVAL)


def list_rows(allocations: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """Rows of ``allocation list``: UUID, name, state, node, resource class, error."""
    styles = {"active": "green", "error": "bold red", "allocating": "yellow"}
    return [
        [
            a.get("uuid"),
            a.get("name"),
            Text(str(a.get("state")), style=styles.get(str(a.get("state")), "")),
            a.get("node_uuid"),
            a.get("resource_class"),
            Text(short(a.get("last_error")), style="red"),
        ]
        for a in allocations
    ]


def print_allocation(allocation: Mapping[str, Any]) -> None:
    stdout().print(fields_table(allocation, FIELDS, title="Allocation"))


@app.command("list")
def list_allocations(
    ctx: typer.Context,
    *,
    state: Text_ = None,
    resource_class: Text_ = None,
    node: Text_ = None,
    owner: Text_ = None,
    limit: Annotated[int, typer.Option(help="At most this many (0: all).", min=0)] = 0,
) -> None:
    """List allocations (yours only, unless you are an administrator)."""
    session = session_of(ctx)
    filters = {"state": state, "resource_class": resource_class, "node": node, "owner": owner}
    params = {k: v for k, v in filters.items() if v is not None}
    found = list(
        session.client.paginate("/v1/allocations", "allocations", params=params, limit=limit)
    )
    if session.as_json:
        print_json(found)
        return
    columns = ("UUID", "Name", "State", "Node", "Resource class", "Last error")
    stdout().print(table(columns, list_rows(found)))


@app.command()
def show(ctx: typer.Context, allocation: AllocationArg) -> None:
    """Show one allocation."""
    session = session_of(ctx)
    found = session.client.get(allocation_path(allocation))
    print_json(found) if session.as_json else print_allocation(found)


def create_body(
    *,
    resource_class: str | None,
    traits: list[str],
    candidates: list[str],
    name: str | None,
    owner: str | None,
    node: str | None,
) -> JSON:
    """The POST body of ``allocation create`` (only what was given)."""
    body: JSON = {"resource_class": resource_class, "name": name, "owner": owner, "node": node}
    body = {k: v for k, v in body.items() if v is not None}
    if traits:
        body["traits"] = traits
    if candidates:
        body["candidate_nodes"] = candidates
    if "resource_class" not in body and "node" not in body:
        raise CliError("give --resource-class (or --node to record a deployed node)")
    return body


@app.command()
def create(  # noqa: PLR0913 - one parameter per command-line option
    ctx: typer.Context,
    *,
    resource_class: Text_ = None,
    trait: Many = None,
    candidate_node: Many = None,
    name: Text_ = None,
    owner: Text_ = None,
    node: Annotated[
        str | None,
        typer.Option(
            help="Record this deployed node as the allocation's (backfill).", show_default=False
        ),
    ] = None,
    wait: WaitOpt = False,
    wait_timeout: TimeoutOpt = 0,
) -> None:
    """Ask for a node with this resource class (and traits, among these candidates)."""
    session = session_of(ctx)
    client = session.client
    body = create_body(
        resource_class=resource_class,
        traits=trait or [],
        candidates=candidate_node or [],
        name=name,
        owner=owner,
        node=node,
    )
    made: JSON = client.post("/v1/allocations", body)
    if wait and made.get("state") == "allocating":
        made = wait_for_allocation(client, str(made["uuid"]), timeout=wait_timeout)
    if session.as_json:
        print_json(made)
    elif made.get("state") == "active":
        print_ok(f"allocation {made.get('name') or made['uuid']} has node {made['node_uuid']}")
    else:
        print_allocation(made)


@app.command()
def delete(
    ctx: typer.Context,
    allocations: Annotated[
        list[str], typer.Argument(help="Allocation UUIDs or names.", show_default=False)
    ],
) -> None:
    """Delete allocations, freeing their nodes; exit 1 if any could not be deleted.

    A deployed node keeps its allocation: undeploy it, which deletes the allocation."""
    client = session_of(ctx).client
    failed = 0
    for ident in allocations:
        try:
            client.delete(allocation_path(ident))
        except CliError as exc:
            failed += 1
            print_error(f"allocation {ident}: {exc.message}")
        else:
            print_ok(f"deleted allocation {ident}")
    if failed:
        raise typer.Exit(1)


def note(message: str) -> None:
    """One dim progress line on stderr."""
    stderr().print(Text(message, style="dim"), soft_wrap=True)
