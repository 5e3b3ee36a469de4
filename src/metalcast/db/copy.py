"""Every row of one metalcast database copied into another, empty one: what
``metalcast db copy`` moves an all-in-one SQLite install into PostgreSQL with.

Both databases must be migrated to the same revision first (the caller does it).
The rows are copied as they are stored, sealed secrets included (they stay
encrypted with the key they were sealed with), table after table in foreign-key
order, a batch at a time, in one transaction on the target: a copy that fails leaves
it as empty as it was.  Nothing may write to the source meanwhile (``metalcast db
copy`` refuses while a server runs on it).  On PostgreSQL the id sequences are then
moved past the copied ids, so that new rows get new ids.  At the end every table's
rows are counted on the target and compared with the source's counts taken before
the copy; a difference (the source written after all) rolls the copy back.

Errors::

    DatabaseError
    ├── TargetNotEmpty     the target already holds rows
    └── CountMismatch      a table's rows differ in number after the copy
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from metalcast.db import tables as t
from metalcast.db.engine import Database, DatabaseError

#: rows read and written at a time
BATCH = 500
#: ``progress(table, copied, total)``, called after every batch (and once for an
#: empty table)
Progress = Callable[[str, int, int], None]


class TargetNotEmpty(DatabaseError):
    """The database to copy into already holds rows."""

    def __init__(self, where: str, tables: dict[str, int]) -> None:
        found = ", ".join(f"{name} ({count})" for name, count in tables.items())
        super().__init__(
            f"{where} already holds rows: {found}. Copy into a new, empty database "
            "(or drop and create this one again); nothing was copied."
        )
        self.tables = tables


class CountMismatch(DatabaseError):
    """A table has not as many rows in the target as in the source after the copy."""


@dataclass(frozen=True, slots=True)
class Copied:
    """One table's rows copied."""

    table: str
    rows: int


def tables_in_order() -> list[sa.Table]:
    """Every table, each after the tables its foreign keys point to; not
    ``schema_compat``, which each database's own migrations write."""
    return [table for table in t.metadata.sorted_tables if table is not t.schema_compat]


def counts(conn: sa.Connection) -> dict[str, int]:
    """The number of rows of every table."""
    return {
        table.name: int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
        for table in tables_in_order()
    }


def check_empty(db: Database) -> None:
    """Raises ``TargetNotEmpty`` when any table of ``db`` holds a row."""
    with db.read() as conn:
        taken = {name: count for name, count in counts(conn).items() if count}
    if taken:
        raise TargetNotEmpty(db.safe_url, taken)


def copy_rows(
    source: Database, target: Database, *, batch: int = BATCH, progress: Progress | None = None
) -> list[Copied]:
    """Copy every row of ``source`` into the empty, migrated ``target``.

    Raises:
        TargetNotEmpty: ``target`` holds rows (checked inside the copy's transaction).
        CountMismatch: a table's count differs afterwards (nothing is committed).
    """
    report = progress or (lambda _table, _done, _total: None)
    with source.read() as src, target.begin() as dst:
        taken = {name: count for name, count in counts(dst).items() if count}
        if taken:
            raise TargetNotEmpty(target.safe_url, taken)
        expected = counts(src)
        copied = [
            Copied(table.name, _copy_table(src, dst, table, batch=batch, report=report))
            for table in tables_in_order()
        ]
        if target.backend == "postgresql":
            _move_sequences(dst)
        _verify(expected, counts(dst))
    return copied


def _copy_table(
    src: sa.Connection, dst: sa.Connection, table: sa.Table, *, batch: int, report: Progress
) -> int:
    total = int(src.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
    done = 0
    query = sa.select(table).order_by(*table.primary_key.columns)
    result = src.execution_options(yield_per=batch).execute(query).mappings()
    for rows in result.partitions(batch):
        dst.execute(sa.insert(table), [dict(row) for row in rows])
        done += len(rows)
        report(table.name, done, total)
    if not total:
        report(table.name, 0, 0)
    return done


def _move_sequences(dst: sa.Connection) -> None:
    """Set each id sequence past the largest copied id (or back to 1 for an empty
    table), as inserts through the sequence would have left it."""
    for table in tables_in_order():
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or columns[0].autoincrement is False:
            continue
        if not isinstance(columns[0].type, sa.Integer):
            continue
        pk = columns[0]
        sequence = sa.func.pg_get_serial_sequence(table.name, pk.name)
        largest = sa.select(sa.func.max(pk)).scalar_subquery()
        dst.execute(
            sa.select(sa.func.setval(sequence, sa.func.coalesce(largest, 1), largest.isnot(None)))
        )


def _verify(expected: dict[str, int], found: dict[str, int]) -> None:
    wrong = {name: (count, found.get(name)) for name, count in expected.items()}
    wrong = {name: pair for name, pair in wrong.items() if pair[0] != pair[1]}
    if wrong:
        described = ", ".join(
            f"{name}: {a} in the source, {b} copied" for name, (a, b) in wrong.items()
        )
        raise CountMismatch(f"The copy is incomplete, nothing was committed: {described}.")
