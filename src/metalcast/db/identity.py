"""The ``builtin`` identity store: projects, users, role assignments and API tokens.

Functions take a connection; the caller owns the transaction.  Ids are 32 lower-case
hex digits, as Keystone's; projects and users are found by id or by name (names are
unique regardless of case, so "Admin" cannot pose as "admin").  Passwords arrive
here already hashed (:mod:`metalcast.db.passwords`); a token's secret is returned
once by :func:`create_token` and only its SHA-256 is stored.

Deleting a project or a user removes its role assignments and its tokens (a deleted
token is revoked: nothing can find it any more).

Errors raised: ``NotFound`` (404) for a missing project, user, assignment or token,
``Conflict`` (409) for a taken name or a project that still owns or leases nodes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from metalcast.context import IMPLIED_ROLES
from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import JSONDict, from_row
from metalcast.db.rows import utcnow
from metalcast.errors import Conflict, NotFound
from metalcast.secrecy.detect import API_TOKEN_PREFIX

#: the roles a user may be given, in a project or on the system
ROLES: tuple[str, ...] = tuple(IMPLIED_ROLES)
#: ``role_assignments.scope`` of a role on the system
SYSTEM = "system"
#: the longest project or user name (their columns' size)
NAME_MAX = 64
#: what every builtin token starts with, so that one pasted by mistake is recognised
TOKEN_PREFIX = API_TOKEN_PREFIX

_ID_RE = re.compile(r"[0-9a-fA-F]{32}")


@dataclass(slots=True)
class Project:
    id: int
    uuid: str
    name: str
    enabled: bool
    created_at: datetime
    description: str | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class User:
    """A user; ``password_hash`` never leaves the server."""

    id: int
    uuid: str
    name: str
    enabled: bool
    created_at: datetime
    password_hash: str | None = None
    default_project_id: int | None = None
    description: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Assignment:
    """A role of a user, on a project (``project_uuid``) or on the system (None)."""

    role: str
    user_uuid: str
    user_name: str
    project_uuid: str | None
    project_name: str | None


@dataclass(slots=True)
class ApiToken:
    """A token's row; its secret is not in it (only ``secret_hash``)."""

    id: int
    uuid: str
    secret_hash: str
    user_id: int
    system_scope: bool
    expires_at: datetime
    created_at: datetime
    project_id: int | None = None
    description: str | None = None
    revoked_at: datetime | None = None


def new_id() -> str:
    """A new project, user or token id: 32 hex digits."""
    return uuidlib.uuid4().hex


def is_id(value: str) -> bool:
    """Whether ``value`` has the form of an id (32 hex digits)."""
    return _ID_RE.fullmatch(value) is not None


def _find(conn: sa.Connection, table: sa.Table, ident: str) -> sa.RowMapping | None:
    if is_id(ident):
        where = table.c.uuid == ident.lower()
    else:
        where = sa.func.lower(table.c.name) == ident.lower()
    return conn.execute(sa.select(table).where(where)).mappings().first()


def _check_name(conn: sa.Connection, table: sa.Table, name: str, *, exclude_id: int | None) -> None:
    query = sa.select(table.c.id).where(sa.func.lower(table.c.name) == name.lower())
    if exclude_id is not None:
        query = query.where(table.c.id != exclude_id)
    if conn.execute(query).first() is not None:
        what = "project" if table is t.projects else "user"
        raise Conflict(f"A {what} named '{name}' already exists.")


# -------------------------------------------------------------------------- projects


def create_project(conn: sa.Connection, values: JSONDict) -> Project:
    """Insert a project (``name``, optional ``description`` and ``enabled``).

    Raises:
        Conflict: the name is taken.
    """
    _check_name(conn, t.projects, values["name"], exclude_id=None)
    row_id = rows.insert(conn, t.projects, {"uuid": new_id(), "enabled": True, **values})
    return get_project_by_id(conn, row_id)


