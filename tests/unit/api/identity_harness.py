"""Users, projects and credentials for tests of the ``builtin`` strategy.

Users are written straight into the database (as ``metalcast user bootstrap-admin``
does); requests then prove who they are as real clients would.
"""

from __future__ import annotations

import base64
from typing import Any

from api_harness import Api

from metalcast.db import identity, passwords
from metalcast.db.identity import Project, User

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "correct horse battery"


def basic(name: str, password: str) -> dict[str, str]:
    """The header of HTTP Basic, as keystoneauth's http_basic sends it."""
    raw = base64.b64encode(f"{name}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def token_header(secret: str) -> dict[str, str]:
    """The header keystoneauth's admin_token sends."""
    return {"X-Auth-Token": secret}


def as_(api: Api, headers: dict[str, str]) -> Api:
    """The same app, called with these credentials."""
    return Api(api.client, api.db, api.service, api.version, headers)


def admin(api: Api) -> Api:
    """The app called by a system administrator (created on first use)."""
    with api.db.begin() as conn:
        if identity.find_user(conn, "admin") is None:
            identity.bootstrap_admin(
                conn, "admin", password_hash=passwords.hash_password(ADMIN_PASSWORD)
            )
    return as_(api, basic("admin", ADMIN_PASSWORD))


def project(api: Api, name: str, **values: Any) -> Project:
    with api.db.begin() as conn:
        return identity.create_project(conn, {"name": name, **values})


def user(
    api: Api,
    name: str,
    *grants: tuple[str, Project | None],
    password: str = PASSWORD,
    default: Project | None = None,
) -> User:
    """A user with ``grants`` (role, project or None for the system)."""
    values: dict[str, Any] = {"name": name, "password_hash": passwords.hash_password(password)}
    if default is not None:
        values["default_project_id"] = default.id
    with api.db.begin() as conn:
        created = identity.create_user(conn, values)
        for role, where in grants:
            identity.assign_role(conn, created, role, project=where)
    return created


def login(api: Api, name: str, password: str = PASSWORD) -> Api:
    """The app called with ``name``'s password."""
    return as_(api, basic(name, password))


def new_token(caller: Api, **body: Any) -> str:
    """A token made by ``caller`` through the API; its secret."""
    response = caller.post("/v1/auth/tokens", body)
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]
    return secret


def with_token(api: Api, secret: str) -> Api:
    return as_(api, token_header(secret))


def make_node(caller: Api, **fields: Any) -> dict[str, Any]:
    """A fake-hardware node created by ``caller``."""
    response = caller.post("/v1/nodes", {"driver": "fake-hardware", **fields})
    assert response.status_code == 201, response.text
    node: dict[str, Any] = response.json()
    return node


def node_names(caller: Api) -> set[str]:
    response = caller.get("/v1/nodes")
    assert response.status_code == 200, response.text
    return {n["name"] for n in response.json()["nodes"]}
