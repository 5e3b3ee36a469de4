"""Redfish power, management and BIOS: the ``redfish`` implementations, through sushy.

All three share one :class:`~metalcast.drivers.redfish.client.RedfishSessions`
when built by :func:`metalcast.drivers.redfish.hardware.redfish_factories`.

Errors::

    MissingDriverInfo      driver_info lacks redfish_address or holds a bad value
    InvalidInput           unsupported boot device or boot mode, bad step arguments
    RetryableDriverError   no answer in time, the BMC failed the request
    FatalDriverError       credentials rejected, system not found, TLS verification
                           failed, request not offered by the BMC, power change not
                           confirmed within the timeout
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel

from metalcast.drivers.base import (
    CLEAN_OR_DEPLOY_STEP,
    BIOSInterface,
    DriverContext,
    Indicator,
    InspectInterface,
    ManagementInterface,
    PowerInterface,
    StepOutcome,
    StepResult,
    step,
)
from metalcast.drivers.bmc_call import Sleep
from metalcast.drivers.capabilities import BootMode, boot_mode_of
from metalcast.drivers.power_sequence import (
    OPERATION_NAMES,
    Confirmation,
    PowerCommand,
    carry_out,
)
from metalcast.drivers.redfish.client import (
    ChassisSensor,
    RedfishClient,
    RedfishSessions,
    RedfishTarget,
    SystemHardware,
)
from metalcast.drivers.redfish.info import RedfishInfo
from metalcast.errors import FatalDriverError, InvalidInput
from metalcast.states import PowerState, PowerTarget

T = TypeVar("T")

#: Ironic's boot device names and Redfish's BootSourceOverrideTarget values
BOOT_DEVICES: Mapping[str, str] = {
    "pxe": "Pxe",
    "disk": "Hdd",
    "cdrom": "Cd",
    "bios": "BiosSetup",
    "usb": "Usb",
    "floppy": "Floppy",
}
_DEVICE_OF = {v: k for k, v in BOOT_DEVICES.items()}
BOOT_MODES: Mapping[BootMode, str] = {BootMode.UEFI: "UEFI", BootMode.LEGACY: "Legacy"}
_MODE_OF = {v: k for k, v in BOOT_MODES.items()}
_RESET: Mapping[PowerCommand, str] = {
    PowerCommand.ON: "On",
    PowerCommand.OFF: "ForceOff",
    PowerCommand.SOFT_OFF: "GracefulShutdown",
}
#: PowerState values, as reported to the conductor (Ironic's mapping)
_REPORTED = {"On": PowerState.ON, "PoweringOff": PowerState.ON, "Off": PowerState.OFF}
_REPORTED["PoweringOn"] = PowerState.OFF


#: what a Redfish IndicatorLED can be set to, as Ironic offers it
_LED = Indicator(readonly=False, states=("blinking", "off", "on"))
#: Redfish's IndicatorLED values and Ironic's indicator states
_LED_STATE = {"Lit": "on", "Blinking": "blinking", "Off": "off", "Unknown": "unknown"}
_REDFISH_LED = {"on": "Lit", "blinking": "Blinking", "off": "Off"}


class _RedfishBase:
    info_model: ClassVar[type[BaseModel]] = RedfishInfo

    def __init__(self, sessions: RedfishSessions | None = None) -> None:
        self._sessions = sessions or RedfishSessions()

    def _call(
        self,
        ctx: DriverContext,
        operation: str,
        action: Callable[[RedfishClient, str | None], T],
        *,
        repeatable: bool = True,
    ) -> T:
        target = RedfishTarget.from_info(ctx.info(RedfishInfo))
        return self._sessions.call(
            target, operation, lambda c: action(c, target.system), repeatable=repeatable
        )


class _PowerControl:
    """One system's power over Redfish, for :func:`carry_out`.  Only "On" and "Off"
    count as reached: "PoweringOn" is not on yet."""

    def __init__(self, sessions: RedfishSessions, target: RedfishTarget, operation: str) -> None:
        self._sessions = sessions
        self._target = target
        self._operation = operation

    def read(self) -> PowerState:
        state = self._sessions.call(
            self._target,
            self._operation,
            lambda c: c.power_state(self._target.system),
            repeatable=True,
        )
        return PowerState.ON if state == "On" else PowerState.OFF

    def send(self, command: PowerCommand) -> None:
        reset_type = _RESET[command]
        self._sessions.call(
            self._target,
            self._operation,
            lambda c: c.reset(self._target.system, reset_type),
            repeatable=True,  # On, ForceOff and GracefulShutdown are idempotent
        )


class RedfishPower(_RedfishBase, PowerInterface):
    """Power through ComputerSystem.Reset; every change confirmed by reading it back."""

    name = "redfish"

    def __init__(
        self,
        sessions: RedfishSessions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(sessions)
        self._clock = clock
        self._sleep = sleep

    def get_power_state(self, ctx: DriverContext) -> PowerState:
        """The system's PowerState ("PoweringOn" reads as off).  Raises DriverError."""
        state = self._call(ctx, "get power state", lambda c, s: c.power_state(s))
        return _REPORTED.get(state or "", PowerState.ERROR)

    def set_power_state(self, ctx: DriverContext, target: PowerTarget, timeout: float) -> None:
        """Reach ``target``, each step confirmed within ``timeout`` seconds.

        Raises:
            FatalDriverError: refused, or the state was not reached in time.
            RetryableDriverError: the BMC did not answer.
        """
        bmc = RedfishTarget.from_info(ctx.info(RedfishInfo))
        control = _PowerControl(self._sessions, bmc, OPERATION_NAMES[target])
        confirm = Confirmation(
            timeout=timeout,
            poll_interval=self._sessions.policy.poll_interval,
            clock=self._clock,
            sleep=self._sleep,
        )
        carry_out(control, target, bmc=bmc.ref, confirm=confirm)

    def get_supported_power_states(self, ctx: DriverContext) -> list[PowerTarget]:
        return list(PowerTarget)