def get_project(conn: sa.Connection, ident: str) -> Project:
    """The project with this id or name.  Raises ``NotFound``."""
    row = _find(conn, t.projects, ident)
    if row is None:
        raise NotFound(f"Project {ident} could not be found.")
    return from_row(Project, row)


def get_project_by_id(conn: sa.Connection, row_id: int) -> Project:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.projects, Project, row_id, "Project")


def list_projects(conn: sa.Connection, *, ids: Sequence[int] | None = None) -> list[Project]:
    """Every project (or those of ``ids``), by name."""
    query = sa.select(t.projects).order_by(t.projects.c.name)
    if ids is not None:
        query = query.where(rows.ids_in(t.projects.c.id, ids))
    return rows.records(conn, Project, query)


def update_project(conn: sa.Connection, project_id: int, values: JSONDict) -> Project:
    """Change ``name``, ``description`` or ``enabled``.  Raises ``Conflict`` for a
    taken name."""
    if "name" in values:
        _check_name(conn, t.projects, values["name"], exclude_id=project_id)
    rows.update(conn, t.projects, project_id, values)
    return get_project_by_id(conn, project_id)


def delete_project(conn: sa.Connection, project: Project) -> None:
    """Delete a project with its role assignments and tokens; users whose default
    project it was have none any more.

    Raises:
        Conflict: nodes name the project as their owner or lessee.
    """
    n = t.nodes.c
    held = conn.execute(
        sa.select(n.uuid).where(sa.or_(n.owner == project.uuid, n.lessee == project.uuid))
    ).scalars()
    nodes = sorted(held)
    if nodes:
        shown = ", ".join(nodes[:5]) + (", ..." if len(nodes) > 5 else "")
        raise Conflict(
            f"Project {project.name} owns or leases {len(nodes)} node(s) ({shown}); "
            "give them another owner and lessee before deleting it."
        )
    conn.execute(sa.delete(t.role_assignments).where(t.role_assignments.c.project_id == project.id))
    conn.execute(sa.delete(t.api_tokens).where(t.api_tokens.c.project_id == project.id))
    conn.execute(
        sa.update(t.users)
        .where(t.users.c.default_project_id == project.id)
        .values(default_project_id=None)
    )
    conn.execute(sa.delete(t.projects).where(t.projects.c.id == project.id))


# ----------------------------------------------------------------------------- users


def create_user(conn: sa.Connection, values: JSONDict) -> User:
    """Insert a user (``name``, ``password_hash``, optional ``default_project_id``,
    ``description``, ``enabled``).

    Raises:
        Conflict: the name is taken.
    """
    _check_name(conn, t.users, values["name"], exclude_id=None)
    row_id = rows.insert(conn, t.users, {"uuid": new_id(), "enabled": True, **values})
    return get_user_by_id(conn, row_id)


def get_user(conn: sa.Connection, ident: str) -> User:
    """The user with this id or name.  Raises ``NotFound``."""
    row = _find(conn, t.users, ident)
    if row is None:
        raise NotFound(f"User {ident} could not be found.")
    return from_row(User, row)


def find_user(conn: sa.Connection, name: str) -> User | None:
    """The user with this name (or id), if any."""
    row = _find(conn, t.users, name)
    return None if row is None else from_row(User, row)


def get_user_by_id(conn: sa.Connection, row_id: int) -> User:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.users, User, row_id, "User")


def list_users(conn: sa.Connection, *, project_id: int | None = None) -> list[User]:
    """Every user, or those with a role in project ``project_id``, by name."""
    query = sa.select(t.users).order_by(t.users.c.name)
    if project_id is not None:
        members = sa.select(t.role_assignments.c.user_id).where(
            t.role_assignments.c.project_id == project_id
        )
        query = query.where(t.users.c.id.in_(members))
    return rows.records(conn, User, query)


