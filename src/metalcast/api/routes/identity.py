"""/v1/auth: metalcast's own users, projects and role assignments, and whoami.

A metalcast extension beside Ironic's v1 (served at every microversion) for the
``builtin`` authentication strategy; tokens are in :mod:`.tokens`.  Shapes follow
Keystone's where it has one (``PUT /v1/auth/projects/{p}/users/{u}/roles/{r}``,
``/v1/auth/system/users/{u}/roles/{r}``).  Bodies are JSON objects; an update
(PATCH) sends only the fields it changes.  Every change that can take a right away
drops the cached credentials it concerns at once.

Errors: ``InvalidInput`` (400) for a bad body or parameter, ``NotFound`` (404),
``Conflict`` (409) for a taken name, a project that still holds nodes, or an
administrator disabling or deleting themselves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import (
    DATE_TIME,
    Named,
    Operation,
    Param,
    array,
    body,
    no_content,
    nullable,
    obj,
    string,
)
from metalcast.api.params import check_query as check_params
from metalcast.api.schema import Field, validate_body
from metalcast.api.views.common import iso
from metalcast.api.views.identity import (
    ASSIGNMENT,
    PROJECT,
    USER,
    render_assignment,
    render_project,
    render_user,
)
from metalcast.db import identity, passwords
from metalcast.db.identity import Project, User
from metalcast.errors import Conflict, InvalidInput, NotFound

# ------------------------------------------------------------------------ validation

NAME_MAX = identity.NAME_MAX
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_name(name: str, value: Any) -> None:
    """A user or project name: letters, digits, '.', '_', '-', starting with a letter
    or digit, and not an id (32 hex digits).  Raises ``InvalidInput``."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or identity.is_id(value):
        raise InvalidInput(
            f"Invalid value for field '{name}': names are 1 to {NAME_MAX} letters, digits, "
            "'.', '_' or '-', start with a letter or digit, and are not 32 hex digits "
            "(that is an id)."
        )


