"""Row mechanics every repository module shares: identifiers, timestamps, paging,
inserts, updates and unique checks.  No table-specific knowledge lives here; every
insert and update passes :func:`metalcast.db.sealing.protect` (secrets sealed, free
text scrubbed).

Errors raised: ``NotFound`` (404) for a missing row, ``Conflict`` (409) for a
duplicate unique value, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from metalcast.db import sealing
from metalcast.db.models import JSONDict, from_row
from metalcast.errors import Conflict, InvalidInput, NotFound

R = TypeVar("R")

#: the columns whose values must be unique wherever a table has them
UNIQUE_KEYS = ("uuid", "name", "address", "instance_uuid")


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo (how every timestamp is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def is_uuid(value: str) -> bool:
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a collection to read, as Ironic's list parameters say."""

    limit: int = 1000
    marker: str | None = None
    sort_key: str = "id"
    sort_dir: str = "asc"


def get_by_ident(conn: sa.Connection, table: sa.Table, ident: str, what: str) -> sa.RowMapping:
    """The row whose UUID (or, for tables with names, name) is ``ident``.

    Raises:
        NotFound: no such row.
    """
    col = table.c.uuid if is_uuid(ident) else table.c.get("name")
    if col is None:
        raise NotFound(f"{what} {ident} could not be found.")
    row = conn.execute(sa.select(table).where(col == ident)).mappings().first()
    if row is None:
        raise NotFound(f"{what} {ident} could not be found.")
    return row


def by_id(conn: sa.Connection, table: sa.Table, cls: type[R], row_id: int, what: str) -> R:
    """The record of the row with primary key ``row_id``.  Raises ``NotFound``."""
    row = conn.execute(sa.select(table).where(table.c.id == row_id)).mappings().first()
    if row is None:
        raise NotFound(f"{what} {row_id} could not be found.")
    return from_row(cls, row)


def paginate(
    conn: sa.Connection, table: sa.Table, query: sa.Select[Any], page: Page
) -> sa.Select[Any]:
    """``query`` ordered, started after ``page.marker`` and limited as ``page`` says.

    Raises:
        InvalidInput: unknown sort key or direction, or a marker that is not a row.
    """
    if page.sort_key not in table.c:
        raise InvalidInput(f"The sort_key value '{page.sort_key}' is an invalid field for sorting.")
    if page.sort_dir not in ("asc", "desc"):
        raise InvalidInput(
            f"Invalid sort direction: {page.sort_dir}. Acceptable values are 'asc' or 'desc'."
        )
    col = table.c[page.sort_key]
    idcol = table.c.id
    desc = page.sort_dir == "desc"
    if page.marker is not None:
        query = query.where(_after_marker(conn, table, col, page=page))
    order = [col.desc() if desc else col.asc()]
    if col is not idcol:
        order.append(idcol.desc() if desc else idcol.asc())
    return query.order_by(*order).limit(page.limit)


def _after_marker(
    conn: sa.Connection, table: sa.Table, col: sa.Column[Any], *, page: Page
) -> sa.ColumnElement[bool]:
    idcol = table.c.id
    desc = page.sort_dir == "desc"
    marker = conn.execute(sa.select(idcol, col).where(table.c.uuid == page.marker)).first()
    if marker is None:
        raise InvalidInput(f"Marker {page.marker} could not be found.")
    mid, mval = marker
    past_id: sa.ColumnElement[bool] = idcol < mid if desc else idcol > mid
    if col is idcol:
        return past_id
    if mval is None:
        return sa.and_(col.is_(None), past_id)
    after = col < mval if desc else col > mval
    return sa.or_(after, sa.and_(col == mval, past_id))


def insert(conn: sa.Connection, table: sa.Table, values: JSONDict) -> int:
    """Insert a row (``created_at`` now unless given), secrets sealed; its primary key.

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    values = sealing.protect(conn, table, {"created_at": utcnow(), **values}, row_id=None)
    result = conn.execute(sa.insert(table).values(values))
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def update(conn: sa.Connection, table: sa.Table, row_id: int, values: JSONDict) -> JSONDict:
    """Write ``values`` into row ``row_id``, stamping ``updated_at``; returns the values
    as written (secrets sealed, masked ones kept as stored, free text scrubbed).

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    values = sealing.protect(conn, table, values, row_id=row_id)
    conn.execute(sa.update(table).where(table.c.id == row_id).values(updated_at=utcnow(), **values))
    return values


def check_unique(
    conn: sa.Connection,
    table: sa.Table,
    what: str,
    values: JSONDict,
    *,
    exclude_id: int | None = None,
) -> None:
    """Raise ``Conflict`` when a value of :data:`UNIQUE_KEYS` in ``values`` is taken
    by another row (not ``exclude_id``)."""
    for key in UNIQUE_KEYS:
        value = values.get(key)
        if value is None or key not in table.c:
            continue
        check_free(conn, table, {key: value}, exclude_id=exclude_id, message=None, what=what)


def check_free(
    conn: sa.Connection,
    table: sa.Table,
    match: JSONDict,
    *,
    exclude_id: int | None,
    message: str | None,
    what: str = "resource",
) -> None:
    """Raise ``Conflict`` (with ``message``, or a generic one) when another row than
    ``exclude_id`` has every value of ``match``."""
    query = sa.select(table.c.id).where(*(table.c[k] == v for k, v in match.items()))
    if exclude_id is not None:
        query = query.where(table.c.id != exclude_id)
    if conn.execute(query).first() is not None:
        described = ", ".join(f"{k} {v}" for k, v in match.items())
        raise Conflict(message or f"A {what} with {described} already exists.")


def records(conn: sa.Connection, cls: type[R], query: sa.Select[Any]) -> list[R]:
    """The rows of ``query`` as records of ``cls``."""
    return [from_row(cls, r) for r in conn.execute(query).mappings()]


def ids_in(column: sa.Column[Any], ids: Iterable[int]) -> sa.ColumnElement[bool]:
    """``column IN ids`` (a list is made once, whatever iterable is given)."""
    return column.in_(list(ids))
