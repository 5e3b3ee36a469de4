"""The ``metalcast audit`` commands: who wrote what through the API, and how it ended."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import typer
from rich.text import Text

from metalcast.cli.client import JSON
from metalcast.cli.output import print_json, stdout, table
from metalcast.cli.session import session_of

app = typer.Typer(
    help="Read the audit log: every write through the API (system readers only).",
    no_args_is_help=True,
)

Filter = Annotated[str | None, typer.Option(show_default=False)]


def audit_rows(events: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    """The rows of ``audit list``: time, who, project, request, outcome, node."""
    rows = []
    for e in events:
        status = int(e.get("status") or 0)
        style = "red" if status >= 400 else "green"
        rows.append(
            [
                e.get("created_at"),
                e.get("user_name") or e.get("user_id"),
                e.get("project_id"),
                f"{e.get('method')} {e.get('path')}",
                Text(str(status), style=style),
                e.get("node_uuid"),
            ]
        )
    return rows


@app.command("list")
def list_events(
    ctx: typer.Context,
    *,
    node: Annotated[
        str | None, typer.Option(help="A node's UUID or name.", show_default=False)
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="A user's id or name.", show_default=False)
    ] = None,
    project: Annotated[str | None, typer.Option(help="A project id.", show_default=False)] = None,
    method: Annotated[
        str | None, typer.Option(help="POST, PUT, PATCH or DELETE.", show_default=False)
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="From this ISO 8601 time on (UTC unless a zone is given).", show_default=False
        ),
    ] = None,
    until: Filter = None,
    limit: Annotated[int, typer.Option(help="At most this many events (0: all).", min=0)] = 50,
) -> None:
    """List audited requests, newest first (the last 50 unless --limit says otherwise)."""
    session = session_of(ctx)
    filters = {
        "node": node,
        "user": user,
        "project": project,
        "method": method,
        "since": since,
        "until": until,
    }
    params: JSON = {"sort_dir": "desc", **{k: v for k, v in filters.items() if v is not None}}
    events = list(session.client.paginate("/v1/audit", "events", params=params, limit=limit))
    if session.as_json:
        print_json(events)
        return
    columns = ("Time", "User", "Project", "Request", "Status", "Node")
    stdout().print(table(columns, audit_rows(events), wrap="Request"))
