"""Fake power, management, vendor and console: a BMC that always answers at once."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from metalcast.drivers.base import (
    ConsoleInterface,
    DriverContext,
    Indicator,
    ManagementInterface,
    PowerInterface,
    StepResult,
    VendorInterface,
    VendorMethod,
    step,
)
from metalcast.drivers.fake.bmc import DEFAULT_BOOT_DEVICE, FakeBmcState
from metalcast.drivers.fake.injection import FakeOperations, Sleep
from metalcast.errors import FatalDriverError, InvalidInput
from metalcast.states import PowerState, PowerTarget

#: the power state each target leaves a well-behaved machine in
_TARGET_STATE: Mapping[PowerTarget, PowerState] = {
    PowerTarget.ON: PowerState.ON,
    PowerTarget.OFF: PowerState.OFF,
    PowerTarget.REBOOT: PowerState.ON,
    PowerTarget.SOFT_OFF: PowerState.OFF,
    PowerTarget.SOFT_REBOOT: PowerState.ON,
}

BOOT_DEVICES: tuple[str, ...] = ("pxe", "disk", "cdrom", "bios", "safe")
BOOT_MODES: tuple[str, ...] = ("uefi", "bios")
#: the fake's indicators, Ironic's fake management's
FAKE_INDICATORS: Mapping[str, Mapping[str, Indicator]] = {
    "chassis": {"led-0": Indicator(readonly=True, states=("off", "on"))},
    "system": {"led": Indicator(readonly=False, states=("blinking", "off", "on"))},
}


class FakePower(FakeOperations, PowerInterface):
    """Power through the shared fake BMC.  Operation name: ``power``."""

    name = "fake"

    def __init__(self, bmc: FakeBmcState, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep=sleep)
        self._bmc = bmc

    def get_power_state(self, ctx: DriverContext) -> PowerState:
        """The fake BMC's power state.  Raises DriverError when ``power`` is injected."""
        self._begin(ctx, "power")
        return self._bmc.record(ctx.node).power_state

    def set_power_state(self, ctx: DriverContext, target: PowerTarget, timeout: float) -> None:
        """Reach ``target`` at once.  Raises DriverError when ``power`` is injected."""
        self._begin(ctx, "power")
        self._bmc.set_power_state(ctx.node, _TARGET_STATE[target])

    def get_supported_power_states(self, ctx: DriverContext) -> list[PowerTarget]:
        return list(_TARGET_STATE)


