"""One process at a time among those of one PostgreSQL database: a session advisory
lock, held on a connection of its own.

A :class:`SessionLock` named ``boot:<network>`` decides which conductor runs the
boot services of a provisioning network (:class:`metalcast.boot.supervisor.Leadership`);
one named ``conductor:<hostname>`` keeps two live conductor processes from taking
the same name (``metalcast conductor``).
The lock lives as long as the holder's database session: when the process dies,
even by SIGKILL, its connection closes and PostgreSQL releases the lock at once, so
the next process to try gets it.  A connection cut (a database restart, a partition
that TCP keepalives notice) also ends it; the holder finds out at its next
:meth:`SessionLock.acquire`, which then reports that it does not lead any more.

The connection carries ``application_name`` ``metalcast <name> <identity>``, so an
operator sees who leads::

    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid)
    WHERE l.locktype = 'advisory' AND a.application_name LIKE 'metalcast boot:%';
"""

from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from metalcast.db.engine import Database, describe_error

_log = logging.getLogger(__name__)

#: seconds to wait for a connection: a database out of reach must not hold up the
#: caller's loop for long
CONNECT_TIMEOUT = 5
#: TCP keepalives, so that a holder cut off from the database loses the lock within
#: about half a minute rather than the kernel's two hours
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
               "keepalives_count": 3}  # fmt: skip


def lock_key(name: str) -> int:
    """The advisory lock's 64-bit key for ``name`` (signed, as PostgreSQL's bigint)."""
    digest = hashlib.sha256(f"metalcast:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class SessionLock:
    """Lock ``name`` for this process while its connection lives.

    Raises (constructor):
        ValueError: ``db`` is SQLite, where one process is all there is.
    """

    def __init__(self, db: Database, *, name: str, identity: str) -> None:
        if db.is_sqlite:
            raise ValueError("advisory locks need PostgreSQL")
        self.name = name
        self.key = lock_key(name)
        label = f"metalcast {name} {identity}"[:63]  # PostgreSQL's NAMEDATALEN - 1
        self._engine = sa.create_engine(
            db.url,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "application_name": label,
                "connect_timeout": CONNECT_TIMEOUT,
                **_KEEPALIVES,
            },
        )
        self._conn: sa.Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        """Whether this process held the lock at the last look."""
        return self._held

    def acquire(self) -> bool:
        """Whether this process holds the lock now: tries to take it when it does not,
        checks its connection when it does.  Never raises."""
        try:
            if self._held:
                self._ping()
            else:
                self._held = self._try_lock()
        except sa.exc.SQLAlchemyError as exc:
            if self._held:
                _log.error("lost lock %s: %s", self.name, describe_error(exc))
            self._drop()
        return self._held

    def release(self) -> None:
        """Unlock and close the connection.  Never raises (closing the session is
        enough when the unlock itself fails)."""
        if self._conn is not None and self._held:
            try:
                self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self.key)))
            except sa.exc.SQLAlchemyError as exc:
                _log.warning("unlocking %s: %s", self.name, describe_error(exc))
        self._drop()

    def close(self) -> None:
        """:meth:`release`, and dispose of the engine."""
        self.release()
        self._engine.dispose()

    def _connection(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _try_lock(self) -> bool:
        got = self._connection().execute(sa.select(sa.func.pg_try_advisory_lock(self.key)))
        return bool(got.scalar())

    def _ping(self) -> None:
        self._connection().execute(sa.select(1))

    def _drop(self) -> None:
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sa.exc.SQLAlchemyError:
                conn.invalidate()