class RedfishManagement(_RedfishBase, ManagementInterface):
    """Boot override, boot mode, secure boot and NMI through the ComputerSystem."""

    name = "redfish"
    supports_boot_mode = True
    supports_secure_boot = True

    def get_supported_boot_devices(self, ctx: DriverContext) -> list[str]:
        """The devices the BMC lists as override targets.  Raises DriverError."""
        boot = self._call(ctx, "get supported boot devices", lambda c, s: c.boot(s))
        offered = boot.allowed_targets or tuple(BOOT_DEVICES.values())
        return [name for name, value in BOOT_DEVICES.items() if value in offered]

    def set_boot_device(self, ctx: DriverContext, device: str, *, persistent: bool) -> None:
        """Boot ``device`` next (or always), in the node's boot mode if the BMC has modes.

        Raises:
            InvalidInput: ``device`` is not one of :data:`BOOT_DEVICES`.
            DriverError: the BMC failed or does not offer ``device``.
        """
        if device not in BOOT_DEVICES:
            raise InvalidInput(
                f"Invalid boot device {device!r}; supported: {', '.join(BOOT_DEVICES)}"
            )
        enabled = "Continuous" if persistent else "Once"
        mode = BOOT_MODES[boot_mode_of(ctx.node)]

        def apply(client: RedfishClient, system: str | None) -> None:
            offers_mode = bool(client.boot(system).allowed_modes)
            client.set_boot(
                system,
                target=BOOT_DEVICES[device],
                enabled=enabled,
                mode=mode if offers_mode else None,
            )

        self._call(ctx, "set boot device", apply)

    def get_boot_device(self, ctx: DriverContext) -> tuple[str | None, bool | None]:
        """The boot override, or (None, None) when none is set.  Raises DriverError."""
        boot = self._call(ctx, "get boot device", lambda c, s: c.boot(s))
        if boot.enabled == "Disabled" or boot.target == "None":
            return None, None
        return _DEVICE_OF.get(boot.target, boot.target), boot.enabled == "Continuous"

    def get_supported_boot_modes(self, ctx: DriverContext) -> list[str]:
        """Boot modes the BMC offers ("uefi", "bios").  Raises DriverError."""
        boot = self._call(ctx, "get supported boot modes", lambda c, s: c.boot(s))
        return [_MODE_OF[m].value for m in boot.allowed_modes if m in _MODE_OF]

    def get_boot_mode(self, ctx: DriverContext) -> str | None:
        """The boot mode the BMC will boot in ("uefi", "bios"; None: not reported).

        Raises DriverError.
        """
        boot = self._call(ctx, "get boot mode", lambda c, s: c.boot(s))
        return None if boot.mode not in _MODE_OF else _MODE_OF[boot.mode].value

    def set_boot_mode(self, ctx: DriverContext, mode: str) -> None:
        """Boot in ``mode`` ("uefi" or "bios") from now on.

        Raises:
            InvalidInput: an unknown mode.
            DriverError: the BMC failed or does not offer the mode.
        """
        if mode not in {m.value for m in BootMode}:
            raise InvalidInput(f"Invalid boot mode {mode!r}; supported: uefi, bios")
        wanted = BOOT_MODES[BootMode(mode)]
        self._call(ctx, "set boot mode", lambda c, s: c.set_boot(s, mode=wanted))

    def get_secure_boot_state(self, ctx: DriverContext) -> bool | None:
        """SecureBootEnable of the system's SecureBoot resource.  Raises DriverError
        (also when the BMC has no such resource)."""
        return self._call(ctx, "get secure boot state", lambda c, s: c.secure_boot(s))

    def set_secure_boot_state(self, ctx: DriverContext, enabled: bool) -> None:
        """Turn secure boot on or off (applied at the next boot).  Raises DriverError."""
        self._call(ctx, "set secure boot state", lambda c, s: c.set_secure_boot(s, enabled))

    def inject_nmi(self, ctx: DriverContext) -> None:
        """Send an NMI, once (not safe to repeat).  Raises DriverError."""
        self._call(ctx, "inject nmi", lambda c, s: c.reset(s, "Nmi"), repeatable=False)

    def get_supported_indicators(self, ctx: DriverContext) -> dict[str, dict[str, Indicator]]:
        """The IndicatorLED of the system and of its chassis, named by their UUID
        (else Id) as Ironic names them; each can be lit, blink or be off.  Raises
        DriverError."""
        leds = self._call(ctx, "get indicators", lambda c, s: c.indicators(s))
        found: dict[str, dict[str, Indicator]] = {}
        for led in leds:
            found.setdefault(led.component, {})[led.identity] = _LED
        return found

    def get_indicator_state(self, ctx: DriverContext, component: str, name: str) -> str:
        """``on``, ``off``, ``blinking`` or ``unknown``.  Raises InvalidInput (no such
        indicator), DriverError."""
        leds = self._call(ctx, "get indicator state", lambda c, s: c.indicators(s))
        for led in leds:
            if (led.component, led.identity) == (component, name):
                return _LED_STATE.get(led.state, "unknown")
        raise InvalidInput(f"Node has no indicator {name}@{component}.")

    def set_indicator_state(
        self, ctx: DriverContext, component: str, name: str, state: str
    ) -> None:
        """PATCH the IndicatorLED.  Raises InvalidInput (a state it cannot be set
        to), DriverError."""
        wanted = _REDFISH_LED.get(state)
        if wanted is None:
            raise InvalidInput(
                f"Indicator {name}@{component} cannot be set {state!r}: use on, off or blinking."
            )
        self._call(
            ctx, "set indicator state", lambda c, s: c.set_indicator(s, component, name, wanted)
        )

    def get_virtual_media(self, ctx: DriverContext) -> list[dict[str, Any]]:
        """The system's virtual CDs and DVDs, as Ironic lists them.  Raises DriverError."""
        devices = self._call(ctx, "get virtual media", lambda c, s: c.virtual_media(s))
        return [
            {"media_types": list(d.media_types), "inserted": d.inserted, "image": d.image}
            for d in devices
            if d.is_cd
        ]

    def attach_virtual_media(self, ctx: DriverContext, device_type: str, image_url: str) -> None:
        """Eject the system's virtual CD, then insert ``image_url``.

        Raises:
            InvalidInput: ``device_type`` is not ``cdrom``.
            DriverError: the BMC has no virtual CD, or failed.
        """
        _check_vmedia_types((device_type,))

        def insert(client: RedfishClient, system: str | None) -> None:
            devices = [d for d in client.virtual_media(system) if d.is_cd]
            if not devices:
                raise FatalDriverError(
                    "the BMC has no virtual CD (no VirtualMedia with MediaTypes CD or DVD)",
                    operation="attach virtual media",
                )
            if devices[0].inserted:
                client.eject_media(system, devices[0].identity)
            client.insert_media(system, devices[0].identity, image_url)

        self._call(ctx, "attach virtual media", insert, repeatable=False)

    def detach_virtual_media(self, ctx: DriverContext, device_types: Sequence[str]) -> None:
        """Eject every inserted virtual CD.  Raises InvalidInput, DriverError."""
        _check_vmedia_types(device_types)

        def eject(client: RedfishClient, system: str | None) -> None:
            for device in client.virtual_media(system):
                if device.is_cd and device.inserted:
                    client.eject_media(system, device.identity)

        self._call(ctx, "detach virtual media", eject)

    def get_sensors_data(self, ctx: DriverContext) -> dict[str, Any]:
        """The chassis's temperatures, fans and power supplies in Ironic's Redfish
        layout (``{"Temperature": {"<id>@<chassis>": {"reading_celsius": ...}}}``).

        Raises DriverError.
        """
        readings = self._call(ctx, "get sensors", lambda c, s: c.sensors(s))
        return sensors_by_kind(readings)