class FakeManagement(FakeOperations, ManagementInterface):
    """Boot devices, boot mode and secure boot through the shared fake BMC, and
    sensor readings, indicators, a virtual CD.  Operations: ``boot_device``,
    ``boot_mode``, ``secure_boot``, ``nmi``, ``sensors``, ``indicator``, ``vmedia``."""

    name = "fake"

    def __init__(self, bmc: FakeBmcState, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep=sleep)
        self._bmc = bmc

    def get_supported_boot_devices(self, ctx: DriverContext) -> list[str]:
        return list(BOOT_DEVICES)

    def set_boot_device(self, ctx: DriverContext, device: str, *, persistent: bool) -> None:
        """Record ``device`` in the fake BMC.

        Raises:
            InvalidInput: ``device`` is not one of :data:`BOOT_DEVICES`.
            DriverError: ``boot_device`` is injected.
        """
        if device not in BOOT_DEVICES:
            raise InvalidInput(
                f"Invalid boot device {device!r}; supported: {', '.join(BOOT_DEVICES)}"
            )
        self._begin(ctx, "boot_device")
        self._bmc.set_boot_device(ctx.node, device, persistent=persistent)

    def get_boot_device(self, ctx: DriverContext) -> tuple[str, bool]:
        """The boot device last set; before any (or after ``reset_bmc``), ``pxe``, not
        persistent, as Ironic's fake reports."""
        self._begin(ctx)
        record = self._bmc.record(ctx.node)
        return record.boot_device, record.persistent

    def inject_nmi(self, ctx: DriverContext) -> None:
        """Pretend to send an NMI.  Raises DriverError when ``nmi`` is injected."""
        self._begin(ctx, "nmi")

    def get_virtual_media(self, ctx: DriverContext) -> list[dict[str, Any]]:
        """The fake BMC's one virtual CD.  Raises DriverError when ``vmedia`` is injected."""
        self._begin(ctx, "vmedia")
        image = self._bmc.record(ctx.node).vmedia_image
        return [{"media_types": ["CD", "DVD"], "inserted": image is not None, "image": image}]

    def attach_virtual_media(self, ctx: DriverContext, device_type: str, image_url: str) -> None:
        """Record ``image_url`` in the virtual CD.  Raises InvalidInput (not ``cdrom``),
        DriverError (``vmedia`` injected)."""
        _check_cdrom((device_type,))
        self._begin(ctx, "vmedia")
        self._bmc.set_vmedia(ctx.node, image_url)

    def detach_virtual_media(self, ctx: DriverContext, device_types: Sequence[str]) -> None:
        """Empty the virtual CD.  Raises InvalidInput, DriverError (``vmedia`` injected)."""
        _check_cdrom(device_types)
        self._begin(ctx, "vmedia")
        self._bmc.set_vmedia(ctx.node, None)

    supports_boot_mode = True
    supports_secure_boot = True

    def get_boot_mode(self, ctx: DriverContext) -> str:
        """UEFI until told otherwise."""
        self._begin(ctx)
        return self._bmc.record(ctx.node).boot_mode

    def set_boot_mode(self, ctx: DriverContext, mode: str) -> None:
        """Record ``mode``.  Raises InvalidInput (not uefi or bios), DriverError when
        ``boot_mode`` is injected."""
        if mode not in BOOT_MODES:
            raise InvalidInput(f"Invalid boot mode {mode!r}; supported: {', '.join(BOOT_MODES)}")
        self._begin(ctx, "boot_mode")
        self._bmc.set_boot_mode(ctx.node, mode=mode)

    def get_secure_boot_state(self, ctx: DriverContext) -> bool:
        """Off until told otherwise."""
        self._begin(ctx)
        return self._bmc.record(ctx.node).secure_boot

    def set_secure_boot_state(self, ctx: DriverContext, enabled: bool) -> None:
        """Record the state.  Raises DriverError when ``secure_boot`` is injected, or
        when turned on in BIOS boot mode (secure boot is UEFI's)."""
        self._begin(ctx, "secure_boot")
        if enabled and self._bmc.record(ctx.node).boot_mode != "uefi":
            raise FatalDriverError(
                "secure boot needs UEFI boot mode; set the boot mode to uefi first",
                operation="set secure boot state",
            )
        self._bmc.set_boot_mode(ctx.node, secure_boot=enabled)

    def get_sensors_data(self, ctx: DriverContext) -> dict[str, Any]:
        """One temperature, in IPMI's layout.  Raises DriverError when ``sensors`` is
        injected."""
        self._begin(ctx, "sensors")
        return {"Temperature": {"CPU1 Temp": {"Sensor Reading": "40 degrees C"}}}

    def get_supported_indicators(self, ctx: DriverContext) -> dict[str, dict[str, Indicator]]:
        """Ironic's fake indicators: the chassis's read-only ``led-0`` and the
        system's ``led``, which may blink."""
        self._begin(ctx)
        return {component: dict(names) for component, names in FAKE_INDICATORS.items()}

    def get_indicator_state(self, ctx: DriverContext, component: str, name: str) -> str:
        """What the fake BMC holds; on until set.  Raises InvalidInput for an
        indicator it does not have, DriverError when ``indicator`` is injected."""
        self._begin(ctx, "indicator")
        if name not in FAKE_INDICATORS.get(component, {}):
            raise InvalidInput(f"Node has no indicator {name}@{component}.")
        return self._bmc.record(ctx.node).indicators.get((component, name), "on")

    def set_indicator_state(
        self, ctx: DriverContext, component: str, name: str, state: str
    ) -> None:
        """Record ``state``.  Raises DriverError when ``indicator`` is injected."""
        self._begin(ctx, "indicator")
        self._bmc.set_indicator(ctx.node, component, name, state)

    @step(priority=0)
    def reset_bmc(self, ctx: DriverContext) -> StepResult:
        """Manual clean step: back to the default boot device.  Operation name:
        ``clean``."""
        if self._begin_waitable(ctx, "clean"):
            return StepResult.WAIT
        self._bmc.set_boot_device(ctx.node, DEFAULT_BOOT_DEVICE, persistent=False)
        return StepResult.DONE


