"""Walking the persona matrix through the ASGI app: one event loop per module, the
personas' credentials (identity headers, or builtin users and their tokens), and
what is wrong with an answer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
from api_harness import BASE, Api, Client, build, fault_of
from policy_matrix import Action, Outcome
from policy_world import Send

from metalcast.api.policy.callers import Caller, Scope
from metalcast.db import identity, passwords
from metalcast.db.engine import Database
from metalcast.db.rows import utcnow


class PortalClient(Client):
    """The harness client on one event loop for the whole module (a loop per request
    costs more than the request)."""

    def __init__(self, app: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        super().__init__(app)
        self._portal = portal
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = portal.call(partial(_client, transport))

    def request(
        self, method: str, path: str, *, content: bytes | None, headers: dict[str, str]
    ) -> httpx.Response:
        send = partial(self._client.request, method, path, content=content, headers=headers)
        return self._portal.call(send)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


async def _client(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, base_url=BASE)


@contextmanager
def portal_api(tmp: Path, strategy: str) -> Iterator[Api]:
    """The app with ``strategy``, on one event loop, without credentials."""
    with anyio.from_thread.start_blocking_portal() as portal:
        for api in build(tmp, strategy):
            client = PortalClient(api.client.app, portal)
            try:
                yield Api(client, api.db, api.service, api.version, {})
            finally:
                client.close()


def with_headers(api: Api, headers: dict[str, str]) -> Api:
    return Api(api.client, api.db, api.service, api.version, headers)


def sender(api: Api) -> Send:
    """``api`` as a :data:`policy_world.Send`."""
    return lambda method, path, body: api.request(method, path, body)


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


# ------------------------------------------------------------------ credentials


def identity_headers(caller: Caller) -> dict[str, str]:
    """The headers an authenticating proxy sets for ``caller`` (none: anonymous)."""
    if caller.role is None or caller.user is None:
        return {}
    headers = {"X-Roles": caller.role, "X-User-Id": caller.user}
    if caller.scope is Scope.SYSTEM:
        headers["OpenStack-System-Scope"] = "all"
    elif caller.project:
        headers["X-Project-Id"] = caller.project
    return headers


def builtin_users(db: Database, callers: tuple[Caller, ...]) -> dict[str, dict[str, str]]:
    """Projects named as the matrix names them, a user of the ``builtin`` strategy
    per caller with the caller's role in its scope, and a token each (written
    straight into the database, as ``metalcast`` commands do).

    Returns ``{"projects": label -> id, "tokens": caller name -> secret}``; the
    system administrator ``root``'s token is ``tokens["root"]``.
    """
    hashed = passwords.hash_password("matrix persona password")
    expires = utcnow() + timedelta(hours=1)
    tokens: dict[str, str] = {}
    with db.begin() as conn:
        labels = sorted({c.project for c in callers if c.project})
        projects = {label: identity.create_project(conn, {"name": label}) for label in labels}
        identity.bootstrap_admin(conn, "root", password_hash=hashed)
        root = identity.get_user(conn, "root")
        tokens["root"] = identity.create_token(conn, root, project=None, expires_at=expires)[1]
        for caller in callers:
            if caller.role is None or caller.user is None:
                continue
            user = identity.create_user(conn, {"name": caller.user, "password_hash": hashed})
            where = None if caller.scope is Scope.SYSTEM else projects[caller.project or ""]
            identity.assign_role(conn, user, caller.role, project=where)
            _, tokens[caller.name] = identity.create_token(
                conn, user, project=where, expires_at=expires
            )
    return {"projects": {label: p.uuid for label, p in projects.items()}, "tokens": tokens}


# ----------------------------------------------------------------------- judging


def judge(action: Action, expected: Outcome, response: httpx.Response) -> str | None:
    """What is wrong with ``response`` (None: nothing)."""
    status = response.status_code
    if expected is Outcome.ALLOWED:
        return None if status == action.status else f"{status} {response.text[:200]}"
    if status != expected.value:
        return f"{status} {response.text[:200]}"
    if expected is Outcome.FORBIDDEN:
        fault = fault_of(response)
        if not fault.startswith("Access was denied to the following resource: "):
            return f"403 without Ironic's message: {fault}"
    return None
