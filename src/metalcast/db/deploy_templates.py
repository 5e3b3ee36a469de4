"""Reads and writes of deploy templates (API 1.55): named sets of deploy steps.
Functions take a connection; the caller owns the transaction.

Errors raised: ``NotFound`` (404) for a missing template, ``Conflict`` (409) for a
taken name or UUID, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import DeployTemplate, JSONDict, from_row
from metalcast.db.rows import Page, new_uuid

_TAKEN = {
    "uuid": "A deploy template with UUID {} already exists.",
    "name": "A deploy template with name {} already exists.",
}


def _check_free(conn: sa.Connection, values: JSONDict, *, exclude_id: int | None) -> None:
    for key, message in _TAKEN.items():
        value = values.get(key)
        if value is not None:
            rows.check_free(
                conn,
                t.deploy_templates,
                {key: value},
                exclude_id=exclude_id,
                message=message.format(value),
            )


def create_deploy_template(conn: sa.Connection, values: JSONDict) -> DeployTemplate:
    """Insert a template (``uuid`` generated if absent).

    Raises:
        Conflict: the UUID or the name is taken.
    """
    values = {"uuid": new_uuid(), "extra": {}, **values}
    _check_free(conn, values, exclude_id=None)
    return get_deploy_template_by_id(conn, rows.insert(conn, t.deploy_templates, values))


def get_deploy_template(conn: sa.Connection, ident: str) -> DeployTemplate:
    """The template with UUID or name ``ident``.  Raises ``NotFound``."""
    row = rows.get_by_ident(conn, t.deploy_templates, ident, "Deploy template")
    return from_row(DeployTemplate, row)


def get_deploy_template_by_id(conn: sa.Connection, template_id: int) -> DeployTemplate:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.deploy_templates, DeployTemplate, template_id, "Deploy template")


def list_deploy_templates(conn: sa.Connection, page: Page) -> list[DeployTemplate]:
    """A page of templates.  Raises ``InvalidInput`` for a bad sort key or marker."""
    query = rows.paginate(conn, t.deploy_templates, sa.select(t.deploy_templates), page)
    return rows.records(conn, DeployTemplate, query)


def update_deploy_template(conn: sa.Connection, template_id: int, values: JSONDict) -> None:
    """Raises ``Conflict`` when the new name is taken."""
    _check_free(conn, values, exclude_id=template_id)
    rows.update(conn, t.deploy_templates, template_id, values)


def destroy_deploy_template(conn: sa.Connection, template_id: int) -> None:
    conn.execute(sa.delete(t.deploy_templates).where(t.deploy_templates.c.id == template_id))


def deploy_templates_named(conn: sa.Connection, names: list[str]) -> list[DeployTemplate]:
    """The templates whose names are among ``names`` (a node's instance traits), by
    name."""
    if not names:
        return []
    query = (
        sa.select(t.deploy_templates)
        .where(t.deploy_templates.c.name.in_(sorted(set(names))))
        .order_by(t.deploy_templates.c.name)
    )
    return rows.records(conn, DeployTemplate, query)
