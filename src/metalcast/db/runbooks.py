"""Reads and writes of runbooks (API 1.92): named lists of clean or service steps.
Functions take a connection; the caller owns the transaction.

Errors raised: ``NotFound`` (404) for a missing runbook, ``Conflict`` (409) for a
taken name or UUID, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

import sqlalchemy as sa

from metalcast.db import rows
from metalcast.db import tables as t
from metalcast.db.models import JSONDict, Runbook, from_row
from metalcast.db.rows import Page, new_uuid

_TAKEN = {
    "uuid": "A runbook with UUID {} already exists.",
    "name": "A runbook with name {} already exists.",
}


def _check_free(conn: sa.Connection, values: JSONDict, *, exclude_id: int | None) -> None:
    for key, message in _TAKEN.items():
        value = values.get(key)
        if value is not None:
            rows.check_free(
                conn, t.runbooks, {key: value}, exclude_id=exclude_id, message=message.format(value)
            )


def create_runbook(conn: sa.Connection, values: JSONDict) -> Runbook:
    """Insert a runbook (``uuid`` generated if absent; private, with the ramdisk).

    Raises:
        Conflict: the UUID or the name is taken.
    """
    values = {"uuid": new_uuid(), "extra": {}, "disable_ramdisk": False, "public": False, **values}
    _check_free(conn, values, exclude_id=None)
    return get_runbook_by_id(conn, rows.insert(conn, t.runbooks, values))


def get_runbook(conn: sa.Connection, ident: str) -> Runbook:
    """The runbook with UUID or name ``ident``.  Raises ``NotFound``."""
    return from_row(Runbook, rows.get_by_ident(conn, t.runbooks, ident, "Runbook"))


def get_runbook_by_id(conn: sa.Connection, runbook_id: int) -> Runbook:
    """Raises ``NotFound``."""
    return rows.by_id(conn, t.runbooks, Runbook, runbook_id, "Runbook")


def list_runbooks(conn: sa.Connection, page: Page, *, project: str | None = None) -> list[Runbook]:
    """A page of runbooks; with ``project``, that project's and the public ones only
    (what a project's caller may list, as in Ironic).

    Raises:
        InvalidInput: a bad sort key or marker.
    """
    query = sa.select(t.runbooks)
    if project is not None:
        query = query.where(sa.or_(t.runbooks.c.owner == project, t.runbooks.c.public))
    return rows.records(conn, Runbook, rows.paginate(conn, t.runbooks, query, page))


def update_runbook(conn: sa.Connection, runbook_id: int, values: JSONDict) -> None:
    """Raises ``Conflict`` when the new name is taken."""
    _check_free(conn, values, exclude_id=runbook_id)
    rows.update(conn, t.runbooks, runbook_id, values)


def destroy_runbook(conn: sa.Connection, runbook_id: int) -> None:
    conn.execute(sa.delete(t.runbooks).where(t.runbooks.c.id == runbook_id))
