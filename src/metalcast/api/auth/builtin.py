"""``builtin``: metalcast's own users, projects, roles and API tokens.

A request proves who it is with one of:

``X-Auth-Token: <token>``          what keystoneauth's ``admin_token`` (alias
                                   ``token_endpoint``) sends: python-ironicclient,
                                   the ``baremetal`` CLI, openstacksdk
``Authorization: Bearer <token>``  the same token, the way HTTP says it
``Authorization: Basic ...``       a user name and password (keystoneauth's
                                   ``http_basic``)

A token (``mct_...``, made by ``POST /v1/auth/tokens``) is scoped to one project or
to the system and expires; it can be revoked.  A password is scoped thus: ``name@P``
as the user name picks project ``P`` (the user needs a role there); plain ``name``
gets the system if the user has a role on it, else the default project, else their
only project; a user with roles in several projects and no default project must pick
one (the 401 says how).

The context carries the roles the user holds *now* in that scope (with the roles they
imply): a disabled user or project, an expired or revoked token, a deleted user or
project get 401; a role taken away is gone from the context.  Results are cached
(:mod:`.cache`), so such changes made by another process are seen within
``api.auth_cache_seconds``.  Identity headers (``X-Roles``, ``X-Project-Id``, ...)
are ignored: they grant nothing here.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from datetime import datetime

import anyio
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from metalcast.api.auth import Credentials
from metalcast.api.auth.cache import CredentialCache
from metalcast.context import RequestContext, with_implied
from metalcast.db import identity, passwords
from metalcast.db.engine import Database
from metalcast.db.identity import Project, User
from metalcast.db.rows import utcnow
from metalcast.errors import NotFound, Unauthorized

WRONG_PASSWORD = "The user name or password is wrong."
#: argon2 verifications run at once at most (each takes ~19 MiB for ~40 ms)
HASHING_THREADS = 4
#: longest token accepted before it is even hashed
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True, slots=True)
class _Token:
    hashed: str


@dataclass(frozen=True, slots=True)
class _Basic:
    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Scope:
    """What credentials are scoped to: the system, one project, or nothing."""

    system: bool = False
    project: Project | None = None


def offered(headers: Headers) -> _Token | _Basic | None:
    """The credentials a request carries (None: none at all).

    Raises:
        Unauthorized: they are malformed, or not of a kind this strategy knows.
    """
    token = headers.get("x-auth-token", "").strip()
    if token:
        return _token(token)
    authorization = headers.get("authorization", "").strip()
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer":
        return _token(value.strip())
    if scheme.lower() == "basic":
        return _basic(value.strip())
    raise Unauthorized(
        f"The Authorization scheme '{scheme[:20]}' is not supported: use Basic (a user name "
        "and password) or Bearer (an API token), or send the token in X-Auth-Token."
    )


def _token(secret: str) -> _Token:
    if not secret.startswith(identity.TOKEN_PREFIX) or len(secret) > MAX_TOKEN_LENGTH:
        # keystoneauth's "none" auth type sends X-Auth-Token "notused": say what works
        raise Unauthorized(
            f"This is not a metalcast API token (they start with '{identity.TOKEN_PREFIX}'): "
            "authenticate with a user name and password (HTTP Basic, auth type "
            "http_basic) or with a token from `metalcast token create`."
        )
    return _Token(identity.secret_hash(secret))


def _basic(value: str) -> _Basic:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("The Basic credentials are not base64 of 'user:password'.") from None
    user, sep, password = decoded.partition(":")
    if not sep or not user:
        raise Unauthorized("The Basic credentials are not base64 of 'user:password'.")
    return _Basic(user, password)


class BuiltinAuth:
    """Verifies tokens and passwords against the identity tables, with a cache."""

    name = "builtin"

    def __init__(self, db: Database, *, cache: CredentialCache) -> None:
        self._db = db
        self._cache = cache
        self._hashing = anyio.CapacityLimiter(HASHING_THREADS)

    async def authenticate(self, credentials: Credentials) -> RequestContext | None:
        found = offered(credentials.headers)
        if found is None:
            return None
        if isinstance(found, _Token):
            key = self._cache.token_key(found.hashed)
        else:
            key = self._cache.password_key(found.user, found.password)
        context = self._cache.get(key)
        if context is None:
            generation = self._cache.generation
            context, seconds = await self._verify(found)
            self._cache.put(key, context, generation=generation, seconds=seconds)
        return dataclasses.replace(context, request_id=credentials.request_id)

    async def _verify(self, found: _Token | _Basic) -> tuple[RequestContext, float]:
        """Check credentials in a worker thread (the database and argon2 block);
        password checks take one of :data:`HASHING_THREADS` threads."""
        if isinstance(found, _Token):
            return await run_in_threadpool(self.verify_token, found.hashed)
        return await anyio.to_thread.run_sync(
            self.verify_password, found.user, found.password, limiter=self._hashing
        )

    def verify_token(self, hashed: str) -> tuple[RequestContext, float]:
        """The context of the token whose secret hashes to ``hashed``, and how many
        seconds it stays valid.

        Raises:
            Unauthorized: unknown, revoked or expired token; disabled user or project.
        """
        now = utcnow()
        with self._db.read() as conn:
            token = identity.find_token(conn, hashed)
            if token is None:
                raise Unauthorized("The token is not valid: it is unknown, or was deleted.")
            if token.revoked_at is not None:
                raise Unauthorized("The token was revoked.")
            if token.expires_at <= now:
                raise Unauthorized(f"The token expired at {token.expires_at.isoformat()}Z.")
            user = identity.get_user_by_id(conn, token.user_id)
            project = None
            if token.project_id is not None:
                project = identity.get_project_by_id(conn, token.project_id)
            scope = Scope(system=token.system_scope, project=project)
            context = build_context(conn, user, scope, expires_at=token.expires_at)
        return context, (token.expires_at - now).total_seconds()

    def verify_password(self, name: str, password: str) -> tuple[RequestContext, float]:
        """The context of user ``name`` (``name@project`` picks a project) if
        ``password`` is theirs, and how many seconds it may be cached.

        Raises:
            Unauthorized: unknown user or wrong password (one message for both),
                disabled user or project, no role in the project asked for, or no
                way to choose among several projects.
        """
        user_name, _, wanted = name.partition("@")
        if len(user_name) > identity.NAME_MAX or len(wanted) > identity.NAME_MAX:
            raise Unauthorized(WRONG_PASSWORD)  # no such name can exist: no argon2 work
        with self._db.read() as conn:
            user = identity.find_user(conn, user_name)
        stored = user.password_hash if user is not None else None
        if not passwords.verify_password(stored, password) or user is None:
            raise Unauthorized(WRONG_PASSWORD)
        if stored is not None and passwords.needs_rehash(stored):
            self._rehash(user, password)
        with self._db.read() as conn:
            scope = password_scope(conn, user, wanted or None)
            context = build_context(conn, user, scope, expires_at=None)
        return context, self._cache.seconds

    def _rehash(self, user: User, password: str) -> None:
        """Store the password's hash anew under today's parameters."""
        with self._db.begin() as conn:
            identity.update_user(
                conn, user.id, {"password_hash": passwords.hash_password(password)}
            )


def password_scope(conn: sa.Connection, user: User, wanted: str | None) -> Scope:
    """What a password login of ``user`` is scoped to (see the module docstring).

    Raises:
        Unauthorized: ``wanted`` is not a project where the user has a role, or the
            user has roles in several projects and no default one.
    """
    if wanted is not None:
        try:
            project = identity.get_project(conn, wanted)
        except NotFound:
            project = None
        if project is None or not identity.roles_of(conn, user.id, project=project):
            raise Unauthorized(f"User {user.name} has no role in a project '{wanted}'.")
        return Scope(project=project)
    if identity.roles_of(conn, user.id, project=None):
        return Scope(system=True)
    if user.default_project_id is not None:
        return Scope(project=identity.get_project_by_id(conn, user.default_project_id))
    projects = identity.list_projects(conn, ids=identity.role_projects(conn, user.id))
    if len(projects) <= 1:
        return Scope(project=projects[0] if projects else None)
    names = ", ".join(p.name for p in projects[:5])
    raise Unauthorized(
        f"User {user.name} has roles in {len(projects)} projects ({names}) and no default "
        f"project: log in as '{user.name}@<project>', or set a default project with "
        f"`metalcast user set {user.name} --default-project <project>`."
    )


def build_context(
    conn: sa.Connection, user: User, scope: Scope, *, expires_at: datetime | None
) -> RequestContext:
    """The context of ``user`` in ``scope``, with the roles they hold there now.

    Raises:
        Unauthorized: the user or the project is disabled.
    """
    if not user.enabled:
        raise Unauthorized(f"User {user.name} is disabled.")
    project = scope.project
    if project is not None and not project.enabled:
        raise Unauthorized(f"Project {project.name} is disabled.")
    roles: frozenset[str] = frozenset()
    if scope.system or project is not None:
        roles = identity.roles_of(conn, user.id, project=project)
    return RequestContext(
        user=user.uuid,
        user_name=user.name,
        project=None if project is None else project.uuid,
        project_name=None if project is None else project.name,
        roles=with_implied(roles),
        system_scope="all" if scope.system else None,
        expires_at=expires_at,
    )
