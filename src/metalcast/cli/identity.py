"""``metalcast user/project/role/token`` and ``whoami``: the ``builtin`` identities.

Every command goes through the API (``/v1/auth/...``), with the caller's own
credentials, except ``user bootstrap-admin``, which works on the local database like
``db upgrade`` to create or reset an administrator when no one can log in any more.
Passwords are read from a hidden prompt or, with ``--password-stdin``, from the first
line of standard input: never from the command line, where ``ps`` and shell history
would show them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from metalcast.cli.client import JSON, CliError
from metalcast.cli.output import fields_table, print_json, print_ok, stdout, table
from metalcast.cli.session import Session, session_of

user_app = typer.Typer(
    help="metalcast's own users (api.auth_strategy builtin).", no_args_is_help=True
)
project_app = typer.Typer(help="Projects: who owns and leases nodes.", no_args_is_help=True)
role_app = typer.Typer(help="Give users roles on projects or on the system.", no_args_is_help=True)
token_app = typer.Typer(help="Your API tokens.", no_args_is_help=True)

Opt = Annotated[str | None, typer.Option(show_default=False)]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of standard input."
    ),
]
ProjectOpt = Annotated[
    str | None, typer.Option("--project", help="Project name or id.", show_default=False)
]
SystemOpt = Annotated[bool, typer.Option("--system", help="The system instead of a project.")]

USER_FIELDS = (
    "id", "name", "enabled", "description", "default_project_name", "default_project_id",
    "roles", "created_at", "updated_at",
)  # fmt: skip
PROJECT_FIELDS = ("id", "name", "enabled", "description", "created_at", "updated_at")
TOKEN_FIELDS = (
    "id", "user_name", "project_name", "system", "status", "description", "created_at",
    "expires_at", "revoked_at",
)  # fmt: skip


def _path(*parts: str) -> str:
    return "/".join(["/v1/auth", *(quote(p, safe="") for p in parts)])


def read_password(*, from_stdin: bool, confirm: bool = True) -> str:
    """A password from standard input's first line, or from a hidden prompt.

    Raises:
        CliError: standard input has no password on it.
    """
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
        return password
    answer: str = typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)
    return answer


def _show(session: Session, document: Mapping[str, Any], keys: Sequence[str], title: str) -> None:
    if session.as_json:
        print_json(document)
        return
    shown = dict(document)
    if "roles" in shown:
        shown["roles"] = ", ".join(_role_label(r) for r in shown["roles"]) or None
    stdout().print(fields_table(shown, keys, title=title))


def _role_label(assignment: Mapping[str, Any]) -> str:
    where = "system" if assignment.get("system") else f"project {assignment.get('project_name')}"
    return f"{assignment['role']} on {where}"


def _list(
    session: Session, items: list[JSON], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    if session.as_json:
        print_json(items)
    else:
        stdout().print(table(columns, list(rows)))


# ----------------------------------------------------------------------------- users


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_', '-'.")],
    *,
    password_stdin: PasswordStdinOpt = False,
    default_project: Annotated[
        str | None, typer.Option(help="The project its logins are scoped to.", show_default=False)
    ] = None,
    description: Opt = None,
) -> None:
    """Create a user (the password is asked for, or read with --password-stdin)."""
    session = session_of(ctx)
    body: JSON = {"name": name, "password": read_password(from_stdin=password_stdin)}
    if default_project is not None:
        body["default_project"] = default_project
    if description is not None:
        body["description"] = description
    _show(session, session.client.post(_path("users"), body), USER_FIELDS, f"User {name}")


@user_app.command("list")
def user_list(ctx: typer.Context, *, project: ProjectOpt = None) -> None:
    """List users (of one project with --project)."""
    session = session_of(ctx)
    params = {} if project is None else {"project": project}
    users = session.client.get(_path("users"), params)["users"]
    rows = (
        [
            u["id"],
            u["name"],
            "yes" if u["enabled"] else "no",
            ", ".join(map(_role_label, u["roles"])),
        ]
        for u in users
    )
    _list(session, users, ("ID", "Name", "Enabled", "Roles"), rows)


@user_app.command("show")
def user_show(ctx: typer.Context, user: Annotated[str, typer.Argument(help="Name or id.")]) -> None:
    """Show a user and their roles."""
    session = session_of(ctx)
    _show(session, session.client.get(_path("users", user)), USER_FIELDS, f"User {user}")


@user_app.command("set")
def user_set(
    ctx: typer.Context,
    user: Annotated[str, typer.Argument(help="Name or id.")],
    *,
    name: Annotated[
        str | None, typer.Option("--name", help="A new name.", show_default=False)
    ] = None,
    password: Annotated[bool, typer.Option("--password", help="Ask for a new password.")] = False,
    password_stdin: PasswordStdinOpt = False,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", show_default=False)] = None,
    default_project: Annotated[
        str | None,
        typer.Option(help="Project name or id; '' for none.", show_default=False),
    ] = None,
    description: Opt = None,
) -> None:
    """Change a user's name, password, default project, description, or disable them
    (their logins and tokens stop working)."""
    session = session_of(ctx)
    body: JSON = {}
    if name is not None:
        body["name"] = name
    if password or password_stdin:
        body["password"] = read_password(from_stdin=password_stdin)
    if enabled is not None:
        body["enabled"] = enabled
    if default_project is not None:
        body["default_project"] = default_project or None
    if description is not None:
        body["description"] = description
    if not body:
        raise CliError("nothing to change: give at least one option (see --help)")
    found = session.client.request("PATCH", _path("users", user), json=body)
    _show(session, found, USER_FIELDS, f"User {found['name']}")


@user_app.command("delete")
def user_delete(
    ctx: typer.Context, user: Annotated[str, typer.Argument(help="Name or id.")]
) -> None:
    """Delete a user, their role assignments and their tokens."""
    session_of(ctx).client.delete(_path("users", user))
    print_ok(f"deleted user {user}")


@user_app.command("bootstrap-admin")
def user_bootstrap_admin(
    *,
    name: Annotated[str, typer.Option(help="The administrator's name.")] = "admin",
    password_stdin: PasswordStdinOpt = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", envvar="METALCAST_CONFIG", help="TOML settings file.", show_default=False
        ),
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="The server's state directory.", show_default=False)
    ] = None,
) -> None:
    """Create or reset a system administrator in the local database (server running
    or not): for when no administrator can log in any more.  Without
    --password-stdin a random password is made and printed once."""
    from metalcast.cli import bootstrap
    from metalcast.cli.main import settings_from  # main imports this module
    from metalcast.cli.server import server_url
    from metalcast.db import passwords
    from metalcast.db.engine import Database

    given = read_password(from_stdin=True) if password_stdin else None
    settings = settings_from(config, overrides={"METALCAST_STATE_DIR": state_dir})
    password = given or passwords.random_password()
    db = Database(settings.database_url)
    try:
        db.migrate()
        created = bootstrap.reset_admin(db, name, password)
    finally:
        db.dispose()
    done = "created" if created else "reset (enabled, with a new password)"
    if given is None:
        why = f"metalcast: administrator '{name}' {done}."
        url = settings.api.public_url or server_url(settings)
        bootstrap.print_credentials(name, password, url=url, why=why)
    else:
        print_ok(
            f"administrator {name} {done} in {db.safe_url}; "
            "old logins cached by a running server end within api.auth_cache_seconds"
        )


# -------------------------------------------------------------------------- projects


@project_app.command("create")
def project_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Letters, digits, '.', '_', '-'.")],
    *,
    description: Opt = None,
) -> None:
    """Create a project."""
    session = session_of(ctx)
    body: JSON = {"name": name}
    if description is not None:
        body["description"] = description
    _show(session, session.client.post(_path("projects"), body), PROJECT_FIELDS, f"Project {name}")


@project_app.command("list")
def project_list(ctx: typer.Context) -> None:
    """List projects."""
    session = session_of(ctx)
    projects = session.client.get(_path("projects"))["projects"]
    rows = (
        [p["id"], p["name"], "yes" if p["enabled"] else "no", p["description"]] for p in projects
    )
    _list(session, projects, ("ID", "Name", "Enabled", "Description"), rows)


@project_app.command("show")
def project_show(
    ctx: typer.Context, project: Annotated[str, typer.Argument(help="Name or id.")]
) -> None:
    """Show a project (its id is what nodes' owner and lessee name)."""
    session = session_of(ctx)
    _show(
        session,
        session.client.get(_path("projects", project)),
        PROJECT_FIELDS,
        f"Project {project}",
    )


@project_app.command("set")
def project_set(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="Name or id.")],
    *,
    name: Annotated[
        str | None, typer.Option("--name", help="A new name.", show_default=False)
    ] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", show_default=False)] = None,
    description: Opt = None,
) -> None:
    """Rename, describe, or disable a project (its members' tokens stop working)."""
    session = session_of(ctx)
    body: JSON = {
        k: v
        for k, v in {"name": name, "enabled": enabled, "description": description}.items()
        if v is not None
    }
    if not body:
        raise CliError("nothing to change: give at least one option (see --help)")
    found = session.client.request("PATCH", _path("projects", project), json=body)
    _show(session, found, PROJECT_FIELDS, f"Project {found['name']}")