#: the key of a reading in each section of Ironic's Redfish sensor data
_READING_KEY = {
    "Temperature": "reading_celsius",
    "Fan": "reading",
    "Power": "last_power_output_watts",
}


#: the virtual media device types of the API (Ironic's VMEDIA_DEVICES) this BMC has
VMEDIA_DEVICE_TYPES = ("cdrom",)


def _check_vmedia_types(device_types: Sequence[str]) -> None:
    invalid = [t for t in device_types if t not in VMEDIA_DEVICE_TYPES]
    if invalid:
        raise InvalidInput(
            f"Invalid virtual media device type(s) {', '.join(invalid)}: "
            f"this BMC has {', '.join(VMEDIA_DEVICE_TYPES)}"
        )


def sensors_by_kind(readings: list[ChassisSensor]) -> dict[str, Any]:
    """``{"Temperature"|"Fan"|"Power": {identity: {...}}}`` as Ironic's redfish
    management returns it, with each sensor's ``name`` besides."""
    found: dict[str, dict[str, Any]] = {}
    for r in readings:
        fields: dict[str, Any] = {
            "identity": r.identity,
            "name": r.name,
            _READING_KEY[r.kind]: r.reading,
            "health": r.health,
        }
        if r.kind == "Fan":
            fields["reading_units"] = r.unit
        found.setdefault(r.kind, {})[r.identity] = fields
    return found


