"""The all-in-one ``metalcast server``: API and conductor in one process.

Start-up order: the authentication settings checked (unsafe ones refused before
anything is touched), the API's TLS files, state directory, secret key, the boot
server's TLS set-up, database (migrated, secrets stored in clear by older versions
sealed), driver registry, conductor, ASGI app; under "builtin" with no user yet, the
first administrator (its password printed once).  Shut-down order on SIGTERM or
SIGINT: uvicorn stops accepting requests and finishes the ones in flight, then the
conductor gets ``graceful_shutdown_timeout`` seconds to finish or park its work, then
the database pool closes and the process exits 0.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from metalcast import cpus
from metalcast.agent_downloads import PURPOSE as DOWNLOAD_URLS
from metalcast.agent_downloads import UrlSigner
from metalcast.api import auth
from metalcast.api.app import create_app
from metalcast.boot.service import BootServices
from metalcast.boot.supervisor import BootSupervisor, Leadership
from metalcast.cli import bootstrap, heap
from metalcast.conductor.service import ConductorService
from metalcast.config import Settings
from metalcast.db.engine import Database
from metalcast.db.sealing import seal_database
from metalcast.drivers.bmc_call import CallPolicy
from metalcast.drivers.registry import default_registry
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import SecretBox
from metalcast.secrecy.keyfile import KEY_FILE
from metalcast.tls.certificates import ServerCertificate, load_server_certificate, uvicorn_options

log = logging.getLogger("metalcast.server")

Asgi = Callable[..., Any]


def load_secret_box(settings: Settings) -> SecretBox:
    """The server's secret key (``<state_dir>/secret.key``, made on first start).

    Raises:
        OSError: the state directory is not writable.
    """
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    secret_box = SecretBox.from_file(settings.state_dir / KEY_FILE)
    if secret_box.rotating:
        log.warning(
            "a secret key rotation was interrupted: both keys are in use until "
            "`metalcast secrets rotate-key` is run again (with the server stopped)"
        )
    return secret_box


def open_database(settings: Settings, secret_box: SecretBox) -> Database:
    """The database, migrated, with the secrets older versions stored in clear sealed.

    Raises:
        DatabaseError: the database cannot be opened or migrated.
    """
    db = Database(settings.database_url, secret_box=secret_box)
    db.migrate()
    sealed = seal_database(db)
    if sealed:
        log.info("encrypted the secrets older versions stored in clear (%d rows)", sealed)
    return db


def build_conductor(
    settings: Settings, db: Database, secret_box: SecretBox, boot: BootSupervisor | None
) -> ConductorService:
    """The conductor (not started); the ``ipxe`` and ``pxe`` boot interfaces write
    node boot files through ``boot``.

    Raises:
        MetalcastError: a driver cannot be loaded.
    """
    cs = settings.conductor
    policy = CallPolicy(
        timeout=cs.bmc_call_timeout,
        attempts=cs.bmc_call_attempts,
        backoff=cs.bmc_retry_backoff,
        poll_interval=cs.bmc_poll_interval,
    )
    registry = default_registry(
        bmc_policy=policy,
        boot_files=boot,
        vmedia_files=boot,
        cleaning=settings.cleaning,
        console_log_bytes=cs.console_log_bytes,
    )
    return ConductorService(settings, db, registry=registry, secret_box=secret_box)


def build_server(
    settings: Settings,
    boot: BootSupervisor | None = None,
    *,
    secret_box: SecretBox | None = None,
) -> tuple[Starlette, ConductorService, Database]:
    """Build the app, the conductor (not started) and the migrated database; the
    ``ipxe`` and ``pxe`` boot interfaces write node boot files through ``boot``.

    The caller starts the conductor, serves the app, then stops the conductor and
    disposes of the database.

    Raises:
        DatabaseError: the database cannot be opened or migrated.
        MetalcastError: the secret key or a driver cannot be loaded.
    """
    secret_box = secret_box or load_secret_box(settings)
    db = open_database(settings, secret_box)
    service = build_conductor(settings, db, secret_box, boot)
    app = create_app(settings, db, conductor=LocalConductorClient(service))
    return app, service, db


@dataclass(slots=True)
class ShutdownSignals:
    """Remembers SIGTERM/SIGINT instead of dying of them.

    uvicorn handles the signals while it serves and raises them again once it has
    stopped; these handlers catch that repeat so that the conductor still gets its
    graceful stop and the process exits 0.
    """

    received: list[int] = field(default_factory=list)

    def install(self) -> None:
        """Handle SIGTERM and SIGINT from now on (main thread only)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)


