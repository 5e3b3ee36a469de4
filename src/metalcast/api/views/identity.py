"""How the identity API shows users, projects, role assignments and tokens.

Never a password, a password hash, a token's secret (only on creation, by the
route) or its hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from metalcast.api.operations import (
    DATE_TIME,
    LINKS,
    Named,
    array,
    boolean,
    nullable,
    obj,
    string,
)
from metalcast.api.views.common import iso, links
from metalcast.db.identity import ApiToken, Assignment, Project, User

_ID = string(pattern="^[0-9a-f]{32}$")
_TIMES = {"created_at": DATE_TIME, "updated_at": nullable(DATE_TIME)}


def _document(name: str, properties: dict[str, Any]) -> Named:
    """A document whose every property is always there."""
    return Named(name, obj(properties, required=properties))


PROJECT = _document(
    "Project",
    {
        "id": _ID,
        "name": string(),
        "description": nullable(string()),
        "enabled": boolean(),
        **_TIMES,
        "links": LINKS,
    },
)
ASSIGNMENT = _document(
    "RoleAssignment",
    {
        "role": string(),
        "user_id": _ID,
        "user_name": string(),
        "project_id": nullable(_ID),
        "project_name": nullable(string()),
        "system": nullable(string(enum=["all"])),
    },
)
USER = _document(
    "User",
    {
        "id": _ID,
        "name": string(),
        "description": nullable(string()),
        "enabled": boolean(),
        "default_project_id": nullable(_ID),
        "default_project_name": nullable(string()),
        "roles": array(ASSIGNMENT),
        **_TIMES,
        "links": LINKS,
    },
)
_TOKEN = {
    "id": _ID,
    "user_id": nullable(_ID),
    "user_name": nullable(string()),
    "project_id": nullable(_ID),
    "project_name": nullable(string()),
    "system": nullable(string(enum=["all"])),
    "description": nullable(string()),
    "status": string(enum=["active", "revoked", "expired"]),
    "created_at": DATE_TIME,
    "expires_at": DATE_TIME,
    "revoked_at": nullable(DATE_TIME),
    "links": LINKS,
}
TOKEN = _document("Token", _TOKEN)
#: the answer to a token's creation: the only one with its secret
CREATED_TOKEN = _document(
    "TokenCreated", {**_TOKEN, "token": string(description="The secret: shown this once.")}
)


def render_project(project: Project, *, base_url: str) -> dict[str, Any]:
    return {
        "id": project.uuid,
        "name": project.name,
        "description": project.description,
        "enabled": project.enabled,
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
        "links": links(base_url, f"auth/projects/{project.uuid}"),
    }


def render_user(
    user: User, *, base_url: str, default_project: Project | None, roles: list[Assignment]
) -> dict[str, Any]:
    """A user, with their default project and their role assignments."""
    return {
        "id": user.uuid,
        "name": user.name,
        "description": user.description,
        "enabled": user.enabled,
        "default_project_id": None if default_project is None else default_project.uuid,
        "default_project_name": None if default_project is None else default_project.name,
        "roles": [render_assignment(a) for a in roles],
        "created_at": iso(user.created_at),
        "updated_at": iso(user.updated_at),
        "links": links(base_url, f"auth/users/{user.uuid}"),
    }


def render_assignment(assignment: Assignment) -> dict[str, Any]:
    """One role of one user: ``system`` is "all" for a role on the system."""
    return {
        "role": assignment.role,
        "user_id": assignment.user_uuid,
        "user_name": assignment.user_name,
        "project_id": assignment.project_uuid,
        "project_name": assignment.project_name,
        "system": "all" if assignment.project_uuid is None else None,
    }


def token_status(token: ApiToken, *, now: datetime) -> str:
    """ "active", "revoked" or "expired"."""
    if token.revoked_at is not None:
        return "revoked"
    return "expired" if token.expires_at <= now else "active"


def render_token(
    token: ApiToken,
    *,
    base_url: str,
    users: Mapping[int, User],
    projects: Mapping[int, Project],
    now: datetime,
) -> dict[str, Any]:
    """A token without its secret; ``users`` and ``projects`` name its owner and scope."""
    user = users.get(token.user_id)
    project = None if token.project_id is None else projects.get(token.project_id)
    return {
        "id": token.uuid,
        "user_id": None if user is None else user.uuid,
        "user_name": None if user is None else user.name,
        "project_id": None if project is None else project.uuid,
        "project_name": None if project is None else project.name,
        "system": "all" if token.system_scope else None,
        "description": token.description,
        "status": token_status(token, now=now),
        "created_at": iso(token.created_at),
        "expires_at": iso(token.expires_at),
        "revoked_at": iso(token.revoked_at),
        "links": links(base_url, f"auth/tokens/{token.uuid}"),
    }
