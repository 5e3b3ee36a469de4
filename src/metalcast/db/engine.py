"""The database engine: SQLite (WAL) by default, PostgreSQL to scale out.

A database may carry the :class:`~metalcast.secrecy.SecretBox` its rows are sealed
with (:mod:`metalcast.db.sealing`); every connection sees it as the execution option
:data:`BOX_OPTION`.  SQLite runs with ``secure_delete`` on: deleted and overwritten
content is zeroed, so a value replaced (sealed, re-encrypted with a new key, or
deleted) leaves no copy in free pages; :meth:`Database.checkpoint` also empties the
write-ahead log.

Errors::

    MetalcastError
    └── DatabaseError   the database cannot be opened or migrated
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from metalcast.errors import MetalcastError
from metalcast.secrecy import SecretBox

MIGRATIONS = Path(__file__).parent / "migrations"
#: the execution option that carries a database's SecretBox to every connection
BOX_OPTION = "metalcast_secret_box"


class DatabaseError(MetalcastError):
    """The database cannot be opened or migrated."""


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


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


class Database:
    """An engine plus transaction helpers.  One per process, passed down."""

    def __init__(self, url: str, *, secret_box: SecretBox | None = None) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            kwargs["pool_size"] = 16
            kwargs["max_overflow"] = 32
        else:
            kwargs["pool_size"] = 20
            kwargs["max_overflow"] = 40
            kwargs["pool_pre_ping"] = True
        self.engine = sa.create_engine(url, **kwargs)
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
        file); 0 for other databases."""
        if not self.is_sqlite:
            return 0
        with self.engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA user_version").scalar_one())

    def set_storage_version(self, version: int) -> None:
        """Record ``version`` as SQLite's ``user_version``."""
        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"PRAGMA user_version = {int(version)}")

    def vacuum(self) -> None:
        """SQLite: rebuild the file (nothing deleted lingers in free space) and empty
        the write-ahead log."""
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
        self.checkpoint()

    def checkpoint(self) -> None:
        """SQLite: copy the write-ahead log into the database file and truncate it, so
        that no older version of a row stays in the log.  Nothing for other databases."""
        if not self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

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

    def migrate(self) -> None:
        """Apply every Alembic migration up to the newest.

        Raises:
            DatabaseError: the database is unreachable or a migration failed.
        """
        if self.is_sqlite:
            path = self.url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.SQLAlchemyError as exc:
            raise DatabaseError(f"Cannot migrate database {self.safe_url}: {exc}") from exc

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages and logs."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