class RedfishBIOS(_RedfishBase, BIOSInterface):
    """BIOS attributes through the system's Bios resource."""

    name = "redfish"

    def get_settings(self, ctx: DriverContext) -> dict[str, str]:
        """Current BIOS attributes.  Raises DriverError."""
        attributes = self._call(ctx, "get bios settings", lambda c, s: c.bios_attributes(s))
        return {str(k): str(v) for k, v in attributes.items()}

    @step(
        priority=0,
        kinds=CLEAN_OR_DEPLOY_STEP,
        argsinfo={"settings": 'A list of {"name": ..., "value": ...} to apply (required).'},
    )
    def apply_configuration(self, ctx: DriverContext) -> StepResult:
        """Manual clean step and deploy step: stage ``settings``; the BMC applies them
        at the next boot.

        Raises:
            InvalidInput: ``settings`` missing or malformed.
            DriverError: the BMC refused them.
        """
        settings = _settings(ctx.args)
        self._call(ctx, "apply bios settings", lambda c, s: c.stage_bios_attributes(s, settings))
        return StepResult.DONE


def _settings(args: Mapping[str, Any]) -> dict[str, Any]:
    settings = args.get("settings")
    if not isinstance(settings, list) or not all(
        isinstance(item, dict) and "name" in item and "value" in item for item in settings
    ):
        raise InvalidInput(
            'apply_configuration needs "settings": a list of {"name": ..., "value": ...}'
        )
    return {str(item["name"]): item["value"] for item in settings}


