"""The ``metalcast inspection-rule`` commands: conditions on what inspection finds,
and the actions to take when they hold (Ironic's inspection rules, API 1.96).

``--conditions`` and ``--actions`` take a JSON list, or ``@FILE`` to read it from
a file (``@-``: standard input)::

    metalcast inspection-rule create --priority 10 --conditions @lab.json \\
        --actions '[{"op": "add-trait", "args": {"name": "CUSTOM_LAB"}}]'

with ``lab.json`` holding
``[{"op": "eq", "args": {"values": ["{inventory[system_vendor][manufacturer]}", "metalcast"]}}]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from metalcast.cli.client import JSON, CliError
from metalcast.cli.output import fields_table, print_error, print_json, print_ok, stdout, table
from metalcast.cli.session import session_of

app = typer.Typer(
    help="Conditions on inspection data and the actions to take.", no_args_is_help=True
)

RuleArg = Annotated[str, typer.Argument(help="Inspection rule UUID.", show_default=False)]
FIELDS = (
    "uuid", "description", "priority", "phase", "sensitive", "built_in", "conditions",
    "actions", "created_at", "updated_at",
)  # fmt: skip
_JSON_HELP = "A JSON list, or @FILE (@- for standard input)."


def rule_path(ident: str) -> str:
    return f"/v1/inspection_rules/{quote(ident, safe='')}"


def json_list(option: str, text: str) -> list[Any]:
    """``text`` (or the file ``@FILE`` names) as a JSON list.

    Raises:
        CliError: not readable, not JSON, or not a list.
    """
    source = option
    if text.startswith("@"):
        source = text[1:] or "-"
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
        except OSError as exc:
            raise CliError(f"{option}: cannot read {source}: {exc.strerror}") from exc
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise CliError(f"{option} ({source}) is not JSON: {exc}") from exc
    if not isinstance(value, list):
        raise CliError(f'{option} must be a JSON list of {{"op": ..., "args": ...}} objects')
    return value


def create_body(
    *,
    actions: str,
    conditions: str | None,
    description: str | None,
    priority: int | None,
    phase: str | None,
    sensitive: bool,
    uuid: str | None,
) -> JSON:
    """The POST body of ``inspection-rule create`` (only what was given)."""
    body: JSON = {"actions": json_list("--actions", actions)}
    if conditions is not None:
        body["conditions"] = json_list("--conditions", conditions)
    optional = {"description": description, "priority": priority, "phase": phase, "uuid": uuid}
    body.update({k: v for k, v in optional.items() if v is not None})
    if sensitive:
        body["sensitive"] = True
    return body


@app.command("list")
def list_rules(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="At most this many (0: all).", min=0)] = 0,
) -> None:
    """List inspection rules, highest priority first."""
    session = session_of(ctx)
    params = {"detail": "True", "sort_key": "priority", "sort_dir": "desc"}
    found = list(
        session.client.paginate(
            "/v1/inspection_rules", "inspection_rules", params=params, limit=limit
        )
    )
    if session.as_json:
        print_json(found)
        return
    rows = [
        [r.get("uuid"), r.get("priority"), r.get("phase"), r.get("sensitive"), r.get("description")]
        for r in found
    ]
    stdout().print(table(("UUID", "Priority", "Phase", "Sensitive", "Description"), rows))


@app.command()
def show(ctx: typer.Context, rule: RuleArg) -> None:
    """Show one inspection rule."""
    session = session_of(ctx)
    found = session.client.get(rule_path(rule))
    if session.as_json:
        print_json(found)
    else:
        stdout().print(fields_table(found, FIELDS, title="Inspection rule"))


@app.command()
def create(
    ctx: typer.Context,
    *,
    actions: Annotated[str, typer.Option(help=f"The actions. {_JSON_HELP}", show_default=False)],
    conditions: Annotated[
        str | None, typer.Option(help=f"The conditions. {_JSON_HELP}", show_default=False)
    ] = None,
    description: Annotated[str | None, typer.Option(show_default=False)] = None,
    priority: Annotated[
        int | None,
        typer.Option(help="0 to 9999; higher runs first (default 0).", show_default=False),
    ] = None,
    phase: Annotated[
        str | None, typer.Option(help="main (the default).", show_default=False)
    ] = None,
    sensitive: Annotated[
        bool,
        typer.Option("--sensitive", help="The rule sees secrets; its arguments are never shown."),
    ] = False,
    uuid: Annotated[str | None, typer.Option(show_default=False)] = None,
) -> None:
    """Create an inspection rule."""
    session = session_of(ctx)
    body = create_body(
        actions=actions,
        conditions=conditions,
        description=description,
        priority=priority,
        phase=phase,
        sensitive=sensitive,
        uuid=uuid,
    )
    made: JSON = session.client.post("/v1/inspection_rules", body)
    if session.as_json:
        print_json(made)
    else:
        print_ok(f"created inspection rule {made['uuid']}")


@app.command()
def delete(
    ctx: typer.Context,
    rules: Annotated[
        list[str] | None, typer.Argument(help="Inspection rule UUIDs.", show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Delete every inspection rule.")] = False,
) -> None:
    """Delete inspection rules; exit 1 if any could not be deleted."""
    client = session_of(ctx).client
    if all_ == bool(rules):
        print_error("give inspection rule UUIDs, or --all (not both)")
        raise typer.Exit(2)
    if all_:
        client.delete("/v1/inspection_rules")
        print_ok("deleted every inspection rule")
        return
    failed = 0
    for ident in rules or []:
        try:
            client.delete(rule_path(ident))
        except CliError as exc:
            failed += 1
            print_error(f"inspection rule {ident}: {exc.message}")
        else:
            print_ok(f"deleted inspection rule {ident}")
    if failed:
        raise typer.Exit(1)
