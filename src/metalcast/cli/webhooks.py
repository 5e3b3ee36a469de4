"""The ``metalcast webhook`` commands: where node events are POSTed, and how their
deliveries went (system administrators only; docs/events.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from metalcast.cli.client import JSON
from metalcast.cli.output import print_json, print_ok, stdout, table
from metalcast.cli.session import session_of

app = typer.Typer(
    help="Manage webhooks: URLs that get node events, signed (system admins only).",
    no_args_is_help=True,
)

_STATUS_STYLE = {"delivered": "green", "failed": "red", "pending": "yellow"}


def _path(webhook: str, *parts: str) -> str:
    return "/".join(("/v1/webhooks", webhook, *parts))


@app.command("create")
def create(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="Where to POST events (http or https).")],
    *,
    secret: Annotated[
        str,
        typer.Option(
            help="The signing secret (16 to 512 characters); asked for when not given.",
            envvar="METALCAST_WEBHOOK_SECRET",
            prompt=True,
            hide_input=True,
            show_default=False,
        ),
    ],
    kind: Annotated[
        list[str] | None,
        typer.Option(help="Only events about this (repeat for more).", show_default=False),
    ] = None,
    node: Annotated[
        list[str] | None,
        typer.Option(help="Only events of this node UUID (repeat for more).", show_default=False),
    ] = None,
    description: Annotated[str | None, typer.Option(show_default=False)] = None,
) -> None:
    """Create a webhook.  Each delivery carries X-Metalcast-Signature: sha256=<HMAC of
    "<X-Metalcast-Timestamp>." + body with the secret>."""
    session = session_of(ctx)
    body: JSON = {"url": url, "secret": secret, "kinds": kind or [], "nodes": node or []}
    if description is not None:
        body["description"] = description
    created = session.client.post("/v1/webhooks", body)
    if session.as_json:
        print_json(created)
        return
    print_ok(f"created webhook {created['uuid']} for {created['url']}")


@app.command("list")
def list_webhooks(ctx: typer.Context) -> None:
    """List webhooks (never their secrets)."""
    session = session_of(ctx)
    hooks = session.client.get("/v1/webhooks")["webhooks"]
    if session.as_json:
        print_json(hooks)
        return
    rows = [
        [h["uuid"], h["url"], ", ".join(h["kinds"]) or "all", ", ".join(h["nodes"]) or "all"]
        for h in hooks
    ]
    stdout().print(table(("UUID", "URL", "Kinds", "Nodes"), rows, wrap="URL"))


@app.command("show")
def show(ctx: typer.Context, webhook: Annotated[str, typer.Argument(help="Its UUID.")]) -> None:
    """Show a webhook."""
    session = session_of(ctx)
    found = session.client.get(_path(webhook))
    if session.as_json:
        print_json(found)
        return
    rows = [[key, str(value)] for key, value in found.items()]
    stdout().print(table(("Field", "Value"), rows, wrap="Value"))


@app.command("delete")
def delete(ctx: typer.Context, webhook: Annotated[str, typer.Argument(help="Its UUID.")]) -> None:
    """Delete a webhook and its deliveries."""
    session_of(ctx).client.delete(_path(webhook))
    print_ok(f"deleted webhook {webhook}")


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook: Annotated[str, typer.Argument(help="Its UUID.")],
    *,
    status: Annotated[
        str | None,
        typer.Option(help="pending, delivered or failed.", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.", min=0)] = 50,
) -> None:
    """A webhook's deliveries: status, tries, last response code and error."""
    session = session_of(ctx)
    params: JSON = {"limit": limit}
    if status is not None:
        params["status"] = status
    found = session.client.get(_path(webhook, "deliveries"), params)["deliveries"]
    if session.as_json:
        print_json(found)
        return
    rows = [
        [
            d["created_at"],
            d["event"].get("node_uuid"),
            ", ".join(d["event"].get("kinds") or ()),
            Text(d["status"], style=_STATUS_STYLE.get(d["status"], "")),
            d["attempts"],
            d["response_code"],
            d["last_error"],
        ]
        for d in found
    ]
    columns = ("Created", "Node", "Kinds", "Status", "Tries", "Code", "Last error")
    stdout().print(table(columns, rows, wrap="Last error"))