class _Server(uvicorn.Server):
    """uvicorn's server, saying where it listens once it does."""

    def __init__(
        self, config: uvicorn.Config, *, banner: str, closing: Callable[[], None] | None
    ) -> None:
        super().__init__(config)
        self._banner = banner
        self._closing = closing

    async def shutdown(self, sockets: Any = None) -> None:
        # before uvicorn waits for the requests in flight: end the event streams,
        # which would never finish on their own
        if self._closing is not None:
            self._closing()
        reaper = asyncio.ensure_future(_drop_idle_tls(self.server_state.connections))
        try:
            await super().shutdown(sockets=sockets)
        finally:
            reaper.cancel()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            sys.stdout.write(self._banner + "\n")
            sys.stdout.flush()


async def _drop_idle_tls(connections: set[Any]) -> None:
    """Drop every TLS connection with no request in flight, until cancelled.

    uvicorn stops by closing its connections once their responses are sent, and
    closing a TLS connection politely sends TLS's close_notify and waits for the
    peer's, up to 30 s (the event loop's SSL shutdown timeout): an HTTP client
    keeping an idle connection in its pool (a CLI session, the dashboard's browser,
    the boot server's proxy) never answers, and held a SIGTERM'd server for 30 s.
    Nothing is in flight on such a connection, so dropping it loses nothing; a
    response being sent is left to finish first.
    """
    while True:
        for connection in list(connections):
            transport = getattr(connection, "transport", None)
            if transport is None or transport.get_extra_info("ssl_object") is None:
                continue
            cycle = getattr(connection, "cycle", _NOT_HTTP)  # websockets have none
            if cycle is None or getattr(cycle, "response_complete", False):
                transport.abort()
        await asyncio.sleep(0.1)


#: the ``cycle`` of a connection that is not uvicorn's HTTP protocol
_NOT_HTTP = object()


def server_url(settings: Settings, *, host: str | None = None) -> str:
    """The URL the API answers at (on ``host`` rather than the listen address)."""
    host = host or settings.api.host
    shown = f"[{host}]" if ":" in host else host
    return f"{settings.api.scheme}://{shown}:{settings.api.port}"


def local_api_url(settings: Settings) -> str:
    """The API's URL from this host: loopback when it listens on every address."""
    wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
    return server_url(settings, host=wildcard.get(settings.api.host, settings.api.host))


def api_certificate(settings: Settings) -> ServerCertificate | None:
    """The API's certificate, checked; warnings logged.

    Raises:
        TlsError: only one of the two files is set, or they are unusable.
    """
    api = settings.api
    certificate = load_server_certificate(api.tls_cert_file, api.tls_key_file, area="api")
    if certificate is not None:
        for warning in certificate.warnings(now=datetime.now(UTC)):
            log.warning("api TLS: %s", warning)
    return certificate


