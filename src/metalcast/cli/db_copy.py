"""``metalcast db copy --to URL``: move an installation's database into another one,
typically the all-in-one server's SQLite file into PostgreSQL.

In order: the secret key is loaded from the state directory (it must exist: the
copied secrets stay sealed with it); the source (``--from``, else the configured
database) is migrated, and refused while a server heartbeats on it; what an older
version stored in clear is sealed there, as a server start would, so no clear secret
reaches the target; the target is migrated and must be empty; then
:func:`metalcast.db.copy.copy_rows` copies every table, printing its progress, and
counts the rows on both sides.  Database URLs are only ever shown with their
password masked.

Errors::

    MetalcastError
    ├── ServerRunning      a server heartbeats on the source database
    ├── CopyRefused        no secret key, or source and target are one database
    └── DatabaseError      a database cannot be opened or migrated
        ├── TargetNotEmpty the target holds rows already
        └── CountMismatch  the copy is incomplete (nothing was committed)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from metalcast.cli.key_rotation import refuse_if_running
from metalcast.config import Settings
from metalcast.db import copy, sealing
from metalcast.db.engine import Database
from metalcast.errors import MetalcastError
from metalcast.secrecy import keyfile
from metalcast.secrecy.keyfile import KEY_FILE

#: ``say(line)``: where progress goes
Say = Callable[[str], None]


class CopyRefused(MetalcastError):
    """The copy cannot start: nothing was written anywhere."""


@dataclass(frozen=True, slots=True)
class CopyDone:
    """What a copy did."""

    source: str
    target: str
    tables: list[copy.Copied]
    #: rows of the source sealed before the copy (secrets an older version left in clear)
    sealed: int


def copy_database(
    settings: Settings,
    *,
    target_url: str,
    source_url: str | None = None,
    batch: int = copy.BATCH,
    say: Say,
) -> CopyDone:
    """Copy the installation's database (or ``source_url``) into ``target_url``.

    Raises:
        CopyRefused, ServerRunning, DatabaseError: see the module's errors.
    """
    key_path = settings.state_dir / KEY_FILE
    if not key_path.exists():
        raise CopyRefused(
            f"No secret key at {key_path}: give the --state-dir (or --config) of the "
            "server whose database this is; the copied secrets stay sealed with its key."
        )
    box = keyfile.load(key_path)
    source = Database(source_url or settings.database_url, secret_box=box)
    target = Database(target_url)
    try:
        if source.url == target.url:
            raise CopyRefused(f"{source.safe_url} is both the source and the target.")
        sealed = _prepare_source(source, settings=settings, say=say)
        say(f"target {target.safe_url}: migrating")
        target.migrate()
        copy.check_empty(target)
        tables = copy.copy_rows(source, target, batch=batch, progress=_progress(say))
    finally:
        source.dispose()
        target.dispose()
    return CopyDone(source.safe_url, target.safe_url, tables, sealed)


def _prepare_source(source: Database, *, settings: Settings, say: Say) -> int:
    say(f"source {source.safe_url}: migrating")
    source.migrate()
    with source.read() as conn:
        refuse_if_running(
            conn,
            timeout=settings.conductor.heartbeat_timeout,
            command="metalcast db copy",
            why="Rows it writes during the copy would be missing from the target.",
        )
    sealed = sealing.seal_database(source)
    if sealed:
        say(f"source: sealed {sealed} row(s) an older version stored with secrets in clear")
    return sealed


def _progress(say: Say) -> copy.Progress:
    def report(table: str, done: int, total: int) -> None:
        say(f"  {table}: {done}/{total}")

    return report