@project_app.command("delete")
def project_delete(
    ctx: typer.Context, project: Annotated[str, typer.Argument(help="Name or id.")]
) -> None:
    """Delete a project, its role assignments and tokens (refused while it owns or
    leases nodes)."""
    session_of(ctx).client.delete(_path("projects", project))
    print_ok(f"deleted project {project}")


# ----------------------------------------------------------------------------- roles


def _grant_path(role: str, user: str, project: str | None, *, system: bool) -> str:
    if (project is None) == (not system):
        raise CliError("say where: --project P or --system (one of them)")
    if system:
        return _path("system", "users", user, "roles", role)
    assert project is not None
    return _path("projects", project, "users", user, "roles", role)


UserOpt = Annotated[str, typer.Option("--user", help="User name or id.")]
RoleArg = Annotated[str, typer.Argument(help="admin, manager, member, reader or service.")]


@role_app.command("add")
def role_add(
    ctx: typer.Context,
    role: RoleArg,
    *,
    user: UserOpt,
    project: ProjectOpt = None,
    system: SystemOpt = False,
) -> None:
    """Give a user a role on a project or on the system."""
    session_of(ctx).client.put(_grant_path(role, user, project, system=system))
    print_ok(f"{user} is {role} on {'the system' if system else f'project {project}'}")


