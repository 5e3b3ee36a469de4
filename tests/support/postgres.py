"""A throwaway PostgreSQL cluster for the tests: Debian's ``initdb`` and ``pg_ctl``.

:class:`Cluster` makes a cluster in a new temporary directory, listening on
127.0.0.1 at a free port and on a unix socket in that directory, and removes it all
when stopped.  :meth:`Cluster.stop_server` and :meth:`Cluster.start_server` stop and
start its server in between, keeping its databases (a restart under load).
``initdb`` refuses to run as root: as root the cluster belongs to the ``postgres``
system user (made by Debian's ``postgresql`` package) and its commands run through
``runuser``.  The superuser connects over the unix socket without a password
(trust, local only); TCP connections need a password (scram-sha-256), and the tests
reach the cluster as role :data:`ROLE` with :data:`PASSWORD`, so every URL they hand
to metalcast holds a password that must never be printed.

``scripts/install --test`` installs the ``postgresql`` package.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from server_process import free_port

ROLE = "metalcast"
#: distinctive, so that a search of logs and output for it means something
PASSWORD = "Pg-Role-Pass-5e8d1c"
SYSTEM_USER = "postgres"
_DEBIAN_BINARIES = Path("/usr/lib/postgresql")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (``scripts/install --test`` installs them)."""


def binaries() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``.

    Raises:
        PostgresUnavailable: there is none.
    """
    found = sorted(
        (p for p in _DEBIAN_BINARIES.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresUnavailable(
            f"no initdb under {_DEBIAN_BINARIES}/<version>/bin: install Debian's postgresql "
            "package (scripts/install --test)"
        )
    return found[-1]


@dataclass
class Cluster:
    """A running throwaway cluster; :meth:`stop` removes every trace of it."""

    root: Path
    port: int
    bin_dir: Path
    _databases: list[str] = field(default_factory=list)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @classmethod
    def start(cls) -> Cluster:
        """initdb and start a cluster in a new temporary directory.

        Raises:
            PostgresUnavailable: no server binaries.
            subprocess.CalledProcessError: initdb or pg_ctl failed (the directory is
                removed).
        """
        bin_dir = binaries()
        root = Path(tempfile.mkdtemp(prefix="metalcast-pg-"))
        cluster = cls(root=root, port=free_port(), bin_dir=bin_dir)
        try:
            cluster._initdb()
            cluster.start_server()
            cluster._create_role()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def start_server(self) -> None:
        """Start the cluster's server (again, after :meth:`stop_server`) and wait until
        it accepts connections."""
        self._pg_ctl("start", "-w", "-t", "60", "-l", str(self.root / "server.log"), "-o",
                     self._options())  # fmt: skip

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server, keeping the cluster: ``fast`` (pg_ctl's ``-m fast``) ends
        every session at once and shuts down cleanly, ``immediate`` is a crash."""
        self._pg_ctl("stop", "-m", mode, "-w", "-t", "60")

    def _as_owner(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", SYSTEM_USER, "--", *args]
        return list(args)

    def _run(self, *args: str) -> None:
        subprocess.run(self._as_owner(*args), check=True, capture_output=True, cwd=self.root)

    def _initdb(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
            "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def _options(self) -> str:
        # durability is worth nothing in a cluster that is deleted after the run;
        # connections: two servers' pools with room to spare
        return (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args)

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection over the unix socket, in autocommit mode."""
        return psycopg.connect(
            host=str(self.root), port=self.port, user="postgres", dbname="postgres",
            autocommit=True,
        )  # fmt: skip

    def _create_role(self) -> None:
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(PASSWORD)
                )
            )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` for :data:`ROLE`, over TCP, password
        included."""
        return f"postgresql+psycopg://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database owned by :data:`ROLE`; its name."""
        name = f"mc_{uuid.uuid4().hex[:12]}"
        with self.admin() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(ROLE)
                )
            )
        self._databases.append(name)
        return name

    def drop_database(self, name: str) -> None:
        """Drop ``name``, closing whatever connections are still open to it."""
        with self.admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))  # fmt: skip

    def dump(self, name: str) -> str:
        """``pg_dump`` of database ``name``: every row as PostgreSQL stores it."""
        result = subprocess.run(
            self._as_owner(
                str(self.bin_dir / "pg_dump"), "-h", str(self.root), "-p", str(self.port),
                "-U", "postgres", "--data-only", name,
            ),
            check=True, capture_output=True, text=True, cwd=self.root,
        )  # fmt: skip
        return result.stdout

    def stop(self) -> None:
        """Stop the server (immediately: nothing in it is kept) and remove the
        directory."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