#: ProcessorArchitecture values -> the ``cpu_arch`` Ironic's redfish inspection sets
_ARCHITECTURES: Mapping[str, str] = {
    "x86": "x86_64",
    "IA-64": "ia64",
    "ARM": "aarch64",
    "MIPS": "mips",
    "Power": "ppc64le",
    "OEM": "oem",
}


class RedfishInspect(_RedfishBase, InspectInterface):
    """Out-of-band inspection: the ComputerSystem's processors, memory, drives and
    NICs read through the BMC, as an inventory in Ironic's format that the conductor
    checks and stores as an agent's (properties, ports, inspection rules).  The
    machine stays as it is: nothing boots.  What only the running machine knows
    (CPU flags, the disks' WWNs and by-path names, LLDP, IP addresses) is left out;
    the first EthernetInterface the BMC lists counts as the one the machine
    network-boots from."""

    name = "redfish"

    def inspect_hardware(self, ctx: DriverContext) -> StepOutcome:
        """Raises DriverError: the BMC failed to answer."""
        hardware = self._call(ctx, "inspect hardware", lambda c, s: c.hardware(s))
        return StepOutcome(StepResult.DONE, inventory=inventory_of(hardware))


def inventory_of(hw: SystemHardware) -> dict[str, Any]:
    """``hw`` as an inventory in Ironic's format (the agent's ``get_inventory``)."""
    mode = _MODE_OF.get(hw.boot_mode or "")
    return {
        "cpu": {
            "count": hw.cpu_count or 0,
            "model_name": hw.cpu_model,
            "architecture": _ARCHITECTURES.get(hw.cpu_arch or "", hw.cpu_arch or ""),
            "flags": [],
            "frequency": None,
        },
        "memory": {
            "total": hw.memory_bytes,
            "physical_mb": None if hw.memory_bytes is None else hw.memory_bytes // 1024**2,
        },
        "disks": [
            {
                "name": d.name,
                "size": d.size,
                "model": d.model,
                "serial": d.serial,
                "wwn": None,
                "vendor": None,
                "rotational": d.rotational,
                "by_path": None,
            }
            for d in hw.disks
        ],
        "interfaces": [
            {
                "name": n.name,
                "mac_address": n.mac,
                "ipv4_address": None,
                "ipv6_address": None,
                "has_carrier": True,
                "speed_mbps": n.speed_mbps,
                "lldp": None,
            }
            for n in hw.nics
        ],
        "system_vendor": {
            "manufacturer": hw.manufacturer,
            "product_name": hw.model,
            "serial_number": hw.serial,
            "uuid": hw.uuid,
            "firmware": {},
        },
        "boot": {
            # not reported: "unknown", which sets no boot_mode capability
            "current_boot_mode": "unknown" if mode is None else mode.value,
            "pxe_interface": hw.nics[0].mac if hw.nics else None,
        },
        "bmc_address": None,
        "hostname": "",
    }
