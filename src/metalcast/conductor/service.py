"""The conductor service: start-up recovery, periodic threads, workers, shutdown, and
the one entry point, :meth:`ConductorService.execute`, that runs the requests of
:mod:`metalcast.calls` the API sends through :mod:`metalcast.rpc`.

Lifecycle::

    service = ConductorService(settings, db, registry, secret_box)
    service.start()       # register, recover, start periodics (takeover included)
    service.execute(ChangePowerState(node_id, "power on"), context=ctx)
    service.stop(30)      # refuse new work, wait, park what still runs, go offline

Errors: see :mod:`metalcast.conductor.workers` (``NoFreeWorker``,
``ServiceUnavailable`` "conductor is shutting down"), :mod:`.task` (``NodeLocked``),
and the module of each operation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar, cast

from metalcast.agent_downloads import PURPOSE as DOWNLOAD_URLS
from metalcast.agent_downloads import UrlSigner
from metalcast.calls import Call
from metalcast.conductor import console, discovery, periodics, recovery, sensors, takeover
from metalcast.conductor.allocator import Allocator
from metalcast.conductor.clock import Clock, SystemClock
from metalcast.conductor.handlers import HANDLERS
from metalcast.conductor.ring import ConductorRing
from metalcast.conductor.runtime import RetryPolicy, Runtime
from metalcast.conductor.webhooks import WebhookSender
from metalcast.conductor.workers import WorkerPool
from metalcast.config import Settings
from metalcast.context import RequestContext
from metalcast.db import events
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.rows import utcnow
from metalcast.drivers.registry import DriverRegistry
from metalcast.hashring import Member
from metalcast.images.cache import KEY_PURPOSE as CACHE_KEYS
from metalcast.images.cache import ImageCache
from metalcast.images.configdrive import KEY_PURPOSE as CONFIG_DRIVE_KEYS
from metalcast.images.configdrive import ConfigDriveStore
from metalcast.images.download import Fetcher, private_dir
from metalcast.secrecy import SecretBox

_log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PeriodicIntervals:
    """Seconds between passes of each periodic task; 0 disables it.  ``None`` takes
    the value from the settings."""

    power_sync: float | None = None
    wait_timeouts: float | None = None
    heartbeat: float | None = None
    #: the takeover check (:mod:`.takeover`); by default a quarter of the heartbeat's
    takeover: float | None = None
    #: the sensor collection (:mod:`.sensors`); by default ``sensors.interval``, or 0
    #: when ``sensors.enabled`` is off
    sensors: float | None = None


def _images(settings: Settings, secret_box: SecretBox) -> dict[str, Any]:
    """The image cache, the config drives and the URL signer of agent downloads, in
    what the boot HTTP server serves at /images/ (:attr:`Settings.images_dir`).

    Raises:
        ImageProcessingError: the directories cannot be made.
    """
    root = settings.images_dir
    private_dir(root)
    fetcher = Fetcher(
        verify=settings.images.verify_tls,
        timeout=settings.images.download_timeout,
        file_roots=settings.images.file_roots,
        private=settings.private_paths,
        allowed_internal=settings.images.allowed_internal_networks,
    )
    cache = ImageCache(
        root / "cache",
        settings.images.cache_max_bytes,
        secret=secret_box.derive_key(CACHE_KEYS),
        fetcher=fetcher,
    )
    drives = ConfigDriveStore(
        root / "configdrive",
        secret=secret_box.derive_key(CONFIG_DRIVE_KEYS),
        max_bytes=settings.images.configdrive_max_bytes,
    )
    private_dir(drives.root)
    boot = settings.boot_services  # its TLS defaults to the API's
    return {
        "images": cache,
        "configdrives": drives,
        "signer": UrlSigner(secret_box.derive_key(DOWNLOAD_URLS)),
        # the agent's API URL is the boot server unless node_api_url sends it elsewhere;
        # then downloads still come from the boot server (its HTTPS port with TLS)
        "download_base": "" if boot.node_api_url is None else boot.agent_url,
        "agent_url_ttl": settings.images.agent_url_ttl,
    }


class ConductorService:
    """One conductor: owns its workers and periodic threads, executes the API's
    requests."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: DriverRegistry,
        secret_box: SecretBox,
        *,
        clock: Clock | None = None,
        intervals: PeriodicIntervals | None = None,
        retry: RetryPolicy | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        cs = settings.conductor
        self.settings = settings
        db.bind_secret_box(secret_box)  # whatever this conductor writes is sealed with it
        self.rt = Runtime(
            settings=cs,
            db=db,
            registry=registry,
            secret_box=secret_box,
            clock=clock or SystemClock(),
            workers=WorkerPool(cs.workers_pool_size),
            retry=retry or RetryPolicy(),
            **_images(settings, secret_box),
        )
        self.ring = self.rt.ring = ConductorRing(
            db,
            me=Member(
                cs.hostname,
                cs.conductor_group,
                tuple(hw.name for hw in registry.hardware_types()),
            ),
            timeout=cs.heartbeat_timeout,
            refresh=cs.heartbeat_interval,
            monotonic=monotonic,
        )
        self.health = takeover.Health(timeout=cs.heartbeat_timeout, monotonic=monotonic)
        self.takeover = takeover.Takeover(self.rt, self.ring, self.health)
        given = intervals or PeriodicIntervals()
        beat = _pick(given.heartbeat, cs.heartbeat_interval)
        self.intervals = PeriodicIntervals(
            power_sync=_pick(given.power_sync, cs.sync_power_state_interval),
            wait_timeouts=_pick(given.wait_timeouts, cs.check_timeouts_interval),
            heartbeat=beat,
            takeover=_pick(given.takeover, beat / takeover.CHECKS_PER_HEARTBEAT),
            sensors=_pick(
                given.sensors, settings.sensors.interval if settings.sensors.enabled else 0
            ),
        )
        self.power_sync = periodics.PowerSync(self.rt, call_timeout=cs.power_state_change_timeout)
        self.sensors = sensors.SensorCollector(self.rt, settings.sensors)
        self.allocator = Allocator(self.rt)
        self.discovery_limit = discovery.RateLimit(settings.discovery.max_per_minute)
        self.webhooks = WebhookSender(
            db, secret_box, settings=settings.events, hostname=cs.hostname
        )
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = False

    @property
    def hostname(self) -> str:
        return self.rt.hostname

    # ------------------------------------------------------------------ lifecycle

    def start(self, *, rpc_url: str | None = None) -> None:
        """Register this conductor (reachable at ``rpc_url`` by API processes; None
        in the all-in-one server), recover what a previous process left, start the
        periodic threads.  Raises DatabaseError-like errors from the database."""
        cs = self.rt.settings
        with self.rt.db.begin() as conn:
            me = repo.register_conductor(
                conn,
                hostname=cs.hostname,
                conductor_group=cs.conductor_group,
                hardware_types=list(self.ring.me.hardware_types),
                rpc_url=rpc_url,
            )
        self.rt.conductor_id = me.id
        self.health.beat(ok=True)  # registering wrote the first heartbeat
        self.ring.reload()
        recovered = recovery.recover(self.rt)
        _log.info("conductor %s started; %d node(s) recovered", cs.hostname, recovered)
        self._stopping.clear()
        self.rt.workers.reopen()
        self.allocator.start(me.id)
        self._spawn("power-sync", self.intervals.power_sync, self.power_sync.run_once)
        self._spawn("wait-timeouts", self.intervals.wait_timeouts, self.check_wait_timeouts)
        self._spawn("heartbeat", self.intervals.heartbeat, self.beat)
        self._spawn("catch-up", self.intervals.heartbeat, self.catch_up)
        self._spawn("takeover", self.intervals.takeover, self.take_over)
        self._spawn("sensors", self.intervals.sensors, self.collect_sensors)
        self._spawn("consoles", self.intervals.heartbeat, self.reopen_consoles)
        self._spawn("prune-events", self.settings.events.prune_interval, self.prune_events)
        self._spawn("webhooks", self.settings.events.webhook_interval, self.webhooks.run_once)
        self.started = True

    def stop(self, timeout: float | None = None) -> bool:
        """Stop taking new work, wait up to ``timeout`` seconds (default
        ``graceful_shutdown_timeout``) for running tasks, park those still running
        (their lock and work state stay for the next start's recovery), and mark the
        conductor offline.  Returns True when every task finished."""
        limit = self.rt.settings.graceful_shutdown_timeout if timeout is None else timeout
        self.rt.workers.close()
        self._stopping.set()
        finished = self.rt.workers.wait_idle(limit)
        if not finished:
            self.rt.parked.set()
            _log.warning("%d task(s) still running: left parked", self.rt.workers.busy)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self.allocator.stop()
        self.power_sync.close()
        self.sensors.close()
        self.health.reset()
        with self.rt.db.begin() as conn:
            repo.unregister_conductor(conn, self.rt.hostname)
        self.started = False
        return finished

    def _spawn(self, name: str, interval: float | None, func: Callable[[], Any]) -> None:
        if not interval:
            return

        def loop() -> None:
            while not self._stopping.wait(interval):
                try:
                    func()
                except Exception:  # boundary: a periodic task must survive a bad pass
                    _log.exception("periodic %s failed", name)

        thread = threading.Thread(target=loop, name=f"periodic-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    # ------------------------------------------------------------------ periodics

    def sync_power_states(self) -> dict[str, int]:
        """One power-state sync pass (what the periodic thread runs)."""
        return self.power_sync.run_once()

    def collect_sensors(self) -> dict[str, int]:
        """One pass of the sensor collection (what the periodic thread runs)."""
        return self.sensors.run_once()

    def reopen_consoles(self) -> int:
        """Open the enabled consoles of this conductor's nodes that are not open here
        (after a restart or a takeover); returns how many."""
        return console.reopen_consoles(self.rt)

    def check_wait_timeouts(self) -> int:
        """Fail the nodes that waited too long; returns how many."""
        return periodics.check_wait_timeouts(self.rt)

    def prune_events(self) -> int:
        """Drop the node events past ``events.retention_seconds`` or beyond the
        newest ``events.keep_events``; returns how many went (every conductor may
        run it: deleting what another already deleted is nothing)."""
        es = self.settings.events
        before = utcnow() - timedelta(seconds=es.retention_seconds)
        with self.rt.db.begin() as conn:
            gone = events.prune(conn, before=before, keep=es.keep_events)
        self.webhooks.prune()
        return gone

    def heartbeat(self) -> None:
        """:meth:`beat`, then :meth:`catch_up` (the periodic threads run them apart).

        Raises:
            DBAPIError-like errors: as :meth:`beat` and :meth:`catch_up`.
        """
        self.beat()
        self.catch_up()

    def beat(self) -> None:
        """Say this conductor is alive, and nothing else: its own thread, so that no
        other work delays it past a peer's ``heartbeat_timeout``.

        Raises:
            DBAPIError-like errors: the heartbeat was not written; this conductor
                declares no other dead until it has heartbeated for
                ``heartbeat_timeout`` again (:class:`.takeover.Health`).
        """
        try:
            periodics.heartbeat(self.rt)
        except Exception:
            self.health.beat(ok=False)
            raise
        self.health.beat(ok=True)

    def catch_up(self) -> None:
        """Once the last heartbeat was written: recover the nodes this conductor's own
        tasks could not release and the allocations a failure stopped; take over the
        allocations of dead ones (once :class:`.takeover.Health` trusts this conductor
        to judge, as for their nodes).

        Raises:
            DBAPIError-like errors: the database went away again (the next pass
                retries).
        """
        if not self.health.reaching():
            return
        recovery.recover_lost_locks(self.rt)
        self.allocator.retry_failed()
        if self.health.trusted():
            self.allocator.take_over_orphans()

    def take_over(self) -> takeover.Pass:
        """One takeover pass (what the periodic thread runs): the nodes of dead
        conductors that the ring gives this one (:mod:`.takeover`)."""
        return self.takeover.run_once()

    def is_accepting_work(self) -> bool:
        """False while the conductor shuts down."""
        return self.rt.workers.accepting

    # ------------------------------------------------------------------ requests

    def execute(self, request: Call[T], *, context: RequestContext) -> T:
        """Do what ``request`` asks on behalf of ``context``; its result.

        Raises:
            TypeError: no handler for the request's type (a programming error).
            MetalcastError: what the request's operation raises (see
                :mod:`metalcast.calls`).
        """
        handler = HANDLERS.get(type(request))
        if handler is None:
            raise TypeError(f"the conductor has no handler for {type(request).__name__}")
        return cast(T, handler(self, request, context))


def _pick(given: float | None, default: float) -> float:
    return default if given is None else given
