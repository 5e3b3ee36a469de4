"""Fake RAID, BIOS and firmware: configuration applied at once."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from metalcast.drivers import raid
from metalcast.drivers.base import (
    CLEAN_OR_DEPLOY_STEP,
    DEPLOY_STEP,
    BIOSInterface,
    DriverContext,
    FirmwareChange,
    FirmwareComponent,
    FirmwareInterface,
    RAIDInterface,
    StepOutcome,
    StepProgress,
    StepResult,
    step,
)
from metalcast.drivers.fake.bmc import FakeBmcState
from metalcast.drivers.fake.injection import FakeOperations, Sleep
from metalcast.drivers.firmware import STEP_ARGSINFO, STEP_NAME, parse_settings
from metalcast.errors import InvalidInput


def _flag(args: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"Clean step argument {name!r} must be true or false, not {value!r}")
    return value


class FakeRAID(FakeOperations, RAIDInterface):
    """RAID configuration as manual clean steps, applied at once: the node's RAID
    configuration becomes what its target asks.  Operation name: ``clean``."""

    name = "fake"

    @step(
        priority=0,
        argsinfo={
            "create_root_volume": "Whether to create the root volume (default true).",
            "create_nonroot_volumes": "Whether to create the other volumes (default true).",
            "delete_existing": "Whether to delete existing volumes first (default false).",
        },
    )
    def create_configuration(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Manual clean step: "create" the logical disks of the node's
        target_raid_config (those the arguments select).  Honours ``clean`` in
        fake_fail/fake_wait.

        Raises:
            InvalidInput: no target RAID configuration, or nothing left to create.
        """
        if self._begin_waitable(ctx, "clean"):
            return StepResult.WAIT
        disks = raid.select_disks(
            _target(ctx),
            root=_flag(ctx.args, "create_root_volume", default=True),
            nonroot=_flag(ctx.args, "create_nonroot_volumes", default=True),
        )
        _flag(ctx.args, "delete_existing", default=False)  # the fake always starts afresh
        return StepOutcome(raid_config={"logical_disks": [dict(disk) for disk in disks]})

    @step(priority=0, kinds=CLEAN_OR_DEPLOY_STEP)
    def delete_configuration(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Manual clean step and deploy step: remove every logical disk.  Honours
        ``clean`` in fake_fail/fake_wait."""
        if self._begin_waitable(ctx, "clean"):
            return StepResult.WAIT
        return StepOutcome(raid_config={})

    @step(priority=0, kinds=DEPLOY_STEP, argsinfo=raid.APPLY_ARGSINFO)
    def apply_configuration(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Deploy step: "create" the logical disks of ``raid_config`` at once (Ironic's
        RAID ``apply_configuration``).  Honours ``clean`` in fake_fail/fake_wait.

        Raises:
            InvalidInput: ``raid_config`` missing or malformed.
        """
        config = raid.apply_argument(ctx.args)
        self.validate_raid_config(config)
        _flag(ctx.args, "delete_existing", default=True)  # the fake always starts afresh
        if self._begin_waitable(ctx, "clean"):
            return StepResult.WAIT
        disks = raid.select_disks(config, root=True, nonroot=True)
        return StepOutcome(raid_config={"logical_disks": [dict(disk) for disk in disks]})


def _target(ctx: DriverContext) -> Mapping[str, Any]:
    if not ctx.node.target_raid_config:
        raise InvalidInput(
            f"Node {ctx.node.uuid} has no target RAID configuration; set one first "
            "(PUT /v1/nodes/{node}/states/raid)."
        )
    return ctx.node.target_raid_config


def _bios_settings(args: Mapping[str, Any]) -> dict[str, str]:
    settings = args.get("settings")
    if not isinstance(settings, list) or not all(
        isinstance(item, dict) and "name" in item and "value" in item for item in settings
    ):
        raise InvalidInput(
            'apply_configuration needs "settings": a list of {"name": ..., "value": ...}'
        )
    return {str(item["name"]): str(item["value"]) for item in settings}


class FakeBIOS(FakeOperations, BIOSInterface):
    """BIOS settings kept in the fake BMC.  Operation name: ``clean``."""

    name = "fake"

    def __init__(self, bmc: FakeBmcState, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep=sleep)
        self._bmc = bmc

    def get_settings(self, ctx: DriverContext) -> dict[str, str]:
        """The fake BMC's BIOS settings for the node."""
        self._begin(ctx)
        return dict(self._bmc.record(ctx.node).bios_settings)

    @step(
        priority=0,
        kinds=CLEAN_OR_DEPLOY_STEP,
        argsinfo={"settings": 'A list of {"name": ..., "value": ...} to apply (required).'},
    )
    def apply_configuration(self, ctx: DriverContext) -> StepResult:
        """Manual clean step and deploy step: merge ``settings`` into the BIOS settings.

        Raises:
            InvalidInput: ``settings`` missing or malformed.
            DriverError: ``clean`` is injected.
        """
        settings = _bios_settings(ctx.args)
        if self._begin_waitable(ctx, "clean"):
            return StepResult.WAIT
        self._bmc.set_bios_settings(ctx.node, settings)
        return StepResult.DONE


#: the version a fake update installs: the last version-like part of the image's file
#: name (``bios-2.4.0.bin``: 2.4.0)
_VERSION_IN_NAME = re.compile(r"\d+(?:\.\d+)+")


class FakeFirmware(FakeOperations, FirmwareInterface):
    """Firmware components kept in the fake BMC (``bios`` and ``bmc``, 1.0.0), and
    the ``update`` clean step (as Ironic's fake, clean only), which fetches nothing:
    it installs the version the image's file name ends with (``…/bios-2.4.0.bin``:
    2.4.0; none: the version stays).  Operation name: ``clean``."""

    name = "fake"

    def __init__(self, bmc: FakeBmcState, *, sleep: Sleep = time.sleep) -> None:
        super().__init__(sleep=sleep)
        self._bmc = bmc

    def get_components(self, ctx: DriverContext) -> list[FirmwareComponent]:
        self._begin(ctx)
        versions = self._bmc.record(ctx.node).firmware
        return [FirmwareComponent(name, version) for name, version in sorted(versions.items())]

    def check_step_args(self, name: str, args: Mapping[str, Any]) -> None:
        """Raises InvalidInput: ``update``'s settings are malformed."""
        if name == "update":
            parse_settings(args)

    @step(priority=0, argsinfo=STEP_ARGSINFO)
    def update(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Update the settings' components at once.

        Raises:
            InvalidInput: malformed settings, or a component the node does not have.
            DriverError: ``clean`` is injected.
        """
        if self._begin_waitable(ctx, "clean"):
            return StepResult.WAIT
        settings = parse_settings(ctx.args)
        before = self.get_components(ctx)
        unknown = sorted({s.component for s in settings} - {c.component for c in before})
        if unknown:
            raise InvalidInput(
                f"Node {ctx.node.uuid} has no firmware component(s) {', '.join(unknown)}; "
                f"its components: {', '.join(c.component for c in before)}."
            )
        versions = {}
        for setting in settings:
            found = _VERSION_IN_NAME.findall(urlsplit(setting.url).path.rsplit("/", 1)[-1])
            if found:
                versions[setting.component] = found[-1]
            ctx.progress(StepProgress(STEP_NAME, setting.component, 100, "Completed"))
        self._bmc.set_firmware(ctx.node, versions)
        after = tuple(self.get_components(ctx))
        updated = tuple(dict.fromkeys(s.component for s in settings))
        return StepOutcome(firmware=FirmwareChange(tuple(before), after, updated))
