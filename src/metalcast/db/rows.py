"""Row mechanics every repository module shares: identifiers, timestamps, paging,
inserts, updates and unique checks.  No table-specific knowledge lives here; every
insert and update passes :func:`written`: UUIDs in canonical lower case, then
:func:`metalcast.db.sealing.protect` (secrets sealed, free text scrubbed).

The statements run on every request (a row by id or UUID, an insert, an update by
id, a unique check) are built once per table and shape (:func:`statement`) and take
their values as parameters: building a statement and its cache key again for each
call cost more CPU than SQLite took to run it.

Errors raised: ``NotFound`` (404) for a missing row, ``Conflict`` (409) for a
duplicate unique value, ``InvalidInput`` (400) for a bad marker or sort key.
"""

from __future__ import annotations

import functools
import re
import uuid as uuidlib
from collections.abc import Callable, Iterable
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
#: the columns holding UUIDs: always stored in lower case (canonical form)
UUID_KEYS = ("uuid", "instance_uuid")

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
#: Ironic's logical names: RFC 3986 unreserved characters, at most 255 of them
_LOGICAL_NAME = re.compile(r"[A-Za-z0-9\-._~]{1,255}")
#: how much of a refused identifier a message repeats
_ECHO = 80
#: the parameter naming the row an update by id changes (no table has such a column)
_ROW_ID = "row_id_"
#: the parameter names of a unique check's excluded row and of a lookup's value
_EXCLUDE_ID = "exclude_id_"
_VALUE = "value_"

E = TypeVar("E", bound=sa.Executable)


@functools.cache
def statement(build: Callable[..., E], *shape: Any) -> E:
    """``build(*shape)``, built once for each ``shape`` (hashable: tables, column
    names, flags) and kept: its values come as parameters when it is executed, and
    SQLAlchemy computes its cache key once instead of on every call.  The shapes are
    few and fixed by the code, so the cache stays small."""
    return build(*shape)


def _select_where(
    table: sa.Table, column: str, columns: tuple[str, ...] | None = None
) -> sa.Select[Any]:
    chosen = table.c if columns is None else [table.c[name] for name in columns]
    return sa.select(*chosen).where(table.c[column] == sa.bindparam(_VALUE))


def _update_by_id(table: sa.Table) -> sa.Update:
    return sa.update(table).where(table.c.id == sa.bindparam(_ROW_ID))


def _insert_returning(table: sa.Table) -> sa.Insert:
    return sa.insert(table).returning(*table.c)


def _taken(table: sa.Table, keys: tuple[str, ...], exclude: bool) -> sa.Select[Any]:
    query = sa.select(table.c.id).where(*(table.c[k] == sa.bindparam(f"{k}_") for k in keys))
    if exclude:
        query = query.where(table.c.id != sa.bindparam(_EXCLUDE_ID))
    return query.limit(1)


def _check_columns(table: sa.Table, values: JSONDict) -> None:
    """Refuse keys that are not columns of ``table`` (a parameter that names no
    column would be dropped silently).

    Raises:
        CompileError: as ``Insert.values`` would for such keys.
    """
    unknown = values.keys() - table.c.keys()
    if unknown:
        raise sa.exc.CompileError(f"Unconsumed column names: {', '.join(sorted(unknown))}")


