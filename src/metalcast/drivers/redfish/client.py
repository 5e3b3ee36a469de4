"""The Redfish seam: what the interfaces ask of a Redfish service, and its connections.

:class:`RedfishClient` is a connection to one Redfish service (sushy's in
:mod:`.sushy_client`, a fake in tests); it speaks Redfish's own words ("On",
"Pxe", "Continuous") and raises
:class:`~metalcast.drivers.bmc_sessions.BmcFailure`.  :class:`RedfishSessions` is
the :class:`~metalcast.drivers.bmc_sessions.SessionPool` of them: one per
(address, system, username, TLS verification, auth type), reused across calls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from metalcast.drivers.bmc_call import BmcRef, CallPolicy, Runner, Sleep, call_with_deadline
from metalcast.drivers.bmc_sessions import SessionPool
from metalcast.drivers.redfish.info import RedfishInfo


@dataclass(frozen=True, slots=True)
class BootSettings:
    """A ComputerSystem's Boot object, as the BMC reports it."""

    target: str  # BootSourceOverrideTarget: "None", "Pxe", "Hdd", …
    enabled: str  # BootSourceOverrideEnabled: "Disabled", "Once", "Continuous"
    mode: str | None  # BootSourceOverrideMode: "UEFI", "Legacy"; None: not offered
    allowed_targets: tuple[str, ...] = ()
    allowed_modes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChassisSensor:
    """One reading of a chassis's Thermal or Power resource."""

    #: "Temperature", "Fan" or "Power" (the sections of Ironic's sensor data)
    kind: str
    #: ``<MemberId>@<chassis Id>``, as Ironic names Redfish sensors
    identity: str
    name: str
    #: degrees Celsius, RPM (or the fan's own unit), watts; None: no reading
    reading: float | None
    unit: str
    health: str | None = None


@dataclass(frozen=True, slots=True)
class Disk:
    """A drive a ComputerSystem's Storage lists."""

    name: str
    size: int
    model: str | None = None
    serial: str | None = None
    rotational: bool = False


@dataclass(frozen=True, slots=True)
class Nic:
    """An EthernetInterface of a ComputerSystem."""

    name: str
    mac: str
    speed_mbps: int | None = None


@dataclass(frozen=True, slots=True)
class SystemHardware:
    """What a ComputerSystem and the resources below it say of the machine."""

    manufacturer: str | None
    model: str | None
    serial: str | None
    uuid: str | None
    cpu_count: int | None
    cpu_model: str | None
    #: ProcessorArchitecture/InstructionSet as sushy reads it ("x86", "x86-64", …)
    cpu_arch: str | None
    memory_bytes: int | None
    disks: tuple[Disk, ...]
    nics: tuple[Nic, ...]
    #: BootSourceOverrideMode ("UEFI", "Legacy"; None: not reported)
    boot_mode: str | None


@dataclass(frozen=True, slots=True)
class IndicatorLed:
    """The IndicatorLED of the system or of one of its chassis."""

    #: "system" or "chassis"
    component: str
    #: the resource's UUID, else its Id (Ironic names indicators so)
    identity: str
    #: Redfish's value: "Lit", "Blinking", "Off", "Unknown"
    state: str


@dataclass(frozen=True, slots=True)
class VirtualMedia:
    """One virtual media device of a BMC."""

    identity: str
    media_types: tuple[str, ...]
    inserted: bool
    image: str | None

    @property
    def is_cd(self) -> bool:
        return any(kind in ("CD", "DVD") for kind in self.media_types)


@dataclass(frozen=True, slots=True)
class FirmwareItem:
    """One member of the UpdateService's FirmwareInventory."""

    #: the member's path (what SimpleUpdate's ``Targets`` names)
    path: str
    identity: str
    name: str | None
    version: str | None
    manufacturer: str | None
    #: the paths of the resources it is the firmware of (RelatedItem)
    related: tuple[str, ...] = ()
    updateable: bool = True


@dataclass(frozen=True, slots=True)
class UpdateTaskStatus:
    """What a SimpleUpdate's task monitor says of it."""

    #: the task is still running (the monitor answered 202)
    processing: bool
    #: TaskState ("New", "Running", "Completed", "Exception", …; None: not said)
    state: str | None
    percent: int | None
    #: TaskStatus ("OK", "Warning", "Critical"; None: not said)
    health: str | None
    messages: tuple[str, ...] = ()


