"""``metalcast secrets rotate-key``: a new secrets key, every sealed value encrypted
again with it, the old key gone.

The server must be stopped: a running server holds the old key only, so it could
neither read what the rotation encrypts nor write what the new key can read.  The
command refuses while a conductor heartbeats on the database.  Each step is safe to
interrupt (:mod:`metalcast.secrecy.keyfile`): until the last one the old and the new
key are both loaded, by this command and by a server started meanwhile, and running
the command again finishes the rotation.

Errors::

    MetalcastError
    ├── ServerRunning          a conductor heartbeats on this database
    ├── KeyFileError           the key files cannot be read or written
    ├── UndecryptableSecret    a value was sealed with neither key
    └── DatabaseError          the database cannot be opened or migrated
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from metalcast.config import Settings
from metalcast.db import repository as repo
from metalcast.db import sealing
from metalcast.db.engine import Database
from metalcast.errors import MetalcastError
from metalcast.secrecy import keyfile
from metalcast.secrecy.keyfile import KEY_FILE


class ServerRunning(MetalcastError):
    """A conductor (a running ``metalcast server``) uses the database."""


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did."""

    #: rows whose sealed values were encrypted again
    rows: int
    #: True when this run finished a rotation an earlier run left unfinished
    resumed: bool


def rotate_key(settings: Settings) -> Rotation:
    """Rotate the secrets key of ``settings.state_dir`` and re-encrypt the database.

    Raises:
        ServerRunning: a conductor heartbeats on the database; nothing was changed.
        KeyFileError, UndecryptableSecret, DatabaseError: see the module's errors;
            the rotation can be run again.
    """
    path = settings.state_dir / KEY_FILE
    resumed = keyfile.next_path(path).exists()
    box = keyfile.load(path)
    db = Database(settings.database_url, secret_box=box)
    try:
        db.migrate()
        with db.read() as conn:
            _refuse_if_running(conn, timeout=settings.conductor.heartbeat_timeout)
        box = keyfile.begin_rotation(path)
        db.dispose()
        db = Database(settings.database_url, secret_box=box)
        with db.begin() as conn:
            rows = sealing.reseal(conn, box)
        # before the old key goes: every sealed value must open with the new one alone
        with db.read() as conn:
            sealing.check_readable(conn, keyfile.pending(path))
        db.checkpoint()
        keyfile.finish_rotation(path)
    finally:
        db.dispose()
    return Rotation(rows=rows, resumed=resumed)


def _refuse_if_running(conn: sa.Connection, *, timeout: float) -> None:
    refuse_if_running(
        conn,
        timeout=timeout,
        command="metalcast secrets rotate-key",
        why="A running server holds the old key only and would lose what the rotation encrypts.",
    )


def refuse_if_running(conn: sa.Connection, *, timeout: float, command: str, why: str) -> None:
    """Raise ``ServerRunning`` when a conductor heartbeated on ``conn``'s database
    less than ``timeout`` seconds ago and did not sign off; the message tells to stop
    it and run ``command`` again, because ``why``."""
    limit = repo.utcnow() - timedelta(seconds=timeout)
    for conductor in repo.list_conductors(conn):
        if conductor.online and conductor.updated_at is not None and conductor.updated_at > limit:
            raise ServerRunning(
                f"metalcast server (conductor {conductor.hostname}) is using this database: "
                f"stop it, then run `{command}` again. {why}"
            )