def check_password(name: str, value: Any) -> None:
    """At least :data:`~metalcast.db.passwords.MIN_LENGTH` characters, no control
    characters.  Raises ``InvalidInput`` (never quoting the password)."""
    if not isinstance(value, str) or len(value) < passwords.MIN_LENGTH:
        raise InvalidInput(
            f"Invalid value for field '{name}': a password has at least "
            f"{passwords.MIN_LENGTH} characters."
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidInput(
            f"Invalid value for field '{name}': a password has no control characters."
        )


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`~metalcast.db.identity.ROLES`.  Raises ``InvalidInput``."""
    if role not in identity.ROLES:
        raise InvalidInput(
            f"Unknown role '{role[:40]}'; the roles are {', '.join(identity.ROLES)}."
        )
    return role


def check_query(call: Call, params: tuple[Param, ...], *, what: str) -> None:
    """Raise ``InvalidInput`` for a query parameter not in ``params``."""
    check_params(call.query, params, what=what)


_NAME = Field(nullable=False, max_length=NAME_MAX, check=check_name)
_DESCRIPTION = Field(max_length=255)
_ENABLED = Field("boolean", nullable=False)
PROJECT_FIELDS: Mapping[str, Field] = {
    "name": _NAME,
    "description": _DESCRIPTION,
    "enabled": _ENABLED,
}
USER_FIELDS: Mapping[str, Field] = {
    "name": _NAME,
    "password": Field(nullable=False, max_length=passwords.MAX_LENGTH, check=check_password),
    "default_project": Field(max_length=NAME_MAX),
    "description": _DESCRIPTION,
    "enabled": _ENABLED,
}


def _body(call: Call, fields: Mapping[str, Field], *, what: str, create: bool) -> dict[str, Any]:
    """A create (``create``) or update body, validated: unknown fields, types, formats;
    a new user needs a name and a password, a new project a name."""
    required = tuple(name for name in ("name", "password") if name in fields) if create else ()
    return validate_body(call.body, fields, what=what, version=call.version, required=required)


def find_project(conn: sa.Connection, ident: str, *, field: str) -> Project:
    """The project a body field or query parameter names.

    Raises:
        InvalidInput: there is no such project (the request is wrong, not the URL).
    """
    try:
        return identity.get_project(conn, ident)
    except NotFound as exc:
        raise InvalidInput(f"Invalid value for {field}: {exc.message}") from None


# ---------------------------------------------------------------------------- whoami

WHOAMI = Named(
    "Whoami",
    obj(
        {
            "user_id": nullable(string()),
            "user_name": nullable(string()),
            "project_id": nullable(string()),
            "project_name": nullable(string()),
            "system": nullable(string()),
            "roles": array(string()),
            "expires_at": nullable(DATE_TIME),
        },
        required=(
            "user_id",
            "user_name",
            "project_id",
            "project_name",
            "system",
            "roles",
            "expires_at",
        ),
    ),
)


@endpoint(
    "identity:whoami",
    doc=Operation("Who the request is authenticated as", answers={200: WHOAMI}),
)
def whoami(call: Call) -> object:
    """Who this request is authenticated as, in which scope, with which roles."""
    context = call.context
    return {
        "user_id": context.user,
        "user_name": context.user_name,
        "project_id": context.project,
        "project_name": context.project_name,
        "system": context.system_scope,
        "roles": sorted(context.roles),
        "expires_at": iso(context.expires_at),
    }


# -------------------------------------------------------------------------- projects


@endpoint(
    "identity:project:list",
    doc=Operation(
        "List projects", answers={200: obj({"projects": array(PROJECT)}, required=("projects",))}
    ),
)
def list_projects(call: Call) -> object:
    check_query(call, (), what="listing projects")
    with call.deps.db.read() as conn:
        projects = identity.list_projects(conn)
    return {"projects": [render_project(p, base_url=call.base_url) for p in projects]}


@endpoint("identity:project:get", doc=Operation("Show a project", answers={200: PROJECT}))
def get_project(call: Call) -> object:
    with call.deps.db.read() as conn:
        project = identity.get_project(conn, call.args["project"])
    return render_project(project, base_url=call.base_url)


@endpoint(
    "identity:project:create",
    body=True,
    doc=Operation(
        "Create a project",
        answers={201: PROJECT},
        body=body(PROJECT_FIELDS, required=("name",), name="ProjectCreate"),
        examples=({"name": "tenant-b", "description": "team B"},),
    ),
)
def create_project(call: Call) -> object:
    body = _body(call, PROJECT_FIELDS, what="project", create=True)
    with call.deps.db.begin() as conn:
        project = identity.create_project(conn, body)
    doc = render_project(project, base_url=call.base_url)
    return Reply(201, doc, {"Location": call.url("v1", "auth", "projects", project.uuid)})


@endpoint(
    "identity:project:update",
    body=True,
    doc=Operation(
        "Change a project (only the fields sent)",
        answers={200: PROJECT},
        body=body(PROJECT_FIELDS, name="ProjectUpdate"),
    ),
)
def update_project(call: Call) -> object:
    body = _body(call, PROJECT_FIELDS, what="project", create=False)
    with call.deps.db.begin() as conn:
        project = identity.get_project(conn, call.args["project"])
        if body:
            project = identity.update_project(conn, project.id, body)
    if body:
        call.deps.credentials.clear()
    return render_project(project, base_url=call.base_url)


@endpoint("identity:project:delete", doc=no_content("Delete a project (409 while it owns nodes)"))
def delete_project(call: Call) -> object:
    with call.deps.db.begin() as conn:
        identity.delete_project(conn, identity.get_project(conn, call.args["project"]))
    call.deps.credentials.clear()
    return Reply(204)


# ----------------------------------------------------------------------------- users


def _render_user(conn: sa.Connection, user: User, call: Call) -> dict[str, Any]:
    default = None
    if user.default_project_id is not None:
        default = identity.get_project_by_id(conn, user.default_project_id)
    roles = identity.list_assignments(conn, user_id=user.id)
    return render_user(user, base_url=call.base_url, default_project=default, roles=roles)


def _user_values(conn: sa.Connection, body: dict[str, Any]) -> dict[str, Any]:
    """A validated body as columns: the password hashed, the default project's row id.

    Raises:
        InvalidInput: the default project does not exist.
    """
    values = {k: v for k, v in body.items() if k not in ("password", "default_project")}
    if "default_project" in body:
        ident = body["default_project"]
        values["default_project_id"] = (
            None if ident is None else find_project(conn, ident, field="default_project").id
        )
    return values


def _hashed(body: dict[str, Any]) -> dict[str, Any]:
    """``password_hash`` for a body with a password, computed before any transaction
    (argon2 takes a while)."""
    return (
        {"password_hash": passwords.hash_password(body["password"])} if "password" in body else {}
    )


_USERS_QUERY = (Param("project", string(), "Users with a role on this project (id or name)."),)


@endpoint(
    "identity:user:list",
    doc=Operation(
        "List users",
        answers={200: obj({"users": array(USER)}, required=("users",))},
        query=_USERS_QUERY,
    ),
)
def list_users(call: Call) -> object:
    check_query(call, _USERS_QUERY, what="listing users")
    with call.deps.db.read() as conn:
        project_id = None
        if "project" in call.query:
            project_id = find_project(conn, call.query["project"], field="project").id
        users = identity.list_users(conn, project_id=project_id)
        docs = [_render_user(conn, u, call) for u in users]
    return {"users": docs}


@endpoint("identity:user:get", doc=Operation("Show a user", answers={200: USER}))
def get_user(call: Call) -> object:
    with call.deps.db.read() as conn:
        return _render_user(conn, identity.get_user(conn, call.args["user"]), call)


@endpoint(
    "identity:user:create",
    body=True,
    doc=Operation(
        "Create a user",
        answers={201: USER},
        body=body(USER_FIELDS, required=("name", "password"), name="UserCreate"),
        examples=({"name": "bob", "password": "a long passphrase", "default_project": "tenant-a"},),
    ),
)
def create_user(call: Call) -> object:
    body = _body(call, USER_FIELDS, what="user", create=True)
    hashed = _hashed(body)
    with call.deps.db.begin() as conn:
        user = identity.create_user(conn, {**_user_values(conn, body), **hashed})
        doc = _render_user(conn, user, call)
    return Reply(201, doc, {"Location": call.url("v1", "auth", "users", user.uuid)})


def _refuse_self(call: Call, user: User, *, doing: str) -> None:
    if call.context.user == user.uuid:
        raise Conflict(
            f"You cannot {doing} the user you are authenticated as ({user.name}); "
            "ask another administrator."
        )


@endpoint(
    "identity:user:update",
    body=True,
    doc=Operation(
        "Change a user (only the fields sent)",
        answers={200: USER},
        body=body(USER_FIELDS, name="UserUpdate"),
    ),
)
def update_user(call: Call) -> object:
    body = _body(call, USER_FIELDS, what="user", create=False)
    hashed = _hashed(body)
    with call.deps.db.begin() as conn:
        user = identity.get_user(conn, call.args["user"])
        if body.get("enabled") is False:
            _refuse_self(call, user, doing="disable")
        if body:
            user = identity.update_user(conn, user.id, {**_user_values(conn, body), **hashed})
        doc = _render_user(conn, user, call)
    call.deps.credentials.forget_user(user.uuid)
    return doc


@endpoint("identity:user:delete", doc=no_content("Delete a user (not oneself: 409)"))
def delete_user(call: Call) -> object:
    with call.deps.db.begin() as conn:
        user = identity.get_user(conn, call.args["user"])
        _refuse_self(call, user, doing="delete")
        identity.delete_user(conn, user.id)
    call.deps.credentials.forget_user(user.uuid)
    return Reply(204)


# ----------------------------------------------------------------------------- roles


def _grant_target(conn: sa.Connection, call: Call) -> tuple[User, Project | None, str]:
    role = check_role(call.args["role"])
    user = identity.get_user(conn, call.args["user"])
    project = identity.get_project(conn, call.args["project"]) if "project" in call.args else None
    return user, project, role


@endpoint(
    "identity:role:assign", doc=no_content("Give a user a role on a project or on the system")
)
def assign_role(call: Call) -> object:
    """Give a user a role on a project or on the system (204 whether it is new or not)."""
    with call.deps.db.begin() as conn:
        user, project, role = _grant_target(conn, call)
        identity.assign_role(conn, user, role, project=project)
    call.deps.credentials.forget_user(user.uuid)
    return Reply(204)


@endpoint(
    "identity:role:unassign", doc=no_content("Take a user's role on a project or on the system")
)
def unassign_role(call: Call) -> object:
    with call.deps.db.begin() as conn:
        user, project, role = _grant_target(conn, call)
        identity.unassign_role(conn, user, role, project=project)
    call.deps.credentials.forget_user(user.uuid)
    return Reply(204)


_ASSIGNMENTS_QUERY = (
    Param("user", string(), "This user's assignments (id or name)."),
    Param("project", string(), "The assignments on this project (id or name)."),
    Param("scope", string(enum=["system", "project"]), "Only system or project roles."),
)


@endpoint(
    "identity:role:list",
    doc=Operation(
        "List role assignments",
        answers={200: obj({"role_assignments": array(ASSIGNMENT)}, required=("role_assignments",))},
        query=_ASSIGNMENTS_QUERY,
    ),
)
def list_assignments(call: Call) -> object:
    """``?user=``, ``?project=`` and ``?scope=system|project`` filter."""
    check_query(call, _ASSIGNMENTS_QUERY, what="listing role assignments")
    scope = call.query.get("scope")
    if scope not in (None, "system", "project"):
        raise InvalidInput(
            f"Invalid value for scope: '{scope}'. Acceptable values: system, project."
        )
    with call.deps.db.read() as conn:
        user = None
        if "user" in call.query:
            try:
                user = identity.get_user(conn, call.query["user"])
            except NotFound as exc:
                raise InvalidInput(f"Invalid value for user: {exc.message}") from None
        project = None
        if "project" in call.query:
            project = find_project(conn, call.query["project"], field="project")
        found = identity.list_assignments(
            conn,
            user_id=None if user is None else user.id,
            project_id=None if project is None else project.id,
            system=None if scope is None else scope == "system",
        )
    return {"role_assignments": [render_assignment(a) for a in found]}


_PROJECT_ROLE = "/v1/auth/projects/{project}/users/{user}/roles/{role}"
_SYSTEM_ROLE = "/v1/auth/system/users/{user}/roles/{role}"

ROUTES = [
    Route("/v1/auth/whoami", whoami, methods=["GET"]),
    Route("/v1/auth/projects", list_projects, methods=["GET"]),
    Route("/v1/auth/projects", create_project, methods=["POST"]),
    Route("/v1/auth/projects/{project}", get_project, methods=["GET"]),
    Route("/v1/auth/projects/{project}", update_project, methods=["PATCH"]),
    Route("/v1/auth/projects/{project}", delete_project, methods=["DELETE"]),
    Route("/v1/auth/users", list_users, methods=["GET"]),
    Route("/v1/auth/users", create_user, methods=["POST"]),
    Route("/v1/auth/users/{user}", get_user, methods=["GET"]),
    Route("/v1/auth/users/{user}", update_user, methods=["PATCH"]),
    Route("/v1/auth/users/{user}", delete_user, methods=["DELETE"]),
    Route("/v1/auth/role_assignments", list_assignments, methods=["GET"]),
    Route(_PROJECT_ROLE, assign_role, methods=["PUT"]),
    Route(_PROJECT_ROLE, unassign_role, methods=["DELETE"]),
    Route(_SYSTEM_ROLE, assign_role, methods=["PUT"]),
    Route(_SYSTEM_ROLE, unassign_role, methods=["DELETE"]),
]
