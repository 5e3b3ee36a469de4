"""The Redfish client over sushy: one ``sushy.Sushy`` root per service, systems read fresh.

Each call reads the ComputerSystem again (one GET), so a power state or boot
override is never a cached one.  :func:`classify` turns sushy's exceptions into
:class:`~metalcast.drivers.bmc_sessions.BmcFailure` by their type.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

import requests
import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc

from metalcast.drivers.bmc_sessions import BmcFailure, FailureKind
from metalcast.drivers.redfish.client import (
    BootSettings,
    ChassisSensor,
    Disk,
    FirmwareItem,
    IndicatorLed,
    Nic,
    RedfishTarget,
    SystemHardware,
    UpdateTaskStatus,
    VirtualMedia,
)

P = ParamSpec("P")
R = TypeVar("R")

#: seconds to wait for a TCP connection, and for an answer (the call's deadline
#: bounds the whole call; these make an unreachable BMC fail fast)
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0


def classify(exc: Exception) -> BmcFailure:
    """What a sushy error means for the operator."""
    text = str(exc)
    if isinstance(exc, sushy_exc.AccessError):
        return BmcFailure(
            FailureKind.AUTH,
            f"authentication rejected (check redfish_username/redfish_password): {text}",
        )
    if isinstance(exc, sushy_exc.ResourceNotFoundError):
        return BmcFailure(
            FailureKind.SETTINGS, f"no such resource (check redfish_system_id): {text}"
        )
    if isinstance(exc, sushy_exc.ServerSideError):
        return BmcFailure(FailureKind.BUSY, f"the BMC failed the request: {text}")
    if isinstance(exc, sushy_exc.ConnectionError):
        return _connection_failure(exc)
    if isinstance(exc, sushy_exc.InvalidParameterValueError | sushy_exc.MissingActionError):
        return BmcFailure(FailureKind.REJECTED, f"the BMC does not offer this: {text}")
    if isinstance(exc, sushy_exc.UnknownDefaultError):
        return BmcFailure(
            FailureKind.SETTINGS,
            f"the service has several systems; set redfish_system_id: {text}",
        )
    return BmcFailure(FailureKind.REJECTED, f"the BMC refused the request: {text}")


def _connection_failure(exc: Exception) -> BmcFailure:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, requests.exceptions.SSLError) or "SSL" in type(cause).__name__:
        return BmcFailure(
            FailureKind.SETTINGS,
            f"TLS failed (does the BMC speak https? set redfish_verify_ca to a CA "
            f"bundle, or to false): {exc}",
        )
    return BmcFailure(FailureKind.NO_ANSWER, f"cannot reach the BMC: {exc}")


def _translated(method: Callable[P, R]) -> Callable[P, R]:
    """Turn whatever sushy raises into BmcFailure."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except BmcFailure:
            raise
        except sushy_exc.SushyError as exc:
            raise classify(exc) from exc
        except Exception as exc:
            # The library boundary: malformed documents, requests' own errors.
            raise BmcFailure(FailureKind.CLIENT, f"the Redfish client failed: {exc!r}") from exc

    return wrapper


def _auth(target: RedfishTarget) -> Any:
    kinds = {
        "basic": sushy_auth.BasicAuth,
        "session": sushy_auth.SessionAuth,
        "auto": sushy_auth.SessionOrBasicAuth,
    }
    return kinds[target.auth_type](username=target.username, password=target.password)


class _Root(sushy.Sushy):  # type: ignore[misc]
    """sushy's root without the logout in ``__del__``.

    sushy ends its Redfish session when the root is garbage-collected: a blocking
    HTTP call from whatever thread the collector happens to run in (an event loop's,
    the lab's own Redfish server's), to a BMC that may be the one that hung.  Sessions
    end in :meth:`SushyClient.close`; an abandoned one is left to expire on the BMC.
    """

    def __del__(self) -> None:
        self._auth = None


@_translated
def connect(target: RedfishTarget) -> SushyClient:
    """Open ``target``'s service and log in.  Raises BmcFailure."""
    root = _Root(
        target.address,
        auth=_auth(target),
        verify=target.verify,
        server_side_retries=1,
        server_side_retries_delay=0.5,
        read_timeout=READ_TIMEOUT,
        connect_timeout=CONNECT_TIMEOUT,
    )
    return SushyClient(root)


def _disks(system: Any) -> tuple[Disk, ...]:
    """The drives of the system's Storage, else the devices of its SimpleStorage."""
    try:
        storages = system.storage.get_members()
    except sushy_exc.MissingAttributeError:
        storages = []
    found = [
        Disk(
            name=str(d.name or d.identity),
            size=int(d.capacity_bytes),
            model=d.model,
            serial=d.serial_number,
            rotational=str(getattr(d.media_type, "value", d.media_type)) == "HDD",
        )
        for storage in storages
        for d in storage.drives
        if d.capacity_bytes
    ]
    if found:
        return tuple(found)
    try:
        simple = system.simple_storage.get_members()
    except sushy_exc.MissingAttributeError:
        return ()
    return tuple(
        Disk(name=str(device.name), size=int(device.capacity_bytes))
        for controller in simple
        for device in controller.devices
        if device.capacity_bytes
    )


