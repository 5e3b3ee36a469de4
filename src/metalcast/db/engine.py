"""The database engine: SQLite (WAL) by default, or PostgreSQL through psycopg 3.

Only these two are supported: a ``postgresql://`` URL without a driver gets psycopg
(``postgresql+psycopg://``), any other kind of URL is refused.  A database may carry
the :class:`~metalcast.secrecy.SecretBox` its rows are sealed with
(:mod:`metalcast.db.sealing`); every connection sees it as the execution option
:data:`BOX_OPTION`.  SQLite runs with ``secure_delete`` on: deleted and overwritten
content is zeroed, so a value replaced (sealed, re-encrypted with a new key, or
deleted) leaves no copy in free pages; :meth:`Database.checkpoint` also empties the
write-ahead log.  PostgreSQL has no such switch: what it keeps of replaced rows is
described in docs/security.md, "Secrets at rest".

Errors::

    MetalcastError
    └── DatabaseError   the database cannot be opened or migrated
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from metalcast.db import tables
from metalcast.errors import MetalcastError
from metalcast.secrecy import SecretBox

_log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
#: the database kinds metalcast runs on (SQLAlchemy backend names)
BACKENDS = ("sqlite", "postgresql")
#: the PostgreSQL advisory lock migrations hold, so that processes starting together
#: on one database migrate it one after the other (any fixed number would do)
_MIGRATION_LOCK = 0x6D6574616C
#: the execution option that carries a database's SecretBox to every connection
BOX_OPTION = "metalcast_secret_box"
#: seconds a pooled PostgreSQL connection may sit idle before it is tested on checkout
PING_AFTER_IDLE = 1.0
_IDLE_SINCE = "metalcast_idle_since"


class DatabaseError(MetalcastError):
    """The database cannot be opened or migrated."""


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, a
    connection cut, no connection free in the pool, SQLite busy past its timeout):
    a condition that passes, as opposed to a wrong statement or a violated
    constraint."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError)


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _note_idle(_dbapi_conn: Any, record: Any) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # zero deleted and overwritten content: no old secret (or old-key ciphertext)
    # lingers in free pages or slack space
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def parse_url(url: str) -> sa.URL:
    """``url`` as SQLAlchemy reads it, PostgreSQL's driver made psycopg.

    Raises:
        DatabaseError: not a URL, or not of a database metalcast runs on (the message
            never repeats the URL: it may hold a password).
    """
    try:
        parsed = sa.make_url(url)
    except (sa.exc.ArgumentError, ValueError):
        raise DatabaseError(
            "database.url is not a database URL (expected sqlite:///PATH or "
            "postgresql+psycopg://USER:PASSWORD@HOST/DATABASE)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise DatabaseError(
            f"database.url: {backend} databases are not supported; use SQLite or PostgreSQL"
        )
    if parsed.drivername == "postgresql":
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        raise DatabaseError(
            f"database.url: PostgreSQL is reached through psycopg (postgresql+psycopg://), "
            f"not {parsed.get_driver_name()}"
        )
    return parsed


class Database:
    """An engine plus transaction helpers.  One per process, passed down.

    Raises (constructor):
        DatabaseError: see :func:`parse_url`.
    """

    def __init__(self, url: str, *, secret_box: SecretBox | None = None) -> None:
        parsed = parse_url(url)
        self.url = parsed.render_as_string(hide_password=False)
        self.backend = parsed.get_backend_name()
        self.is_sqlite = self.backend == "sqlite"
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 32
        else:
            kwargs["pool_size"] = 20
            kwargs["max_overflow"] = 40
        self.engine = sa.create_engine(parsed, **kwargs)
        if not self.is_sqlite:
            # a pooled connection idle for a while is tested before use (not every
            # one, as pool_pre_ping does: a round trip on every checkout was a third
            # of an API process's CPU); one broken in use invalidates the whole pool
            # (SQLAlchemy's disconnect handling), so a restarted server costs at most
            # the request that found out
            sa.event.listen(self.engine, "checkin", _note_idle)
            sa.event.listen(self.engine, "checkout", self._ping_if_idle)
        #: SQLite has one writer at a time.  This process's writers queue here and are
        #: handed the turn at once, rather than in SQLite's busy handler, which sleeps
        #: 1, 2, 5, 10 ... 100 ms between tries: under a few concurrent writers those
        #: sleeps were most of a write request's time.  Re-entrant: a transaction may
        #: be opened inside another in the same thread.
        self._writer: AbstractContextManager[Any] = nullcontext()
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self._writer = threading.RLock()
        self._secret_box: SecretBox | None = None
        if secret_box is not None:
            self.bind_secret_box(secret_box)

    def _ping_if_idle(self, dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        """Test a connection idle for :data:`PING_AFTER_IDLE` seconds or more.

        Raises:
            DisconnectionError: it is broken (the pool connects anew and retries).
        """
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            alive = self.engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # any failure of the ping: the connection is not usable
            raise sa.exc.DisconnectionError(f"stale pooled connection: {exc}") from exc
        if not alive:
            raise sa.exc.DisconnectionError("stale pooled connection")

    @property
    def secret_box(self) -> SecretBox | None:
        """The box rows are sealed with (None: secrets cannot be stored)."""
        return self._secret_box

    def bind_secret_box(self, box: SecretBox) -> None:
        """Seal every row written from now on with ``box``.

        Raises:
            DatabaseError: another box is bound already.
        """
        if self._secret_box is box:
            return
        if self._secret_box is not None:
            raise DatabaseError("This database is bound to another secret key already.")
        self._secret_box = box
        self.engine.update_execution_options(**{BOX_OPTION: box})

    def storage_version(self) -> int:
        """SQLite's ``user_version`` (what :mod:`metalcast.db.sealing` has done to the
        file).

        Raises:
            DatabaseError: the database is not SQLite (the others have no such number).
        """
        self._sqlite_only("storage_version")
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())

    def set_storage_version(self, version: int) -> None:
        """Record ``version`` as SQLite's ``user_version``.

        Raises:
            DatabaseError: the database is not SQLite.
        """
        self._sqlite_only("set_storage_version")
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")

    def vacuum(self) -> None:
        """SQLite: rebuild the file (nothing deleted lingers in free space) and empty
        the write-ahead log.

        Raises:
            DatabaseError: the database is not SQLite.
        """
        self._sqlite_only("vacuum")
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
        self.checkpoint()

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file and truncate it, so
        that no older version of a row stays in the log.  Nothing for PostgreSQL, whose
        write-ahead log is its own to recycle."""
        if not self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def _sqlite_only(self, what: str) -> None:
        if not self.is_sqlite:
            raise DatabaseError(f"{what} is for SQLite databases only, not {self.backend}")

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        """A connection inside a transaction, committed on success (SQLite: one
        transaction of this process at a time)."""
        with self._writer, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A connection for reads."""
        with self.engine.connect() as conn:
            yield conn

    def migrate(self, *, script_location: Path = MIGRATIONS) -> None:
        """Apply every Alembic migration up to the newest, and record which older
        revision's code may still run on the result (``schema_compat``).

        A database a newer metalcast migrated is left as it is when that newer
        version recorded this one's code as compatible (its revisions since are
        additive: docs/upgrades.md); refused otherwise.

        Raises:
            DatabaseError: the database is unreachable, a migration failed, or a
                newer metalcast migrated it beyond what this version can run on.
        """
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        cfg = Config()
        cfg.set_main_option("script_location", str(script_location))
        script = ScriptDirectory.from_config(cfg)
        known = {r.revision for r in script.walk_revisions()}
        try:
            with self.engine.begin() as conn:
                if not self.is_sqlite:
                    # held until this transaction ends: a second process waits here
                    # and then finds every migration applied
                    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
                current = MigrationContext.configure(conn).get_current_revision()
                if current is not None and current not in known:
                    self._check_newer(conn, current, known)
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                _record_compat(conn, script)
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseError(
                f"Cannot migrate database {self.safe_url}: {describe_error(exc)}"
            ) from exc
        except CommandError as exc:
            raise DatabaseError(f"Cannot migrate database {self.safe_url}: {exc}") from exc

    def _check_newer(self, conn: sa.Connection, current: str, known: set[str]) -> None:
        """A newer metalcast migrated the database to ``current``: return if it
        recorded a revision this version knows as still compatible, else raise."""
        oldest = None
        if sa.inspect(conn).has_table(tables.schema_compat.name):
            oldest = conn.execute(
                sa.select(tables.schema_compat.c.oldest_compatible).where(
                    tables.schema_compat.c.revision == current
                )
            ).scalar()
        if oldest is not None and oldest in known:
            _log.warning(
                "database %s is at revision %s, which a newer metalcast applied; this "
                "version still runs on it (compatible from revision %s): upgrade this "
                "process too",
                self.safe_url,
                current,
                oldest,
            )
            return
        needs = f"revision {oldest} or newer" if oldest else "that newer version"
        raise DatabaseError(
            f"Cannot use database {self.safe_url}: it was migrated by a newer metalcast "
            f"(revision {current}), and its schema needs the code of {needs}; run that "
            "version (docs/upgrades.md)."
        )

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _record_compat(conn: sa.Connection, script: ScriptDirectory) -> None:
    """Write the head revision and the oldest revision whose code may run on it
    (the head module's ``oldest_compatible``; the head itself when it has none)."""
    head = script.get_current_head()
    if head is None:
        return
    found = script.get_revision(head)
    module = found.module if found is not None else None
    oldest = str(getattr(module, "oldest_compatible", head))
    table = tables.schema_compat
    conn.execute(sa.delete(table))
    conn.execute(sa.insert(table).values(id=1, revision=head, oldest_compatible=oldest))


def describe_error(exc: sa.exc.SQLAlchemyError) -> str:
    """The database's own words for ``exc`` (without SQLAlchemy's link to its
    documentation), and what to do when a PostgreSQL login wanted a password."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    text = text.split("\n(Background on this error at:")[0].strip()
    if "no password supplied" in text or "password authentication failed" in text:
        text += (
            " (give the password in PGPASSWORD or ~/.pgpass, or in the URL of a "
            "settings file: never on a command line, which `ps` shows)"
        )
    return text
