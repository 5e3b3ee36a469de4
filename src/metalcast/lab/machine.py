"""The machines behind the virtual BMCs: what a BMC powers on and boots.

A :class:`Machine` is anything a virtual BMC can control: :class:`SimulatedMachine`
here (a record of power and boot settings, with optional latency), or
:class:`metalcast.lab.qemu.QemuMachine` (a QEMU process driven through QMP).

Each machine carries :class:`Faults`, the failures a test or an operator injects.
The BMC front-ends consult them for what happens on the wire (dropped packets,
refused logins, a BMC that hangs); machines consult ``ignore_power`` (a BMC that
accepts a power command and never carries it out).

Errors::

    MachineError    the machine cannot carry out an action (QEMU failed to start, …)
"""

from __future__ import annotations

import enum
import random
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Protocol


class MachineError(Exception):
    """The machine could not carry out an action."""


class Power(enum.StrEnum):
    ON = "on"
    OFF = "off"


class PowerAction(enum.StrEnum):
    """What a BMC may ask of the machine it manages."""

    ON = "on"
    OFF = "off"  # hard power off
    SHUTDOWN = "shutdown"  # ACPI power button: the OS shuts down
    RESET = "reset"  # warm reset
    CYCLE = "cycle"  # off, then on
    NMI = "nmi"


class BootDevice(enum.StrEnum):
    PXE = "pxe"
    DISK = "disk"
    CDROM = "cdrom"
    BIOS = "bios"


class BootMode(enum.StrEnum):
    """Firmware boot mode, spelled as Ironic spells it."""

    UEFI = "uefi"
    LEGACY = "bios"


@dataclass(frozen=True, slots=True)
class BootOverride:
    """The BMC's boot device override; ``device`` None: the machine's own boot order."""

    device: BootDevice | None = None
    persistent: bool = False
    mode: BootMode = BootMode.UEFI


@dataclass(frozen=True, slots=True)
class Boot:
    """One boot of a machine: the device it booted from, in which mode."""

    device: BootDevice
    mode: BootMode


@dataclass(frozen=True, slots=True)
class Media:
    """What is in a machine's virtual CD drive: the image URL its BMC was given and
    the BMC's local copy of it."""

    image: str
    path: Path


@dataclass(frozen=True, slots=True)
class Sensor:
    """One sensor reading; ``kind`` is "temperature", "fan", "power" or "voltage"."""

    name: str
    kind: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Disk:
    """One disk of a machine, as its firmware and BMC describe it."""

    name: str
    size_gb: int
    serial: str


@dataclass(frozen=True, slots=True)
class Hardware:
    """What a machine consists of, as SMBIOS and its BMC tell: for inspection.

    ``nics`` are MAC addresses, the first the provisioning NIC; ``disks`` are in
    the order the firmware (and the guest kernel) sees them.
    """

    manufacturer: str = "metalcast"
    product: str = "lab machine"
    serial: str = ""
    cpus: int = 1
    memory_mb: int = 1024
    disks: tuple[Disk, ...] = ()
    nics: tuple[str, ...] = ()


DEFAULT_BIOS: Mapping[str, str] = MappingProxyType(
    {"BootMode": "Uefi", "ProcTurboMode": "Enabled", "SecureBoot": "Disabled"}
)


class Faults:
    """Injected failures, changeable at any time from any thread.

    ``drop_next`` incoming packets (IPMI) or requests (Redfish) are dropped, then a
    ``drop_rate`` fraction of the rest.  ``refuse_login`` rejects every login;
    ``hang`` swallows every request without answering; ``ignore_power`` makes power
    commands succeed without effect.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self.drop_next = 0
        self.drop_rate = 0.0
        self.refuse_login = False
        self.hang = False
        self.ignore_power = False

    def reseed(self, seed: int) -> None:
        """Make the ``drop_rate`` drops repeat from run to run."""
        with self._lock:
            self._random.seed(seed)

    def swallow(self) -> bool:
        """Whether to ignore this incoming packet or request (hang, or dropped)."""
        if self.hang:
            return True
        with self._lock:
            if self.drop_next > 0:
                self.drop_next -= 1
                return True
            return self.drop_rate > 0 and self._random.random() < self.drop_rate

    def clear(self) -> None:
        """Back to a well-behaved BMC."""
        with self._lock:
            self.drop_next = 0
            self.drop_rate = 0.0
            self.refuse_login = self.hang = self.ignore_power = False


class Machine(Protocol):
    """What a virtual BMC manages.  Implementations are thread-safe."""

    name: str
    uuid: str
    faults: Faults
    #: what the machine is made of (fixed for its life)
    hardware: Hardware
    #: the network namespace its NICs are in, where its BMC fetches virtual media
    #: from (None: this process's)
    network_namespace: str | None

    def power(self) -> Power:
        """The machine's power state now."""

    def act(self, action: PowerAction) -> None:
        """Carry out ``action`` (or pretend to, with ``faults.ignore_power``).

        Raises:
            MachineError: the machine cannot do it.
        """

    def boot_override(self) -> BootOverride:
        """The boot override the next boot will honour."""

    def set_boot_override(self, override: BootOverride) -> None:
        """Set the boot device override (a ``device`` of None clears it)."""

    def bios_settings(self) -> dict[str, str]:
        """Current BIOS settings."""

    def stage_bios_settings(self, settings: Mapping[str, str]) -> None:
        """Settings to apply at the next boot, as real firmware does."""

    def staged_bios_settings(self) -> dict[str, str]:
        """Settings waiting for the next boot."""

    def sensors(self) -> list[Sensor]:
        """Current sensor readings."""

    def media(self) -> Media | None:
        """What is in the virtual CD drive (None: it is empty)."""

    def insert_media(self, media: Media) -> None:
        """Put ``media`` in the virtual CD drive (a running machine sees it at once).

        Raises:
            MachineError: the machine cannot do it.
        """

    def eject_media(self) -> None:
        """Empty the virtual CD drive (already empty: nothing happens).

        Raises:
            MachineError: the machine cannot do it.
        """


