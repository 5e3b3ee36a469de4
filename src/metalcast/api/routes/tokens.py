"""/v1/auth/tokens: API tokens of the ``builtin`` strategy.

Anyone authenticated as a builtin user creates tokens for themselves, scoped to the
system or to one project where they hold a role (by default: the scope they are
authenticated in), living ``expires_in`` seconds (at most ``api.token_ttl``).  A token
made with a token lives no longer than the one it was made with, so a stolen token
cannot be stretched into a lasting one.  The secret is in the creation's answer only;
the server keeps its SHA-256.  A user lists, shows and revokes their own tokens; a
system administrator anyone's (someone else's token is "not found" to others).
Showing or revoking a token checks ``identity:token:list`` first (refused: 404),
then revoking ``identity:token:delete`` (refused: 403), as Ironic checks a node.

Errors: ``InvalidInput`` (400) for a bad body or a server not running "builtin",
``Forbidden`` (403) for a scope without a role, ``NotFound`` (404), ``Conflict`` (409)
for a disabled project or too many tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from starlette.routing import Route

from metalcast.api import auth, policy
from metalcast.api.auth.cache import CredentialCache
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import Operation, array, body, no_content, obj
from metalcast.api.routes.identity import check_query, find_project
from metalcast.api.schema import Field, validate_body
from metalcast.api.views.identity import CREATED_TOKEN, TOKEN, render_token
from metalcast.db import identity
from metalcast.db.identity import ApiToken, Project, User
from metalcast.db.rows import utcnow
from metalcast.errors import Conflict, Forbidden, InvalidInput

#: tokens one user may hold at once, revoked ones included until they expire (a
#: tenant cannot fill the database with them)
MAX_TOKENS_PER_USER = 100

TOKEN_FIELDS: Mapping[str, Field] = {
    "project": Field(max_length=identity.NAME_MAX),
    "system": Field("boolean"),
    "expires_in": Field("integer"),
    "description": Field(max_length=255),
}


def _caller(conn: sa.Connection, call: Call) -> User:
    """The builtin user making this request.

    Raises:
        InvalidInput: the server does not run "builtin", or the caller is no builtin user.
    """
    strategy = auth.effective_strategy(call.deps.settings)
    user = None
    if strategy == "builtin" and call.context.user and identity.is_id(call.context.user):
        user = identity.find_user(conn, call.context.user)
    if user is None:
        raise InvalidInput(
            f"API tokens belong to metalcast's own users (api.auth_strategy 'builtin'); "
            f"this server uses '{strategy}', so none are needed or accepted."
        )
    return user


def _scope(conn: sa.Connection, call: Call, body: dict[str, Any]) -> Project | None:
    """The project the new token is scoped to (None: the system).

    Raises:
        InvalidInput: both or neither scope given and the caller has none.
    """
    if body.get("project") is not None and body.get("system"):
        raise InvalidInput("A token is scoped to a project or to the system, not both.")
    if body.get("project") is not None:
        return find_project(conn, body["project"], field="project")
    if body.get("system") or call.context.system_scope == "all":
        return None
    if call.context.project:
        return identity.get_project(conn, call.context.project)
    raise InvalidInput("Say which project the token is for ('project'), or 'system': true.")


def _check_scope(conn: sa.Connection, user: User, project: Project | None) -> None:
    """Raise ``Forbidden`` without a role there, ``Conflict`` for a disabled project."""
    if not identity.roles_of(conn, user.id, project=project):
        where = "the system" if project is None else f"project {project.name}"
        raise Forbidden(f"User {user.name} has no role on {where}, so no token for it.")
    if project is not None and not project.enabled:
        raise Conflict(f"Project {project.name} is disabled.")


def _expiry(call: Call, body: dict[str, Any]) -> datetime:
    """When the new token expires: ``expires_in`` from now (1..token_ttl seconds),
    never after the token the request came with.  Raises ``InvalidInput``."""
    ttl = call.deps.settings.api.token_ttl
    seconds = body.get("expires_in")
    if seconds is None:
        seconds = ttl
    if not 0 < seconds <= ttl:
        raise InvalidInput(
            f"Invalid value for field 'expires_in': {seconds} seconds; a token lives from 1 "
            f"second to api.token_ttl ({int(ttl)} seconds)."
        )
    expires_at = utcnow() + timedelta(seconds=seconds)
    if call.context.expires_at is not None:
        expires_at = min(expires_at, call.context.expires_at)
    return expires_at


def _names(conn: sa.Connection, tokens: list[ApiToken]) -> dict[str, Any]:
    users = {u.id: u for u in identity.list_users(conn)}
    project_ids = [tk.project_id for tk in tokens if tk.project_id is not None]
    projects = {p.id: p for p in identity.list_projects(conn, ids=project_ids)}
    return {"users": users, "projects": projects, "now": utcnow()}


def _render(conn: sa.Connection, call: Call, tokens: list[ApiToken]) -> list[dict[str, Any]]:
    names = _names(conn, tokens)
    return [render_token(tk, base_url=call.base_url, **names) for tk in tokens]


@endpoint(
    "identity:token:create",
    body=True,
    doc=Operation(
        "Create an API token for oneself",
        answers={201: CREATED_TOKEN},
        body=body(TOKEN_FIELDS, name="TokenCreate"),
        examples=({"system": True, "expires_in": 3600}, {"project": "tenant-a"}),
    ),
)
def create_token(call: Call) -> object:
    """201 with the token's secret in ``token``: the only time it is shown."""
    body = validate_body(call.body, TOKEN_FIELDS, what="token", version=call.version)
    expires_at = _expiry(call, body)
    with call.deps.db.begin() as conn:
        user = _caller(conn, call)
        project = _scope(conn, call, body)
        _check_scope(conn, user, project)
        identity.prune_tokens(conn)
        if identity.count_tokens(conn, user.id) >= MAX_TOKENS_PER_USER:
            raise Conflict(
                f"User {user.name} holds {MAX_TOKENS_PER_USER} tokens already; revoke some "
                "(`metalcast token list`, `metalcast token revoke`)."
            )
        token, secret = identity.create_token(
            conn,
            user,
            project=project,
            expires_at=expires_at,
            description=body.get("description"),
        )
        doc = _render(conn, call, [token])[0]
    doc["token"] = secret
    return Reply(201, doc, {"Location": call.url("v1", "auth", "tokens", token.uuid)})