def count_users(conn: sa.Connection) -> int:
    """How many users there are."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(t.users)).scalar_one())


def update_user(conn: sa.Connection, user_id: int, values: JSONDict) -> User:
    """Change ``name``, ``password_hash``, ``enabled``, ``default_project_id`` or
    ``description``.  Raises ``Conflict`` for a taken name."""
    if "name" in values:
        _check_name(conn, t.users, values["name"], exclude_id=user_id)
    rows.update(conn, t.users, user_id, values)
    return get_user_by_id(conn, user_id)


def delete_user(conn: sa.Connection, user_id: int) -> None:
    """Delete a user with its role assignments and tokens."""
    conn.execute(sa.delete(t.role_assignments).where(t.role_assignments.c.user_id == user_id))
    conn.execute(sa.delete(t.api_tokens).where(t.api_tokens.c.user_id == user_id))
    conn.execute(sa.delete(t.users).where(t.users.c.id == user_id))


# ---------------------------------------------------------------------- role grants


def _scope(project: Project | None) -> str:
    return SYSTEM if project is None else project.uuid


def assign_role(conn: sa.Connection, user: User, role: str, *, project: Project | None) -> bool:
    """Give ``user`` ``role`` on ``project`` (None: on the system).  True if it was
    new, False if the user had it already."""
    if role in roles_of(conn, user.id, project=project):
        return False
    values = {
        "user_id": user.id,
        "project_id": None if project is None else project.id,
        "scope": _scope(project),
        "role": role,
    }
    rows.insert(conn, t.role_assignments, values)
    return True


def unassign_role(conn: sa.Connection, user: User, role: str, *, project: Project | None) -> None:
    """Take ``role`` on ``project`` (None: the system) away from ``user``.

    Raises:
        NotFound: the user does not have that role there.
    """
    ra = t.role_assignments.c
    done = conn.execute(
        sa.delete(t.role_assignments).where(
            ra.user_id == user.id, ra.scope == _scope(project), ra.role == role
        )
    )
    if done.rowcount == 0:
        where = "the system" if project is None else f"project {project.name}"
        raise NotFound(f"User {user.name} has no role '{role}' on {where}.")


def roles_of(conn: sa.Connection, user_id: int, *, project: Project | None) -> frozenset[str]:
    """The roles ``user_id`` was given on ``project`` (None: on the system), without
    the roles they imply."""
    ra = t.role_assignments.c
    query = sa.select(ra.role).where(ra.user_id == user_id, ra.scope == _scope(project))
    return frozenset(conn.execute(query).scalars())


def role_projects(conn: sa.Connection, user_id: int) -> list[int]:
    """The ids of the projects where ``user_id`` has a role, oldest grant first."""
    ra = t.role_assignments.c
    query = (
        sa.select(ra.project_id, sa.func.min(ra.id).label("first"))
        .where(ra.user_id == user_id, ra.project_id.is_not(None))
        .group_by(ra.project_id)
        .order_by("first")
    )
    return [int(project_id) for project_id, _ in conn.execute(query)]


def list_assignments(
    conn: sa.Connection,
    *,
    user_id: int | None = None,
    project_id: int | None = None,
    system: bool | None = None,
) -> list[Assignment]:
    """Role assignments, filtered by user, project, or system (True) / project (False)
    scope; ordered by user name, then scope, then role."""
    ra, u, p = t.role_assignments.c, t.users.c, t.projects.c
    query = (
        sa.select(ra.role, u.uuid, u.name, p.uuid, p.name)
        .select_from(
            t.role_assignments.join(t.users, u.id == ra.user_id).outerjoin(
                t.projects, p.id == ra.project_id
            )
        )
        .order_by(u.name, ra.scope, ra.role)
    )
    if user_id is not None:
        query = query.where(ra.user_id == user_id)
    if project_id is not None:
        query = query.where(ra.project_id == project_id)
    if system is not None:
        query = query.where((ra.scope == SYSTEM) if system else (ra.scope != SYSTEM))
    return [Assignment(*row) for row in conn.execute(query)]


# ---------------------------------------------------------------------------- tokens


def secret_hash(secret: str) -> str:
    """The stored form of a token's secret: its SHA-256, in hex.  (A token holds 256
    random bits, so a fast hash loses nothing; passwords get argon2id.)"""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create_token(
    conn: sa.Connection,
    user: User,
    *,
    project: Project | None,
    expires_at: datetime,
    description: str | None = None,
) -> tuple[ApiToken, str]:
    """A new token of ``user`` scoped to ``project`` (None: the system), and its
    secret, which is nowhere else: show it once."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    values: dict[str, Any] = {
        "uuid": new_id(),
        "secret_hash": secret_hash(secret),
        "user_id": user.id,
        "project_id": None if project is None else project.id,
        "system_scope": project is None,
        "description": description,
        "expires_at": expires_at,
    }
    token = get_token_by_id(conn, rows.insert(conn, t.api_tokens, values))
    return token, secret