class RedfishClient(Protocol):
    """A connection to one Redfish service.  ``system`` None: its only system.

    Every method raises BmcFailure.
    """

    def power_state(self, system: str | None) -> str | None:
        """PowerState: "On", "Off", "PoweringOn", "PoweringOff" (None: unknown)."""

    def reset(self, system: str | None, reset_type: str) -> None:
        """POST ComputerSystem.Reset with ``reset_type`` ("On", "ForceOff", …)."""

    def boot(self, system: str | None) -> BootSettings: ...

    def set_boot(
        self,
        system: str | None,
        *,
        target: str | None = None,
        enabled: str | None = None,
        mode: str | None = None,
    ) -> None:
        """PATCH the Boot object; None leaves a property as it is."""

    def secure_boot(self, system: str | None) -> bool | None:
        """SecureBootEnable of the system's SecureBoot resource (None: not reported)."""

    def set_secure_boot(self, system: str | None, enabled: bool) -> None:
        """PATCH SecureBootEnable."""

    def hardware(self, system: str | None) -> SystemHardware:
        """Processors, memory, drives (Storage, else SimpleStorage), NICs and the
        system's identity (out-of-band inspection)."""

    def bios_attributes(self, system: str | None) -> dict[str, Any]: ...

    def stage_bios_attributes(self, system: str | None, attributes: Mapping[str, Any]) -> None:
        """Set BIOS attributes, applied by the BMC at the next boot."""

    def sensors(self, system: str | None) -> list[ChassisSensor]:
        """The temperatures, fans and power supplies of the system's chassis."""

    def indicators(self, system: str | None) -> list[IndicatorLed]:
        """The IndicatorLED of the system and of its chassis (those that have one)."""

    def set_indicator(self, system: str | None, component: str, identity: str, state: str) -> None:
        """PATCH IndicatorLED (a Redfish value) of the system or chassis ``identity``."""

    def virtual_media(self, system: str | None) -> list[VirtualMedia]:
        """The system's virtual media devices (the system's own VirtualMedia, else
        its managers')."""

    def insert_media(self, system: str | None, device: str, image: str) -> None:
        """InsertMedia of virtual media ``device`` (its Id) with ``image`` (a URL)."""

    def eject_media(self, system: str | None, device: str) -> None:
        """EjectMedia of virtual media ``device`` (its Id)."""

    def firmware_inventory(self) -> list[FirmwareItem]:
        """The members of the UpdateService's FirmwareInventory."""

    def simple_update(self, image_uri: str, targets: list[str]) -> str:
        """POST UpdateService.SimpleUpdate (the BMC fetches ``image_uri`` itself);
        the task monitor's URI."""

    def update_task(self, monitor: str) -> UpdateTaskStatus:
        """The state of the update task behind ``monitor``."""

    def close(self) -> None: ...

    def abandon(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RedfishTarget:
    """One Redfish service and the credentials to use it."""

    address: str
    system: str | None
    username: str | None
    password: str | None = field(repr=False)
    verify: bool | str = True
    auth_type: str = "auto"

    @classmethod
    def from_info(cls, info: RedfishInfo) -> RedfishTarget:
        password = info.redfish_password
        return cls(
            address=info.redfish_address,
            system=info.redfish_system_id,
            username=info.redfish_username,
            password=None if password is None else password.get_secret_value(),
            verify=info.redfish_verify_ca,
            auth_type=info.redfish_auth_type.value,
        )

    @property
    def key(self) -> tuple[str, str | None, str | None, bool | str, str]:
        # one connection per system: calls are serialized per connection, and a
        # service with many systems (a chassis manager, the lab) must not let one
        # hung system hold up the others
        return (self.address, self.system, self.username, self.verify, self.auth_type)

    @property
    def ref(self) -> BmcRef:
        return BmcRef("Redfish", self.address + (self.system or ""))

    @property
    def login(self) -> tuple[object, ...]:
        return (*self.key, self.password)


Connect = Callable[[RedfishTarget], RedfishClient]


class RedfishSessions(SessionPool[RedfishTarget, RedfishClient]):
    """Redfish connections, one per (address, system, username, verification, auth type)."""

    def __init__(
        self,
        connect: Connect | None = None,
        *,
        policy: CallPolicy | None = None,
        runner: Runner = call_with_deadline,
        sleep: Sleep = time.sleep,
    ) -> None:
        """``connect`` opens a connection (sushy by default)."""
        super().__init__(
            connect or _sushy_connect,
            unreachable_hint="is redfish_address right and the BMC reachable?",
            policy=policy,
            runner=runner,
            sleep=sleep,
        )


def _sushy_connect(target: RedfishTarget) -> RedfishClient:
    from metalcast.drivers.redfish.sushy_client import connect  # sushy loads on first use

    return connect(target)