def run_server(settings: Settings) -> None:
    """Serve the API and run the conductor until SIGTERM or SIGINT.

    Raises:
        UnsafeAuthStrategy: the authentication settings would expose the API (checked
            before anything else, so nothing listens).
        TlsError: the API's or the boot server's certificate is unusable.
        BootSetupError: the agents would refuse the boot server's certificate.
        DatabaseError, MetalcastError: start-up failed (see :func:`build_server`).
        SystemExit: uvicorn could not listen (the conductor is stopped first).
    """
    strategy = auth.check_startup(settings)
    heap_stop = threading.Event()
    heap.tame(heap_stop)  # before any thread of the server starts
    cpus.pin(settings.cpu, server=True)  # the same: threads inherit it
    cpus.follow(heap_stop)
    signals = ShutdownSignals()
    signals.install()
    certificate = api_certificate(settings)
    secret_box = load_secret_box(settings)
    boot = build_boot(settings, secret_box, api_tls=certificate)
    app, service, db = build_server(settings, boot, secret_box=secret_box)
    if strategy == "builtin":
        announce_first_admin(db, url=settings.api.public_url or server_url(settings))
    banner = (
        f"metalcast server listening on {server_url(settings)} "
        f"(database {db.safe_url}, state dir {settings.state_dir})"
    )
    config = uvicorn_config(app, settings, certificate)
    freeze_startup_objects()
    service.start()
    if boot is not None:
        boot.start()
    try:
        if not signals.received:
            serve_api(config, banner=banner, closing=app.state.deps.events.close)
    finally:
        if boot is not None:
            log.info("stopping the boot services")
            boot.stop()
        log.info("stopping the conductor")
        service.stop(settings.conductor.graceful_shutdown_timeout)
        db.dispose()
        heap_stop.set()


def uvicorn_config(
    app: Asgi, settings: Settings, certificate: ServerCertificate | None
) -> uvicorn.Config:
    """How uvicorn serves the API app."""
    return uvicorn.Config(
        app,
        host=settings.api.host,
        port=settings.api.port,
        loop="uvloop",
        http="httptools",
        log_config=None,  # metalcast.logs configured every logger already
        access_log=False,
        lifespan="auto",
        **uvicorn_options(certificate),
        # uvicorn would believe X-Forwarded-For/-Proto from 127.0.0.1 and rewrite the
        # peer's address; the API decides whom to believe (api.trusted_proxies) and
        # must see the real peer for it
        proxy_headers=False,
    )


def serve_api(
    config: uvicorn.Config, *, banner: str, closing: Callable[[], None] | None = None
) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn handles them, then this returns);
    ``closing`` is called first when it stops (it ends the event streams)."""
    _Server(config, banner=banner, closing=closing).run()


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, settings, the rule table: 120,000 objects and
    more, keystonemiddleware's included) out of every later garbage collection.

    They live as long as the process; left in the collector's oldest generation, each
    full collection walks them all (70 ms here), in the middle of whatever request
    allocated enough to trigger it: a 2,000-node listing did.
    """
    gc.collect()
    gc.freeze()


def announce_first_admin(db: Database, *, url: str) -> None:
    """Create the first administrator if there is no user, and print its password."""
    password = bootstrap.create_first_admin(db)
    if password is None:
        return
    log.info("created the first administrator, user %s", bootstrap.FIRST_ADMIN)
    why = (
        f"metalcast: authentication is on (api.auth_strategy builtin) and there was no "
        f"user yet, so user '{bootstrap.FIRST_ADMIN}' was made a system administrator."
    )
    bootstrap.print_credentials(bootstrap.FIRST_ADMIN, password, url=url, why=why)


def build_boot(
    settings: Settings,
    secret_box: SecretBox,
    *,
    api_tls: ServerCertificate | None = None,
    leadership: Leadership | None = None,
) -> BootSupervisor | None:
    """The boot services' supervisor (not started), unless ``boot.enabled`` is off;
    ``api_tls`` is the certificate the API serves (the relay to it trusts that one).

    They start once ``boot.interface`` exists: by default the lab's bridge, which
    ``metalcast lab up`` creates; with ``leadership``, only while this process holds
    it (a conductor process among others of its network).  Their HTTP server checks
    the agents' download URLs with the key the conductor signs them with (derived
    from ``secret_box``).

    Raises:
        TlsError, BootSetupError: the boot server's TLS set-up is unusable.
    """
    if not settings.boot.enabled:
        return None
    services = BootServices(
        settings.boot_services,
        state_dir=settings.state_dir,
        api_url=local_api_url(settings),
        signer=UrlSigner(secret_box.derive_key(DOWNLOAD_URLS)),
        api_certificate=api_tls,
    )
    return BootSupervisor(services, leadership=leadership, identity=settings.conductor.hostname)
