"""The conductor service: start-up recovery, periodic threads, workers, shutdown, and
the operations the API reaches through :mod:`metalcast.rpc`.

Lifecycle::

    service = ConductorService(settings, db, registry, secret_box)
    service.start()       # register, recover, start periodics
    ...                   # serve calls
    service.stop(30)      # refuse new work, wait, park what still runs, go offline

Errors: see :mod:`metalcast.conductor.workers` (``NoFreeWorker``,
``ServiceUnavailable`` "conductor is shutting down"), :mod:`.task` (``NodeLocked``),
and the module of each operation.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from metalcast.agent_downloads import PURPOSE as DOWNLOAD_URLS
from metalcast.agent_downloads import UrlSigner
from metalcast.conductor import (
    agent,
    allocations,
    console,
    management,
    nodes,
    periodics,
    ports,
    power,
    provision,
    raid,
    recovery,
    volumes,
)
from metalcast.conductor.allocator import Allocator
from metalcast.conductor.clock import Clock, SystemClock
from metalcast.conductor.flows import ProvisionOptions
from metalcast.conductor.management import HardwareTypeSummary
from metalcast.conductor.ring import ConductorRing
from metalcast.conductor.runtime import RetryPolicy, Runtime
from metalcast.conductor.workers import WorkerPool
from metalcast.config import Settings
from metalcast.context import RequestContext
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.models import (
    Allocation,
    JSONDict,
    Node,
    Port,
    Portgroup,
    VolumeConnector,
    VolumeTarget,
)
from metalcast.drivers.registry import DriverRegistry
from metalcast.hashring import Member
from metalcast.images.cache import KEY_PURPOSE as CACHE_KEYS
from metalcast.images.cache import ImageCache
from metalcast.images.configdrive import KEY_PURPOSE as CONFIG_DRIVE_KEYS
from metalcast.images.configdrive import ConfigDriveStore
from metalcast.images.download import Fetcher, private_dir
from metalcast.reports import AgentReport
from metalcast.secrecy import SecretBox

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PeriodicIntervals:
    """Seconds between passes of each periodic task; 0 disables it.  ``None`` takes
    the value from the settings."""

    power_sync: float | None = None
    wait_timeouts: float | None = None
    heartbeat: float | None = None


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
    """One conductor: owns its workers and periodic threads, serves the API's calls."""

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
        )
        given = intervals or PeriodicIntervals()
        self.intervals = PeriodicIntervals(
            power_sync=_pick(given.power_sync, cs.sync_power_state_interval),
            wait_timeouts=_pick(given.wait_timeouts, cs.check_timeouts_interval),
            heartbeat=_pick(given.heartbeat, cs.heartbeat_interval),
        )
        self.power_sync = periodics.PowerSync(self.rt, call_timeout=cs.power_state_change_timeout)
        self.allocator = Allocator(self.rt)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started = False

    @property
    def hostname(self) -> str:
        return self.rt.hostname

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Register this conductor, recover what a previous process left, start the
        periodic threads.  Raises DatabaseError-like errors from the database."""
        cs = self.rt.settings
        with self.rt.db.begin() as conn:
            me = repo.register_conductor(
                conn,
                hostname=cs.hostname,
                conductor_group=cs.conductor_group,
                hardware_types=list(self.ring.me.hardware_types),
            )
        self.ring.reload()
        recovered = recovery.recover(self.rt)
        _log.info("conductor %s started; %d node(s) recovered", cs.hostname, recovered)
        self._stopping.clear()
        self.rt.workers.reopen()
        self.allocator.start(me.id)
        self._spawn("power-sync", self.intervals.power_sync, self.power_sync.run_once)
        self._spawn("wait-timeouts", self.intervals.wait_timeouts, self.check_wait_timeouts)
        self._spawn("heartbeat", self.intervals.heartbeat, self.heartbeat)
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

    def check_wait_timeouts(self) -> int:
        """Fail the nodes that waited too long; returns how many."""
        return periodics.check_wait_timeouts(self.rt)

    def heartbeat(self) -> None:
        """Say this conductor is alive; recover the nodes its own tasks could not
        release and the allocations a failure stopped; take over the allocations of
        dead ones."""
        periodics.heartbeat(self.rt)
        recovery.recover_lost_locks(self.rt)
        self.allocator.retry_failed()
        self.allocator.take_over_orphans()

    def is_accepting_work(self) -> bool:
        """False while the conductor shuts down."""
        return self.rt.workers.accepting

    # ------------------------------------------------------------------ nodes

    def create_node(self, values: JSONDict, *, context: RequestContext) -> Node:
        return nodes.create_node(self.rt, values, user=context.who, admin=context.is_admin)

    def update_node(
        self,
        node_id: int,
        values: JSONDict,
        *,
        context: RequestContext,
        reset_interfaces: bool = False,
    ) -> Node:
        return nodes.update_node(
            self.rt,
            node_id,
            values=values,
            user=context.who,
            reset_interfaces=reset_interfaces,
            admin=context.is_admin,
        )

    def destroy_node(self, node_id: int, *, context: RequestContext) -> None:
        nodes.destroy_node(self.rt, node_id, user=context.who)

    def change_provision_state(
        self, node_id: int, verb: str, options: ProvisionOptions, *, context: RequestContext
    ) -> None:
        options = dataclasses.replace(options, admin=context.is_admin)
        provision.change_provision_state(
            self.rt, node_id, verb=verb, options=options, user=context.who
        )

    def change_power_state(
        self, node_id: int, target: str, *, timeout: float | None, context: RequestContext
    ) -> None:
        power.change_power_state(self.rt, node_id, target=target, timeout=timeout, user=context.who)

    def set_maintenance(
        self, node_id: int, enabled: bool, *, reason: str | None, context: RequestContext
    ) -> None:
        nodes.set_maintenance(self.rt, node_id, enabled=enabled, reason=reason, user=context.who)

    def validate(
        self, node_id: int, *, context: RequestContext
    ) -> dict[str, tuple[bool | None, str | None]]:
        return management.validate(self.rt, node_id, user=context.who)

    # ------------------------------------------------------------------ management

    def get_boot_device(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        return management.get_boot_device(self.rt, node_id, user=context.who)

    def set_boot_device(
        self, node_id: int, device: str, *, persistent: bool, context: RequestContext
    ) -> None:
        management.set_boot_device(
            self.rt, node_id, device=device, persistent=persistent, user=context.who
        )

    def get_supported_boot_devices(self, node_id: int, *, context: RequestContext) -> list[str]:
        return management.get_supported_boot_devices(self.rt, node_id, user=context.who)

    def inject_nmi(self, node_id: int, *, context: RequestContext) -> None:
        management.inject_nmi(self.rt, node_id, user=context.who)

    def get_sensors_data(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        return management.get_sensors_data(self.rt, node_id, user=context.who)

    # ------------------------------------------------------------------ console, RAID

    def get_console(
        self, node_id: int, *, context: RequestContext
    ) -> tuple[bool, dict[str, Any] | None]:
        return console.get_console(self.rt, node_id, user=context.who)

    def set_console_mode(self, node_id: int, enabled: bool, *, context: RequestContext) -> None:
        console.set_console_mode(self.rt, node_id, enabled=enabled, user=context.who)

    def set_target_raid_config(
        self, node_id: int, config: JSONDict, *, context: RequestContext
    ) -> None:
        raid.set_target_raid_config(self.rt, node_id, config=config, user=context.who)

    # ------------------------------------------------------------------ traits, vifs, vendor

    def set_traits(
        self, node_id: int, traits: list[str], *, replace: bool, context: RequestContext
    ) -> None:
        nodes.set_traits(self.rt, node_id, traits=traits, replace=replace, user=context.who)

    def remove_traits(
        self, node_id: int, traits: list[str] | None, *, context: RequestContext
    ) -> None:
        nodes.remove_traits(self.rt, node_id, traits=traits, user=context.who)

    def vif_list(self, node_id: int, *, context: RequestContext) -> list[dict[str, Any]]:
        return ports.vif_list(self.rt, node_id)

    def vif_attach(self, node_id: int, vif: JSONDict, *, context: RequestContext) -> None:
        ports.vif_attach(self.rt, node_id, vif=vif, user=context.who)

    def vif_detach(self, node_id: int, vif_id: str, *, context: RequestContext) -> None:
        ports.vif_detach(self.rt, node_id, vif_id=vif_id, user=context.who)

    def vendor_methods(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        return management.vendor_methods(self.rt, node_id, user=context.who)

    def vendor_passthru(
        self, node_id: int, method: str, args: JSONDict, *, context: RequestContext
    ) -> Any:
        return management.vendor_passthru(
            self.rt, node_id, method=method, args=args, user=context.who
        )

    # ------------------------------------------------------------------ the agent

    def agent_lookup(self, node_id: int, *, context: RequestContext) -> str:
        return agent.issue_token(self.rt, node_id, user=context.who)

    def agent_heartbeat(
        self, node_id: int, report: AgentReport, *, context: RequestContext
    ) -> dict[str, Any]:
        return agent.heartbeat(self.rt, node_id, report, user=context.who)

    # ------------------------------------------------------------------ ports

    def create_port(self, values: JSONDict, *, context: RequestContext) -> Port:
        return ports.create_port(self.rt, values, user=context.who)

    def update_port(self, port_id: int, values: JSONDict, *, context: RequestContext) -> Port:
        return ports.update_port(self.rt, port_id, values=values, user=context.who)

    def destroy_port(self, port_id: int, *, context: RequestContext) -> None:
        ports.destroy_port(self.rt, port_id, user=context.who)

    def create_portgroup(self, values: JSONDict, *, context: RequestContext) -> Portgroup:
        return ports.create_portgroup(self.rt, values, user=context.who)

    def update_portgroup(
        self, portgroup_id: int, values: JSONDict, *, context: RequestContext
    ) -> Portgroup:
        return ports.update_portgroup(self.rt, portgroup_id, values=values, user=context.who)

    def destroy_portgroup(self, portgroup_id: int, *, context: RequestContext) -> None:
        ports.destroy_portgroup(self.rt, portgroup_id, user=context.who)

    # ------------------------------------------------------------------ volumes

    def create_volume_connector(
        self, values: JSONDict, *, context: RequestContext
    ) -> VolumeConnector:
        return volumes.create_connector(self.rt, values, user=context.who)

    def update_volume_connector(
        self, connector_id: int, values: JSONDict, *, context: RequestContext
    ) -> VolumeConnector:
        return volumes.update_connector(self.rt, connector_id, values=values, user=context.who)

    def destroy_volume_connector(self, connector_id: int, *, context: RequestContext) -> None:
        volumes.destroy_connector(self.rt, connector_id, user=context.who)

    def create_volume_target(self, values: JSONDict, *, context: RequestContext) -> VolumeTarget:
        return volumes.create_target(self.rt, values, user=context.who)

    def update_volume_target(
        self, target_id: int, values: JSONDict, *, context: RequestContext
    ) -> VolumeTarget:
        return volumes.update_target(self.rt, target_id, values=values, user=context.who)

    def destroy_volume_target(self, target_id: int, *, context: RequestContext) -> None:
        volumes.destroy_target(self.rt, target_id, user=context.who)

    # ------------------------------------------------------------------ allocations

    def create_allocation(
        self, values: JSONDict, *, node_id: int | None, context: RequestContext
    ) -> Allocation:
        """Store an allocation and queue it (the answer says ``allocating``), or, with
        ``node_id``, backfill it with that deployed node at once."""
        if node_id is not None:
            return allocations.backfill(self.rt, values, node_id=node_id, user=context.who)
        allocation = allocations.create(self.rt, values, conductor_id=self.allocator.conductor_id)
        self.allocator.submit(allocation.id)
        return allocation

    def destroy_allocation(self, allocation_id: int, *, context: RequestContext) -> None:
        allocations.destroy(self.rt, allocation_id, user=context.who)

    # ------------------------------------------------------------------ drivers

    def list_hardware_types(self) -> list[HardwareTypeSummary]:
        return management.list_hardware_types(self.rt)

    def driver_properties(self, hardware_type: str) -> dict[str, str]:
        return management.driver_properties(self.rt, hardware_type)

    def raid_logical_disk_properties(self, hardware_type: str) -> dict[str, str]:
        return raid.logical_disk_properties(self.rt, hardware_type)

    def driver_vendor_methods(self, hardware_type: str) -> dict[str, Any]:
        return management.driver_vendor_methods(self.rt, hardware_type)

    def driver_vendor_passthru(
        self, hardware_type: str, method: str, *, args: JSONDict, http_method: str
    ) -> Any:
        return management.driver_vendor_passthru(
            self.rt, hardware_type, method=method, http_method=http_method, args=args
        )


def _pick(given: float | None, default: float) -> float:
    return default if given is None else given