Clock = Callable[[], float]


@dataclass(slots=True)
class _Pending:
    power: Power
    due: float
    boots: bool


@dataclass(slots=True)
class _State:
    power: Power
    override: BootOverride = field(default_factory=BootOverride)
    bios: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_BIOS))
    staged_bios: dict[str, str] = field(default_factory=dict)
    pending: _Pending | None = None
    media: Media | None = None


class SimulatedMachine:
    """A machine that is only a record: power, boot override, BIOS settings.

    With ``power_latency`` a power change takes effect that many seconds after the
    command (by ``clock``); reads in between see the old state.  ``boots`` records
    every boot, so a test can tell what the machine booted from.
    """

    def __init__(
        self,
        name: str,
        *,
        uuid: str | None = None,
        power: Power = Power.OFF,
        power_latency: float = 0.0,
        faults: Faults | None = None,
        clock: Clock = time.monotonic,
        hardware: Hardware | None = None,
    ) -> None:
        self.name = name
        self.uuid = uuid or str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f"metalcast-lab:{name}"))
        self.faults = faults or Faults()
        self.hardware = hardware or simulated_hardware(self.uuid)
        self.power_latency = power_latency
        self.boots: list[Boot] = []
        self.nmis = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._state = _State(power=power)
        self.network_namespace: str | None = None

    def power(self) -> Power:
        with self._lock:
            self._settle()
            return self._state.power

    def act(self, action: PowerAction) -> None:
        with self._lock:
            if self.faults.ignore_power:
                return
            self._settle()
            if action is PowerAction.NMI:
                self.nmis += 1
                return
            change = _change_for(action, self._state.power)
            if change is not None:
                self._schedule(*change)

    def boot_override(self) -> BootOverride:
        with self._lock:
            self._settle()
            return self._state.override

    def set_boot_override(self, override: BootOverride) -> None:
        with self._lock:
            self._state.override = override

    def bios_settings(self) -> dict[str, str]:
        with self._lock:
            self._settle()
            return dict(self._state.bios)

    def stage_bios_settings(self, settings: Mapping[str, str]) -> None:
        with self._lock:
            self._state.staged_bios.update(settings)

    def staged_bios_settings(self) -> dict[str, str]:
        with self._lock:
            self._settle()
            return dict(self._state.staged_bios)

    def sensors(self) -> list[Sensor]:
        on = self.power() is Power.ON
        return [
            Sensor("CPU Temp", "temperature", 45.0 if on else 22.0, "degrees C"),
            Sensor("Inlet Temp", "temperature", 21.0, "degrees C"),
            Sensor("Fan 1", "fan", 6000.0 if on else 0.0, "RPM"),
            Sensor("PSU Power", "power", 180.0 if on else 8.0, "W"),
        ]

    def media(self) -> Media | None:
        with self._lock:
            return self._state.media

    def insert_media(self, media: Media) -> None:
        with self._lock:
            self._state.media = media

    def eject_media(self) -> None:
        with self._lock:
            self._state.media = None

    def _schedule(self, target: Power, boots: bool) -> None:
        pending = _Pending(target, self._clock() + self.power_latency, boots)
        self._state.pending = pending
        self._settle()

    def _settle(self) -> None:
        """Apply a pending power change whose time has come (caller holds the lock)."""
        pending = self._state.pending
        if pending is None or self._clock() < pending.due:
            return
        self._state.pending = None
        self._state.power = pending.power
        if pending.boots:
            self._boot()

    def _boot(self) -> None:
        state = self._state
        override = state.override
        self.boots.append(Boot(override.device or BootDevice.DISK, override.mode))
        if override.device is not None and not override.persistent:
            state.override = replace(override, device=None)
        state.bios.update(state.staged_bios)
        state.staged_bios.clear()


def simulated_hardware(uuid: str) -> Hardware:
    """A small server's hardware, its serial number and MACs derived from ``uuid``:
    two disks (2 and 3 GiB) and two NICs."""
    tag = uuid.replace("-", "")
    serial = f"SIM-{tag[:8].upper()}"
    return Hardware(
        serial=serial,
        disks=(Disk("disk0", 2, f"{serial}-D0"), Disk("disk1", 3, f"{serial}-D1")),
        nics=tuple(f"52:54:01:{tag[0:2]}:{tag[2:4]}:{tag[4:5]}{nic}" for nic in (0, 1)),
    )


def _change_for(action: PowerAction, now: Power) -> tuple[Power, bool] | None:
    """The power state ``action`` leads to from ``now``, and whether the machine boots."""
    if action is PowerAction.ON:
        return (Power.ON, True) if now is Power.OFF else None
    if action in (PowerAction.OFF, PowerAction.SHUTDOWN):
        return (Power.OFF, False) if now is Power.ON else None
    if action is PowerAction.RESET:
        return (Power.ON, True) if now is Power.ON else None
    return (Power.ON, True)  # CYCLE: on from either state