@role_app.command("remove")
def role_remove(
    ctx: typer.Context,
    role: RoleArg,
    *,
    user: UserOpt,
    project: ProjectOpt = None,
    system: SystemOpt = False,
) -> None:
    """Take a role away (takes effect at once on this server)."""
    session_of(ctx).client.delete(_grant_path(role, user, project, system=system))
    print_ok(f"{user} is no longer {role} on {'the system' if system else f'project {project}'}")


@role_app.command("list")
def role_list(
    ctx: typer.Context,
    *,
    user: Annotated[
        str | None, typer.Option("--user", help="User name or id.", show_default=False)
    ] = None,
    project: ProjectOpt = None,
    system: SystemOpt = False,
) -> None:
    """List role assignments."""
    session = session_of(ctx)
    params = {k: v for k, v in {"user": user, "project": project}.items() if v is not None}
    if system:
        params["scope"] = "system"
    found = session.client.get(_path("role_assignments"), params)["role_assignments"]
    rows = (
        [a["user_name"], a["role"], "system" if a["system"] else a["project_name"]] for a in found
    )
    _list(session, found, ("User", "Role", "On"), rows)


# ---------------------------------------------------------------------------- tokens


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    *,
    project: ProjectOpt = None,
    system: SystemOpt = False,
    expires_in: Annotated[
        int | None,
        typer.Option(
            help="Seconds it lives (default and most: api.token_ttl).", min=1, show_default=False
        ),
    ] = None,
    description: Opt = None,
) -> None:
    """Create an API token for yourself, scoped to a project or the system (default:
    the scope you are logged in to).  Its secret is printed this once only."""
    session = session_of(ctx)
    body: JSON = {}
    for key, value in (
        ("project", project),
        ("expires_in", expires_in),
        ("description", description),
    ):
        if value is not None:
            body[key] = value
    if system:
        body["system"] = True
    created = session.client.post(_path("tokens"), body)
    if session.as_json:
        print_json(created)
        return
    scope = "the system" if created["system"] else f"project {created['project_name']}"
    sys.stdout.write(
        f"token {created['id']} of {created['user_name']} on {scope}, expires "
        f"{created['expires_at']}.\nIts secret is shown this once only:\n\n"
        f"    export METALCAST_TOKEN={created['token']}\n\n"
    )


@token_app.command("list")
def token_list(ctx: typer.Context) -> None:
    """List your tokens (a system administrator sees everyone's)."""
    session = session_of(ctx)
    tokens = session.client.get(_path("tokens"))["tokens"]
    rows = (
        [
            t["id"],
            t["user_name"],
            "system" if t["system"] else t["project_name"],
            t["status"],
            t["expires_at"],
            t["description"],
        ]
        for t in tokens
    )
    _list(session, tokens, ("ID", "User", "Scope", "Status", "Expires", "Description"), rows)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context, token: Annotated[str, typer.Argument(help="The token's id.")]
) -> None:
    """Revoke a token: it stops working at once on this server."""
    session_of(ctx).client.delete(_path("tokens", token))
    print_ok(f"revoked token {token}")


def whoami(ctx: typer.Context) -> None:
    """Show who your credentials say you are, where, and with which roles."""
    session = session_of(ctx)
    found = session.client.get(_path("whoami"))
    if session.as_json:
        print_json(found)
        return
    shown = {
        "user": found.get("user_name") or found.get("user_id"),
        "scope": "system" if found.get("system") else found.get("project_name"),
        "project_id": found.get("project_id"),
        "roles": ", ".join(found.get("roles") or []) or None,
        "expires_at": found.get("expires_at"),
    }
    stdout().print(fields_table(shown, tuple(shown), title="You are"))
