"""The ``metalcast`` command: the server, the database, and a client of the API.

Every client command talks HTTP to the API at ``--url`` (with ``--token`` or a user
name and password, when the server wants credentials); only ``server``, ``db
upgrade``, ``db copy``, ``user bootstrap-admin`` and ``secrets rotate-key`` work on
the local installation.  Any
:class:`MetalcastError` a command raises is shown as one red line and exit code 1.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

import metalcast
from metalcast.cli import (
    allocations,
    audit,
    console,
    events,
    hosts,
    identity,
    inspection_rules,
    lab,
    nodes,
    policy,
    ramdisk,
    tls,
    webhooks,
)
from metalcast.cli.client import DEFAULT_URL
from metalcast.cli.output import print_error, print_json, print_ok
from metalcast.cli.session import Session, session_of
from metalcast.config import Settings, load_settings
from metalcast.errors import MetalcastError
from metalcast.logs import configure_logging


class _Group(TyperGroup):
    """The root group: turns every MetalcastError into one red line and exit 1."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MetalcastError as exc:
            print_error(exc.message)
            raise typer.Exit(1) from None


app = typer.Typer(
    name="metalcast",
    cls=_Group,
    help="metalcast: provision bare-metal servers through an Ironic-compatible API.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Manage metalcast's database.", no_args_is_help=True)
secrets_app = typer.Typer(
    help="Manage the key that encrypts secrets at rest.", no_args_is_help=True
)
app.add_typer(nodes.app, name="node")
app.add_typer(allocations.app, name="allocation")
app.add_typer(inspection_rules.app, name="inspection-rule")
app.add_typer(hosts.app, name="host")
app.add_typer(db_app, name="db")
app.add_typer(secrets_app, name="secrets")
app.add_typer(lab.app, name="lab")
app.add_typer(ramdisk.app, name="ramdisk")
app.add_typer(policy.app, name="policy")
app.add_typer(identity.user_app, name="user")
app.add_typer(identity.project_app, name="project")
app.add_typer(identity.role_app, name="role")
app.add_typer(identity.token_app, name="token")
app.add_typer(audit.app, name="audit")
app.add_typer(webhooks.app, name="webhook")
app.command("whoami")(identity.whoami)
nodes.app.command("console")(console.console)
nodes.app.command("console-log")(console.console_log)
app.command("events")(events.tail)
app.add_typer(tls.app, name="tls")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="METALCAST_CONFIG", help="TOML settings file.", show_default=False
    ),
]
StateDirOpt = Annotated[
    Path | None,
    typer.Option(help="Where the database, secret key and boot files live.", show_default=False),
]