def utcnow() -> datetime:
    """Now, in UTC, without tzinfo (how every timestamp is stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_uuid() -> str:
    return str(uuidlib.uuid4())


def is_uuid(value: str) -> bool:
    """True for a UUID in canonical form (8-4-4-4-12 hex digits), in either case."""
    return _CANONICAL_UUID.fullmatch(value) is not None


def is_uuid_like(value: str) -> bool:
    """True for anything Python reads as a UUID: canonical or not (no or misplaced
    dashes, braces, ``urn:uuid:``).  Such a string is never a name."""
    try:
        uuidlib.UUID(value)
    except ValueError:
        return False
    return True


def is_logical_name(value: str) -> bool:
    """True for a valid name: unreserved characters only, and not UUID-like (it
    would be mistaken for one)."""
    return _LOGICAL_NAME.fullmatch(value) is not None and not is_uuid_like(value)


def echo(value: str) -> str:
    """``value`` as a message may repeat it: cut short when long."""
    return value if len(value) <= _ECHO else value[:_ECHO] + "…"


def canonical_uuid(value: str, *, what: str = "a UUID") -> str:
    """``value`` in lower case, if it is a UUID in canonical form.

    Raises:
        InvalidInput: it is not (a misplaced dash, braces, no dashes, not hex).
    """
    if not is_uuid(value):
        raise not_canonical(value, what=what)
    return value.lower()


def not_canonical(value: str, *, what: str = "a UUID") -> InvalidInput:
    """The error for ``value`` where a canonical UUID was expected."""
    return InvalidInput(
        f"Expected {what} in canonical form (8-4-4-4-12 hexadecimal digits, e.g. "
        f"1be26c0b-03f2-4d2e-ae87-c02d7f33c123) but received {echo(value)}."
    )


def normalized(values: JSONDict) -> JSONDict:
    """``values`` with every UUID column value (:data:`UUID_KEYS`) in lower case, so
    that two spellings of one UUID never make two rows."""
    if not any(isinstance(values.get(key), str) for key in UUID_KEYS):
        return values
    out = dict(values)
    for key in UUID_KEYS:
        if isinstance(out.get(key), str):
            out[key] = out[key].lower()
    return out


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of a collection to read, as Ironic's list parameters say."""

    limit: int = 1000
    marker: str | None = None
    sort_key: str = "id"
    sort_dir: str = "asc"


def get_by_ident(conn: sa.Connection, table: sa.Table, ident: str, what: str) -> sa.RowMapping:
    """The row whose UUID (or, for tables with names, name) is ``ident``.  A UUID
    matches whatever its case.

    Raises:
        InvalidInput: ``ident`` is neither a canonical UUID nor, for tables with
            names, a valid name (Ironic's "Expected a logical name or UUID").
        NotFound: no such row.
    """
    return get_columns_by_ident(conn, table, ident, what, columns=None)


def get_columns_by_ident(
    conn: sa.Connection,
    table: sa.Table,
    ident: str,
    what: str,
    *,
    columns: tuple[str, ...] | None,
) -> sa.RowMapping:
    """:func:`get_by_ident` reading only ``columns`` (None: all of them).  Raises
    as it does."""
    col, value = _ident_column(table, ident)
    query = statement(_select_where, table, col.key, columns)
    row = conn.execute(query, {_VALUE: value}).mappings().first()
    if row is None:
        raise NotFound(f"{what} {ident} could not be found.")
    return row


def _ident_column(table: sa.Table, ident: str) -> tuple[sa.Column[Any], str]:
    """The column ``ident`` names a row by, and the value to look for."""
    if is_uuid(ident):
        return table.c.uuid, ident.lower()
    named = "name" in table.c
    if named and is_logical_name(ident):
        return table.c.name, ident
    if is_uuid_like(ident) or not named:
        raise not_canonical(ident)
    raise InvalidInput(f"Expected a logical name or UUID but received {echo(ident)}.")


def by_id(
    conn: sa.Connection,
    table: sa.Table,
    cls: type[R],
    row_id: int,
    what: str,
    *,
    columns: tuple[str, ...] | None = None,
) -> R:
    """The record of the row with primary key ``row_id``, built from ``columns``
    only when given (``cls`` then has exactly those fields).  Raises ``NotFound``."""
    query = statement(_select_where, table, "id", columns)
    row = conn.execute(query, {_VALUE: row_id}).mappings().first()
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
    marker_uuid = page.marker.lower() if page.marker else page.marker
    marker = conn.execute(sa.select(idcol, col).where(table.c.uuid == marker_uuid)).first()
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


def written(
    conn: sa.Connection,
    table: sa.Table,
    values: JSONDict,
    *,
    row_id: int | None,
    node: JSONDict | None = None,
) -> JSONDict:
    """``values`` as they are written into ``table`` (row ``row_id``, or a new row):
    UUIDs in lower case (:func:`normalized`), then secrets sealed and free text
    scrubbed (:func:`metalcast.db.sealing.protect`).  Every insert and update goes
    through here.  ``node``: the sealed columns of the node a history row is about,
    when the caller has them (the node's secrets are not read again to scrub it).

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    return sealing.protect(conn, table, normalized(values), row_id=row_id, node=node)


def insert(
    conn: sa.Connection, table: sa.Table, values: JSONDict, *, node: JSONDict | None = None
) -> int:
    """Insert a row (``created_at`` now unless given) as :func:`written` makes it;
    its primary key.

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    values = written(conn, table, {"created_at": utcnow(), **values}, row_id=None, node=node)
    _check_columns(table, values)
    result = conn.execute(statement(sa.insert, table), values)
    pk = result.inserted_primary_key
    assert pk is not None
    return int(pk[0])