def _visible(conn: sa.Connection, call: Call) -> int | None:
    """Whose tokens the caller may list: None for everyone's (a system admin).

    Raises:
        InvalidInput: the caller is no builtin user and may not list everyone's.
        Forbidden: the policy refuses even the caller's own.
    """
    if call.allows("identity:token:list", policy.token_target(None)):
        call.enforce("identity:token:list", policy.token_target(None))
        return None
    user = _caller(conn, call)
    call.enforce("identity:token:list", policy.token_target(user.uuid))
    return user.id


def _find(conn: sa.Connection, call: Call) -> tuple[ApiToken, policy.Target]:
    """The token the path names, if ``identity:token:list`` lets the caller see it,
    and its policy target.  Whoever may not see it is told it does not exist, as for
    a node (by default: someone else's token, unless one is a system admin).

    Raises:
        NotFound: no such token, or the caller may not see it.
    """
    token = identity.get_token(conn, call.args["token"])
    owner = identity.get_user_by_id(conn, token.user_id)
    target = policy.token_target(owner.uuid)
    hide = f"Token {call.args['token']} could not be found."
    call.enforce("identity:token:list", target, hide=hide)
    return token, target


@endpoint(
    "identity:token:list",
    doc=Operation(
        "List one's API tokens (a system admin: everyone's)",
        answers={200: obj({"tokens": array(TOKEN)}, required=("tokens",))},
    ),
)
def list_tokens(call: Call) -> object:
    """The caller's tokens; a system admin's list has everyone's."""
    check_query(call, (), what="listing tokens")
    with call.deps.db.read() as conn:
        tokens = identity.list_tokens(conn, user_id=_visible(conn, call))
        return {"tokens": _render(conn, call, tokens)}


@endpoint("identity:token:list", doc=Operation("Show an API token", answers={200: TOKEN}))
def get_token(call: Call) -> object:
    with call.deps.db.read() as conn:
        return _render(conn, call, [_find(conn, call)[0]])[0]


@endpoint("identity:token:delete", doc=no_content("Revoke an API token"))
def revoke_token(call: Call) -> object:
    """Revoke a token (204, also when it was revoked already); 403 for a token the
    caller sees but may not revoke."""
    with call.deps.db.begin() as conn:
        token, target = _find(conn, call)
        call.enforce("identity:token:delete", target)
        identity.revoke_token(conn, token.id)
    cache: CredentialCache = call.deps.credentials
    cache.forget(cache.token_key(token.secret_hash))
    return Reply(204)


ROUTES = [
    Route("/v1/auth/tokens", list_tokens, methods=["GET"]),
    Route("/v1/auth/tokens", create_token, methods=["POST"]),
    Route("/v1/auth/tokens/{token}", get_token, methods=["GET"]),
    Route("/v1/auth/tokens/{token}", revoke_token, methods=["DELETE"]),
]