@app.callback()
def root(
    ctx: typer.Context,
    *,
    url: Annotated[
        str, typer.Option(envvar="METALCAST_URL", help="The metalcast API.")
    ] = DEFAULT_URL,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
    api_version: Annotated[
        str | None,
        typer.Option(
            envvar="METALCAST_API_VERSION",
            help="API microversion (default: the newest the server offers).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="METALCAST_TOKEN",
            help="An API token (`metalcast token create`); better in the environment.",
            show_default=False,
        ),
    ] = None,
    username: Annotated[
        str | None,
        typer.Option(
            envvar="METALCAST_USERNAME",
            help="Log in as this user; the password comes from METALCAST_PASSWORD (or a prompt).",
            show_default=False,
        ),
    ] = None,
    cacert: Annotated[
        Path | None,
        typer.Option(
            envvar="METALCAST_CACERT",
            help="CA certificate to verify an https API with (default: the system's).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Global options, shared by every client command."""
    given = ctx.obj if isinstance(ctx.obj, Session) else None
    session = Session(
        url,
        api_version,
        as_json,
        transport=given.transport if given else None,
        token=token,
        username=username,
        # never an option: a password on the command line is in `ps` and the history
        password=os.environ.get("METALCAST_PASSWORD"),
        cacert=cacert,
    )
    ctx.obj = session
    ctx.call_on_close(session.close)


def settings_from(config: Path | None, *, overrides: Mapping[str, object | None]) -> Settings:
    """Load the settings with command-line flags taking precedence over everything.

    ``overrides`` maps ``METALCAST_*`` variable names to flag values (None: not given).

    Raises:
        InvalidInput: a file or value is invalid.
    """
    environ = dict(os.environ)
    environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    return load_settings(config, environ)


LogLevelOpt = Annotated[str, typer.Option(help="debug, info, warning or error.")]
LogJsonOpt = Annotated[
    bool, typer.Option("--log-json", help="Log one JSON object per line (for log shippers).")
]
HostOpt = Annotated[str | None, typer.Option(help="Listen address.", show_default=False)]
PortOpt = Annotated[int | None, typer.Option(help="Listen port.", show_default=False)]


def api_settings(
    config: Path | None,
    *,
    host: str | None,
    port: int | None,
    state_dir: Path | None,
    log_level: str,
    log_json: bool,
) -> Settings:
    """The settings of a process that serves the API, logging configured."""
    settings = settings_from(
        config,
        overrides={
            "METALCAST_API__HOST": host,
            "METALCAST_API__PORT": port,
            "METALCAST_STATE_DIR": state_dir,
        },
    )
    configure_logging(level=log_level, json=log_json)
    return settings


@app.command()
def server(
    *,
    config: ConfigOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    state_dir: StateDirOpt = None,
    log_level: LogLevelOpt = "info",
    log_json: LogJsonOpt = False,
) -> None:
    """Run the all-in-one server (API + conductor) until SIGTERM or Ctrl-C."""
    from metalcast.cli.server import run_server  # the server stack only when serving

    run_server(
        api_settings(
            config,
            host=host,
            port=port,
            state_dir=state_dir,
            log_level=log_level,
            log_json=log_json,
        )
    )


@app.command()
def api(
    *,
    config: ConfigOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    state_dir: StateDirOpt = None,
    log_level: LogLevelOpt = "info",
    log_json: LogJsonOpt = False,
) -> None:
    """Run an API process (no conductor of its own) on a shared PostgreSQL database.

    Any number may run; each sends a node's requests to the conductor that owns it.
    """
    from metalcast.cli.processes import run_api

    run_api(
        api_settings(
            config,
            host=host,
            port=port,
            state_dir=state_dir,
            log_level=log_level,
            log_json=log_json,
        )
    )


@app.command()
def conductor(
    *,
    config: ConfigOpt = None,
    hostname: Annotated[
        str | None,
        typer.Option(
            help="This conductor's name (unique; default: the host's).", show_default=False
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Its conductor group (default: '').", show_default=False),
    ] = None,
    rpc_host: Annotated[
        str | None,
        typer.Option(help="Address API processes reach it at.", show_default=False),
    ] = None,
    rpc_port: Annotated[
        int | None,
        typer.Option(
            help="Port for API processes and for scraping its /metrics (default: any free one).",
            show_default=False,
        ),
    ] = None,
    state_dir: StateDirOpt = None,
    log_level: LogLevelOpt = "info",
    log_json: LogJsonOpt = False,
) -> None:
    """Run a conductor process on a shared PostgreSQL database.

    Any number may run; the hash ring gives each node to one live conductor of its
    conductor group, and the others take a dead one's nodes over.
    """
    from metalcast.cli.processes import run_conductor

    settings = settings_from(
        config,
        overrides={
            "METALCAST_CONDUCTOR__HOSTNAME": hostname,
            "METALCAST_CONDUCTOR__CONDUCTOR_GROUP": group,
            "METALCAST_CONDUCTOR__RPC_HOST": rpc_host,
            "METALCAST_CONDUCTOR__RPC_PORT": rpc_port,
            "METALCAST_STATE_DIR": state_dir,
        },
    )
    configure_logging(level=log_level, json=log_json)
    run_conductor(settings)


@db_app.command("upgrade")
def db_upgrade(*, config: ConfigOpt = None, state_dir: StateDirOpt = None) -> None:
    """Apply every database migration (the server also does this when it starts)."""
    from metalcast.db.engine import Database

    settings = settings_from(config, overrides={"METALCAST_STATE_DIR": state_dir})
    db = Database(settings.database_url)
    try:
        db.migrate()
    finally:
        db.dispose()
    print_ok(f"database {db.safe_url} is up to date")


@db_app.command("copy")
def db_copy(
    *,
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="The empty database to copy into: postgresql+psycopg://USER@HOST/DATABASE. "
            "Leave the password out of it (`ps` shows command lines): PostgreSQL's client "
            "takes it from PGPASSWORD or ~/.pgpass.",
            show_default=False,
        ),
    ],
    source: Annotated[
        str | None,
        typer.Option(
            "--from", help="The database to copy (default: the configured one).", show_default=False
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per batch.")] = 500,
    config: ConfigOpt = None,
    state_dir: StateDirOpt = None,
) -> None:
    """Copy every row of this installation's database into another, empty one (move an
    all-in-one SQLite install into PostgreSQL).

    Stop the server first (the command refuses while it runs).  Secrets are copied
    sealed: the server that uses the new database needs this state directory's
    secret.key.
    """
    from metalcast.cli.db_copy import copy_database

    settings = settings_from(config, overrides={"METALCAST_STATE_DIR": state_dir})
    done = copy_database(
        settings, target_url=to, source_url=source, batch=batch_size, say=_progress_line
    )
    rows = sum(table.rows for table in done.tables)
    print_ok(
        f"copied {rows} row(s) of {len(done.tables)} tables from {done.source} to "
        f"{done.target}; every table's rows counted on both sides"
    )
    print_ok(
        f"secrets were copied sealed with {settings.state_dir / 'secret.key'}: start the "
        "server on the new database with that key file (the same --state-dir) and "
        "METALCAST_DATABASE__URL set to the target's URL"
    )


def _progress_line(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@secrets_app.command("rotate-key")
def secrets_rotate_key(*, config: ConfigOpt = None, state_dir: StateDirOpt = None) -> None:
    """Encrypt every stored secret with a new key and delete the old one.

    Stop the server first (the command refuses while it runs).  Safe to interrupt:
    run it again to finish.  Database backups taken before need the old key.
    """
    from metalcast.cli.key_rotation import rotate_key

    settings = settings_from(config, overrides={"METALCAST_STATE_DIR": state_dir})
    done = rotate_key(settings)
    again = " (an interrupted rotation finished)" if done.resumed else ""
    print_ok(
        f"secret key rotated{again}: {done.rows} row(s) re-encrypted, the old key deleted; "
        f"back up {settings.state_dir / 'secret.key'} with the database"
    )


@app.command()
def version(ctx: typer.Context) -> None:
    """Print metalcast's version."""
    if session_of(ctx).as_json:
        print_json({"version": metalcast.__version__})
    else:
        sys.stdout.write(f"metalcast {metalcast.__version__}\n")


_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def normalize_argv(args: Sequence[str]) -> list[str]:
    """Accept ``--wait 600`` and ``--wait=600`` as ``--wait --wait-timeout 600``.

    Like the ``baremetal`` client, ``--wait`` takes an optional timeout; typer has
    no optional option values, so the timeout is moved to its own option here.
    """
    out: list[str] = []
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            return [*out, arg, *rest]
        if arg.startswith("--wait="):
            out += ["--wait", "--wait-timeout", arg.removeprefix("--wait=")]
        elif arg == "--wait" and rest and _NUMBER.match(rest[0]):
            out += ["--wait", "--wait-timeout", rest.pop(0)]
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """The console-script entry point."""
    args = normalize_argv(sys.argv[1:] if argv is None else argv)
    app(args=args, prog_name="metalcast")
    return 0


if __name__ == "__main__":
    sys.exit(main())
