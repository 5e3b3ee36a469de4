"""``metalcast api`` and ``metalcast conductor``: the server split in two kinds of
process that share one database (PostgreSQL), for several of each.

An API process serves the REST API and sends every request that needs a conductor to
the one that owns the node, over sealed JSON-RPC (:mod:`metalcast.rpc.remote`).  A
conductor process runs one conductor (its workers, periodic tasks, heartbeat and,
when ``boot.enabled``, its provisioning network's boot services while it holds that
network's lock: one conductor of ``boot.network`` at a time,
:mod:`metalcast.db.leadership`) and takes those requests at
``conductor.rpc_host``/``rpc_port`` (:mod:`metalcast.rpc.server`).  Every process
of an installation must read the same ``secret.key`` (the state directory's, or a
copy): it seals BMC passwords and the messages between them.

Shut-down on SIGTERM or SIGINT: an API process finishes the requests in flight; a
conductor answers new requests "shutting down" (the API processes send them to
another conductor of the group), gives its tasks ``graceful_shutdown_timeout``
seconds, parks the rest, goes offline and exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType

from metalcast import cpus
from metalcast.api import auth
from metalcast.api.app import create_app
from metalcast.cli import heap
from metalcast.cli.server import (
    ShutdownSignals,
    announce_first_admin,
    api_certificate,
    build_boot,
    build_conductor,
    freeze_startup_objects,
    load_secret_box,
    open_database,
    serve_api,
    server_url,
    uvicorn_config,
)
from metalcast.config import Settings
from metalcast.db.engine import Database
from metalcast.db.leadership import SessionLock
from metalcast.errors import InvalidInput
from metalcast.rpc.remote import RemoteConductorClient
from metalcast.rpc.server import MAX_BODY, RpcServer

log = logging.getLogger("metalcast.server")


def check_shared_database(settings: Settings, *, process: str) -> None:
    """Refuse SQLite: separate processes need a database they can all reach.

    Raises:
        InvalidInput: saying to use PostgreSQL or the all-in-one server.
    """
    if not settings.database_url.startswith("sqlite"):
        return
    raise InvalidInput(
        f"`metalcast {process}` shares its database with other processes, and SQLite "
        "is one process's: set METALCAST_DATABASE__URL=postgresql+psycopg://... (README "
        "'Run on PostgreSQL'), or run the all-in-one `metalcast server`."
    )


def run_api(settings: Settings) -> None:
    """Serve the API, without a conductor of its own, until SIGTERM or SIGINT.

    Raises:
        InvalidInput: the database is SQLite.
        UnsafeAuthStrategy, TlsError, DatabaseError, MetalcastError: as
            :func:`metalcast.cli.server.run_server`.
    """
    check_shared_database(settings, process="api")
    strategy = auth.check_startup(settings)
    heap_stop = threading.Event()
    heap.tame(heap_stop)
    cpus.pin(settings.cpu, server=False)
    ShutdownSignals().install()  # uvicorn raises them again once it stopped
    certificate = api_certificate(settings)
    secret_box = load_secret_box(settings)
    db = open_database(settings, secret_box)
    client = RemoteConductorClient(
        db,
        secret_box,
        heartbeat_timeout=settings.conductor.heartbeat_timeout,
        timeout=settings.conductor.rpc_timeout,
    )
    try:
        app = create_app(settings, db, conductor=client)
        if strategy == "builtin":
            announce_first_admin(db, url=settings.api.public_url or server_url(settings))
        banner = f"metalcast api listening on {server_url(settings)} (database {db.safe_url})"
        freeze_startup_objects()
        serve_api(
            uvicorn_config(app, settings, certificate),
            banner=banner,
            closing=app.state.deps.events.close,
        )
    finally:
        client.close()
        db.dispose()
        heap_stop.set()


def run_conductor(settings: Settings) -> None:
    """Run one conductor until SIGTERM or SIGINT.

    Raises:
        InvalidInput: the database is SQLite.
        TlsError, BootSetupError: the boot server's TLS set-up is unusable.
        DatabaseError, MetalcastError: start-up failed.
        OSError: the RPC address cannot be listened on.
    """
    check_shared_database(settings, process="conductor")
    heap_stop = threading.Event()
    heap.tame(heap_stop)
    cpus.pin(settings.cpu, server=False)
    stop = threading.Event()
    _stop_on_signals(stop)
    secret_box = load_secret_box(settings)
    db = open_database(settings, secret_box)
    cs = settings.conductor
    name = _claim_hostname(db, cs.hostname)
    lock = SessionLock(db, name=f"boot:{settings.boot.network}", identity=cs.hostname)
    boot = build_boot(settings, secret_box, api_tls=api_certificate(settings), leadership=lock)
    service = build_conductor(settings, db, secret_box, boot)
    rpc = RpcServer(
        service,
        secret_box,
        host=cs.rpc_host,
        port=cs.rpc_port,
        max_body=max(MAX_BODY, 4 * settings.api.max_request_bytes),
    )
    try:
        rpc.start()
        service.start(rpc_url=rpc.url)
        if boot is not None:
            boot.start()
        group = f'"{cs.conductor_group}"' if cs.conductor_group else "'' (the default)"
        sys.stdout.write(
            f"metalcast conductor {cs.hostname} (conductor group {group}) taking requests "
            f"at {rpc.url} (database {db.safe_url})\n"
        )
        sys.stdout.flush()
        freeze_startup_objects()
        while not stop.wait(cs.heartbeat_interval):
            if not name.acquire():  # its session was cut and another took the name
                log.error(
                    "another conductor named %s runs on this database: give one of them "
                    "another --hostname",
                    cs.hostname,
                )
        log.info("stopping the conductor")
    finally:
        if service.started:
            service.stop(cs.graceful_shutdown_timeout)
        rpc.stop()
        if boot is not None:
            boot.stop()
        lock.close()
        name.close()
        db.dispose()
        heap_stop.set()


def _claim_hostname(db: Database, hostname: str) -> SessionLock:
    """Hold the conductor's name for as long as this process's database session lives
    (a process killed with -9 lets it go at once).

    Raises:
        InvalidInput: a live conductor process uses the name: two conductors of one
            name would release each other's locks and answer for each other's nodes.
    """
    lock = SessionLock(db, name=f"conductor:{hostname}", identity=f"pid {os.getpid()}")
    if lock.acquire():
        return lock
    lock.close()
    db.dispose()
    raise InvalidInput(
        f"A conductor named {hostname} already runs on this database; give this one "
        "another name (--hostname or METALCAST_CONDUCTOR__HOSTNAME), or stop that one "
        "first."
    )


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