class FakeVendor(FakeOperations, VendorInterface):
    """Passthru methods that act on the fake BMC behind the database's back."""

    name = "fake"

    def __init__(self, bmc: FakeBmcState, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep=sleep)
        self._bmc = bmc

    def methods(self) -> dict[str, str]:
        return {
            "set_power_state": "Change the fake BMC's power state without telling "
            'metalcast, like pressing the power button. Args: {"power_state": '
            '"power on" | "power off"}.',
            "get_state": "The fake BMC's view of the node: power state and boot device.",
        }

    def passthru(self, ctx: DriverContext, method: str, args: Mapping[str, Any]) -> Any:
        """Call ``set_power_state`` or ``get_state``.

        Raises:
            InvalidInput: unknown method or bad arguments.
            DriverError: ``vendor`` is injected.
        """
        if method not in self.methods():
            raise InvalidInput(
                f"Unsupported vendor passthru method {method!r}; "
                f"supported: {', '.join(sorted(self.methods()))}"
            )
        self._begin(ctx, "vendor")
        if method == "set_power_state":
            self._set_power_state(ctx, args)
        record = self._bmc.record(ctx.node)
        return {
            "power_state": str(record.power_state),
            "boot_device": record.boot_device,
            "persistent": record.persistent,
        }

    def _set_power_state(self, ctx: DriverContext, args: Mapping[str, Any]) -> None:
        wanted = args.get("power_state")
        allowed = (PowerState.ON, PowerState.OFF)
        if wanted not in allowed:
            raise InvalidInput(
                f"set_power_state needs power_state {' or '.join(repr(str(s)) for s in allowed)}"
                f", got {wanted!r}"
            )
        self._bmc.set_power_state(ctx.node, PowerState(wanted))

    def driver_methods(self) -> dict[str, VendorMethod]:
        return {
            "list_bmcs": VendorMethod(
                "What the fake BMC holds for every node it has seen, by node UUID: power "
                "state and boot device, whatever the database says.",
                http_methods=("GET", "POST"),
            ),
        }

    def driver_passthru(self, method: str, args: Mapping[str, Any]) -> Any:
        """Call ``list_bmcs``.

        Raises:
            InvalidInput: unknown method, or arguments given.
        """
        if method not in self.driver_methods():
            raise InvalidInput(
                f"Unsupported driver vendor passthru method {method!r}; "
                f"supported: {', '.join(sorted(self.driver_methods()))}"
            )
        if args:
            raise InvalidInput(f"{method} takes no arguments, got {', '.join(sorted(args))}")
        return {
            uuid: {
                "power_state": str(record.power_state),
                "boot_device": record.boot_device,
                "persistent": record.persistent,
            }
            for uuid, record in sorted(self._bmc.records().items())
        }


class FakeConsole(FakeOperations, ConsoleInterface):
    """A console that starts and stops at once and has no connection details, as
    Ironic's fake console.  Operation name: ``console`` (starting and stopping)."""

    name = "fake"

    def start_console(self, ctx: DriverContext) -> None:
        """Does nothing but the injected latency.  Raises DriverError when
        ``console`` is injected."""
        self._begin(ctx, "console")

    def stop_console(self, ctx: DriverContext) -> None:
        """Does nothing but the injected latency.  Raises DriverError when
        ``console`` is injected."""
        self._begin(ctx, "console")

    def get_console(self, ctx: DriverContext) -> dict[str, Any]:
        """``{}``: nothing to connect to, as Ironic's fake console answers."""
        self._begin(ctx)
        return {}


def _check_cdrom(device_types: Sequence[str]) -> None:
    invalid = [t for t in device_types if t != "cdrom"]
    if invalid:
        raise InvalidInput(
            f"Invalid virtual media device type(s) {', '.join(invalid)}: the fake BMC has cdrom"
        )