class SushyClient:
    """A :class:`~metalcast.drivers.redfish.client.RedfishClient` over one sushy root."""

    def __init__(self, root: Any) -> None:
        self._root = root

    def _system(self, system: str | None) -> Any:
        return self._root.get_system(system)

    @_translated
    def power_state(self, system: str | None) -> str | None:
        state = self._system(system).power_state
        return None if state is None else str(state.value)

    @_translated
    def reset(self, system: str | None, reset_type: str) -> None:
        self._system(system).reset_system(sushy.ResetType(reset_type))

    @_translated
    def boot(self, system: str | None) -> BootSettings:
        boot = self._system(system).json.get("Boot") or {}
        return BootSettings(
            target=str(boot.get("BootSourceOverrideTarget") or "None"),
            enabled=str(boot.get("BootSourceOverrideEnabled") or "Disabled"),
            mode=boot.get("BootSourceOverrideMode"),
            allowed_targets=tuple(boot.get("BootSourceOverrideTarget@Redfish.AllowableValues", ())),
            allowed_modes=tuple(boot.get("BootSourceOverrideMode@Redfish.AllowableValues", ())),
        )

    @_translated
    def set_boot(
        self,
        system: str | None,
        *,
        target: str | None = None,
        enabled: str | None = None,
        mode: str | None = None,
    ) -> None:
        self._system(system).set_system_boot_options(
            target=None if target is None else sushy.BootSource(target),
            enabled=None if enabled is None else sushy.BootSourceOverrideEnabled(enabled),
            mode=None if mode is None else sushy.BootSourceOverrideMode(mode),
        )

    def _leds(self, system: str | None) -> list[tuple[str, str, Any]]:
        """(component, identity, resource) of the system and its chassis."""
        owner = self._system(system)
        found = [("system", str(owner.uuid or owner.identity), owner)]
        with contextlib.suppress(sushy_exc.MissingAttributeError):
            found += [("chassis", str(c.uuid or c.identity), c) for c in owner.chassis]
        return found

    @_translated
    def indicators(self, system: str | None) -> list[IndicatorLed]:
        return [
            IndicatorLed(component, identity, str(resource.indicator_led.value))
            for component, identity, resource in self._leds(system)
            if resource.indicator_led is not None
        ]

    @_translated
    def set_indicator(self, system: str | None, component: str, identity: str, state: str) -> None:
        for kind, name, resource in self._leds(system):
            if (kind, name) == (component, identity):
                resource.set_indicator_led(sushy.IndicatorLED(state))
                return
        raise sushy_exc.ResourceNotFoundError(resource=f"{component} {identity}")

    def _media_resources(self, system: str | None) -> list[Any]:
        """The VirtualMedia resources of the system, else of its managers."""
        owner = self._system(system)
        with contextlib.suppress(sushy_exc.MissingAttributeError):
            return list(owner.virtual_media.get_members())
        found: list[Any] = []
        with contextlib.suppress(sushy_exc.MissingAttributeError):
            for manager in owner.managers:
                with contextlib.suppress(sushy_exc.MissingAttributeError):
                    found += list(manager.virtual_media.get_members())
        return found

    def _media(self, system: str | None, device: str) -> Any:
        for media in self._media_resources(system):
            if media.identity == device:
                return media
        raise sushy_exc.ResourceNotFoundError(resource=f"VirtualMedia {device}")

    @_translated
    def virtual_media(self, system: str | None) -> list[VirtualMedia]:
        return [
            VirtualMedia(
                identity=str(media.identity),
                media_types=tuple(str(kind.value) for kind in media.media_types or ()),
                inserted=bool(media.inserted),
                image=media.image or None,
            )
            for media in self._media_resources(system)
        ]

    @_translated
    def insert_media(self, system: str | None, device: str, image: str) -> None:
        self._media(system, device).insert_media(image, inserted=True, write_protected=True)

    @_translated
    def eject_media(self, system: str | None, device: str) -> None:
        self._media(system, device).eject_media()

    @_translated
    def secure_boot(self, system: str | None) -> bool | None:
        enabled = self._system(system).secure_boot.enabled
        return None if enabled is None else bool(enabled)

    @_translated
    def set_secure_boot(self, system: str | None, enabled: bool) -> None:
        self._system(system).secure_boot.set_enabled(enabled)

    @_translated
    def hardware(self, system: str | None) -> SystemHardware:
        sys = self._system(system)
        processors = sys.processors
        count, arch = processors.summary
        members = processors.get_members()
        memory = sys.memory_summary
        size_gib = getattr(memory, "size_gib", None) if memory is not None else None
        boot = sys.json.get("Boot") or {}
        return SystemHardware(
            manufacturer=sys.manufacturer,
            model=sys.model,
            serial=sys.serial_number,
            uuid=sys.uuid,
            cpu_count=count or None,
            cpu_model=members[0].model if members else None,
            cpu_arch=None if arch is None else str(getattr(arch, "value", arch)),
            memory_bytes=None if size_gib is None else int(float(size_gib) * 1024**3),
            disks=_disks(sys),
            nics=tuple(
                Nic(name=str(n.identity), mac=str(n.mac_address).lower(), speed_mbps=n.speed_mbps)
                for n in sys.ethernet_interfaces.get_members()
                if n.mac_address
            ),
            boot_mode=boot.get("BootSourceOverrideMode"),
        )

    @_translated
    def bios_attributes(self, system: str | None) -> dict[str, Any]:
        return dict(self._system(system).bios.attributes or {})

    @_translated
    def stage_bios_attributes(self, system: str | None, attributes: Mapping[str, Any]) -> None:
        self._system(system).bios.set_attributes(dict(attributes))

    @_translated
    def sensors(self, system: str | None) -> list[ChassisSensor]:
        found: list[ChassisSensor] = []
        for chassis in self._system(system).chassis:
            found += _thermal(chassis) + _power(chassis)
        return found

    @_translated
    def firmware_inventory(self) -> list[FirmwareItem]:
        members = self._root.get_update_service().firmware_inventory.get_members()
        return [
            FirmwareItem(
                path=str(m.path),
                identity=str(m.identity),
                name=m.name,
                version=None if m.version is None else str(m.version),
                manufacturer=m.manufacturer,
                related=tuple(
                    str(r.get("@odata.id"))
                    for r in (m.related_item or ())
                    if isinstance(r, dict) and r.get("@odata.id")
                ),
                updateable=m.updateable is not False,
            )
            for m in members
        ]

    @_translated
    def simple_update(self, image_uri: str, targets: list[str]) -> str:
        monitor = self._root.get_update_service().simple_update(image_uri, targets=targets)
        return str(monitor.task_monitor_uri)

    @_translated
    def update_task(self, monitor: str) -> UpdateTaskStatus:
        watched = self._root.get_task_monitor(monitor)
        task = watched.task
        if task is not None:
            return _task_status(task, processing=bool(watched.is_processing))
        if watched.is_processing:  # a monitor that shows no task while it runs
            return UpdateTaskStatus(processing=True, state=None, percent=None, health=None)
        # over: the monitor answers with the task, or with the operation's own result
        response = watched.response
        body = response.json() if response is not None and response.content else {}
        if isinstance(body, dict) and body.get("Id") and "TaskState" in body:
            return _task_status(watched.get_task(), processing=False)
        return UpdateTaskStatus(processing=False, state=None, percent=None, health=None)

    @_translated
    def close(self) -> None:
        auth, self._root._auth = self._root._auth, None
        if auth is not None:
            auth.close()  # ends the Redfish session, if one was opened
        self._root._conn.close()

    def abandon(self) -> None:
        # No session DELETE when sushy's root is collected: the BMC may hang.
        self._root._auth = None
        with contextlib.suppress(Exception):
            self._root._conn.close()