def insert_unique(
    conn: sa.Connection, table: sa.Table, what: str, values: JSONDict
) -> sa.RowMapping:
    """Insert a row as :func:`insert` does and return it as stored (``RETURNING``: no
    second read).  A value of :data:`UNIQUE_KEYS` another row has is refused by the
    table's own unique constraint, as :func:`check_unique` would: one statement instead
    of a look-up per key, and no race between the look-up and the insert.

    Raises:
        Conflict: a unique value is taken ("A node with name x already exists.").
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    values = written(conn, table, {"created_at": utcnow(), **values}, row_id=None)
    _check_columns(table, values)
    try:
        return conn.execute(statement(_insert_returning, table), values).mappings().one()
    except sa.exc.IntegrityError as exc:
        duplicate = _duplicate_key(exc)
        if duplicate is None or duplicate not in UNIQUE_KEYS or duplicate not in values:
            raise
        raise _taken_error(what, duplicate, values[duplicate]) from None


#: what a message calls a unique column
_KEY_LABELS = {"uuid": "UUID", "address": "MAC address"}
#: the column a unique violation names: SQLite's message, PostgreSQL's detail
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: \w+\.(\w+)")
_POSTGRES_UNIQUE = re.compile(r"Key \((\w+)\)=")


def _duplicate_key(exc: sa.exc.IntegrityError) -> str | None:
    """The column whose unique constraint ``exc`` reports (None: another integrity
    error, a foreign key or NOT NULL one)."""
    diag = getattr(exc.orig, "diag", None)
    detail = getattr(diag, "message_detail", None)
    if isinstance(detail, str):
        found = _POSTGRES_UNIQUE.search(detail)
    else:
        found = _SQLITE_UNIQUE.search(str(exc.orig))
    return found.group(1) if found else None


def _taken_error(what: str, key: str, value: Any) -> Conflict:
    article = "An" if what[0] in "aeiou" else "A"
    return Conflict(f"{article} {what} with {_KEY_LABELS.get(key, key)} {value} already exists.")


def insert_many(conn: sa.Connection, table: sa.Table, values: Iterable[JSONDict]) -> None:
    """Insert rows in one statement (``created_at`` now unless given), each as
    :func:`written` makes it.

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    now = utcnow()
    batch = [written(conn, table, {"created_at": now, **v}, row_id=None) for v in values]
    if batch:
        conn.execute(sa.insert(table), batch)


def update(conn: sa.Connection, table: sa.Table, row_id: int, values: JSONDict) -> JSONDict:
    """Write ``values`` into row ``row_id``, stamping ``updated_at``; returns the values
    as written (:func:`written`: UUIDs in lower case, secrets sealed, masked ones kept
    as stored, free text scrubbed).

    Raises:
        SecretsUnprotected: a secret to store and no key to seal it with.
    """
    values = written(conn, table, values, row_id=row_id)
    _check_columns(table, values)
    params = {"updated_at": utcnow(), **values, _ROW_ID: row_id}
    conn.execute(statement(_update_by_id, table), params)
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
    values = normalized(values)
    for key in UNIQUE_KEYS:
        value = values.get(key)
        if value is None or key not in table.c:
            continue
        message = _taken_error(what, key, value).message
        check_free(conn, table, {key: value}, exclude_id=exclude_id, message=message)


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
    keys = tuple(match)
    query = statement(_taken, table, keys, exclude_id is not None)
    params = {f"{k}_": v for k, v in match.items()}
    if exclude_id is not None:
        params[_EXCLUDE_ID] = exclude_id
    if conn.execute(query, params).first() is not None:
        described = ", ".join(f"{k} {v}" for k, v in match.items())
        raise Conflict(message or f"A {what} with {described} already exists.")


def records(conn: sa.Connection, cls: type[R], query: sa.Select[Any]) -> list[R]:
    """The rows of ``query`` as records of ``cls``."""
    return [from_row(cls, r) for r in conn.execute(query).mappings()]


def ids_in(column: sa.Column[Any], ids: Iterable[int]) -> sa.ColumnElement[bool]:
    """``column IN ids`` (a list is made once, whatever iterable is given)."""
    return column.in_(list(ids))