def find_token(conn: sa.Connection, hashed: str) -> ApiToken | None:
    """The token whose secret hashes to ``hashed``, if any (expired and revoked ones
    too: the caller judges them)."""
    row = conn.execute(sa.select(t.api_tokens).where(t.api_tokens.c.secret_hash == hashed))
    found = row.mappings().first()
    return None if found is None else from_row(ApiToken, found)


def get_token(conn: sa.Connection, ident: str) -> ApiToken:
    """The token with this id (never found by its secret here).  Raises ``NotFound``."""
    row = None
    if is_id(ident):
        query = sa.select(t.api_tokens).where(t.api_tokens.c.uuid == ident.lower())
        row = conn.execute(query).mappings().first()
    if row is None:
        raise NotFound(f"Token {ident} could not be found.")
    return from_row(ApiToken, row)


def get_token_by_id(conn: sa.Connection, row_id: int) -> ApiToken:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.api_tokens, ApiToken, row_id, "Token")


def list_tokens(conn: sa.Connection, *, user_id: int | None = None) -> list[ApiToken]:
    """The tokens not yet pruned (all users', or ``user_id``'s), oldest first."""
    query = sa.select(t.api_tokens).order_by(t.api_tokens.c.id)
    if user_id is not None:
        query = query.where(t.api_tokens.c.user_id == user_id)
    return rows.records(conn, ApiToken, query)


def count_tokens(conn: sa.Connection, user_id: int) -> int:
    """How many tokens ``user_id`` has (revoked and expired ones not yet pruned too)."""
    query = sa.select(sa.func.count()).where(t.api_tokens.c.user_id == user_id)
    return int(conn.execute(query).scalar_one())


def revoke_token(conn: sa.Connection, token_id: int) -> None:
    """Revoke a token from now on (a revoked one stays revoked)."""
    tk = t.api_tokens.c
    conn.execute(
        sa.update(t.api_tokens)
        .where(tk.id == token_id, tk.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def prune_tokens(conn: sa.Connection, *, now: datetime | None = None) -> int:
    """Delete the tokens that expired before ``now``; how many there were."""
    cutoff = now or utcnow()
    done = conn.execute(sa.delete(t.api_tokens).where(t.api_tokens.c.expires_at < cutoff))
    return int(done.rowcount)


# ------------------------------------------------------------------------- bootstrap


def bootstrap_admin(conn: sa.Connection, name: str, *, password_hash: str) -> bool:
    """Make ``name`` a working system administrator with this password: created if
    missing, else enabled with its password replaced; the system ``admin`` role
    given.  True if the user was created."""
    user = find_user(conn, name)
    created = user is None
    if user is None:
        user = create_user(conn, {"name": name, "password_hash": password_hash})
    else:
        user = update_user(conn, user.id, {"password_hash": password_hash, "enabled": True})
    assign_role(conn, user, "admin", project=None)
    return created