def _task_status(task: Any, *, processing: bool) -> UpdateTaskStatus:
    state, health = task.task_state, task.task_status
    return UpdateTaskStatus(
        processing=processing,
        state=None if state is None else str(getattr(state, "value", state)),
        percent=task.percent_complete,
        health=None if health is None else str(getattr(health, "value", health)),
        messages=tuple(str(m.message) for m in task.messages or () if m.message),
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _health(sensor: Any) -> str | None:
    status = getattr(sensor, "status", None)
    health = getattr(status, "health", None)
    return None if health is None else str(getattr(health, "value", health))


def _thermal(chassis: Any) -> list[ChassisSensor]:
    """A chassis's temperatures and fans; none when it has no Thermal resource."""
    try:
        thermal = chassis.thermal
    except sushy_exc.MissingAttributeError:
        return []
    where = chassis.identity
    found = [
        ChassisSensor(
            "Temperature",
            f"{t.identity}@{where}",
            str(t.name or t.identity),
            _number(t.reading_celsius),
            "C",
            _health(t),
        )
        for t in thermal.temperatures
    ]
    for fan in thermal.fans:
        unit = getattr(fan.reading_units, "value", fan.reading_units) or "RPM"
        found.append(
            ChassisSensor(
                "Fan",
                f"{fan.identity}@{where}",
                str(fan.name or fan.identity),
                _number(fan.reading),
                str(unit),
                _health(fan),
            )
        )
    return found


def _power(chassis: Any) -> list[ChassisSensor]:
    """A chassis's power supplies' output; none when it has no Power resource."""
    try:
        supplies = chassis.power.power_supplies
    except sushy_exc.MissingAttributeError:
        return []
    where = chassis.identity
    return [
        ChassisSensor(
            "Power",
            f"{p.identity}@{where}",
            str(p.name or p.identity),
            _number(p.last_power_output_watts),
            "W",
            _health(p),
        )
        for p in supplies
    ]
