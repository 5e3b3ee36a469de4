"""RAID interface ``agent``: software RAID built by the node's ramdisk agent with mdadm.

A target configuration is checked when it is set (Ironic's schema, then what software
RAID can build, :func:`check_software`); the manual clean steps
``create_configuration`` and ``delete_configuration`` hand the agent
``create_raid_configuration`` / ``delete_raid_configuration``, and what the agent
reports it built becomes the node's ``raid_config`` (:func:`applied_config`).  The
layout (whole disks, md metadata 1.0, a bootable RAID-1 root) is in docs/raid.md.

Errors::

    InvalidInput   (400) a configuration software RAID cannot build, or bad step args
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from metalcast.drivers import raid
from metalcast.drivers.base import (
    DEPLOY_STEP,
    AgentCommand,
    AgentPhase,
    DriverContext,
    RAIDInterface,
    StepOutcome,
    step,
)
from metalcast.errors import InvalidInput
from metalcast_agent.protocol import DEVICE_HINTS, SOFTWARE_RAID, SOFTWARE_RAID_LEVELS

#: what mdadm is given as an array's name
_VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
_DEVICE = re.compile(r"/dev/[a-z][a-z0-9]{0,31}")
_MD_UUID = re.compile(r"[0-9a-f]{8}(:[0-9a-f]{8}){3}")
#: keys of a logical disk software RAID does not use: refused rather than ignored
_UNSUPPORTED = ("share_physical_disks", "disk_type", "interface_type")


def check_software(config: Mapping[str, Any]) -> raid.RaidConfig:
    """``config`` checked as Ironic's schema and as a software RAID the agent builds:
    controller ``software``, levels 0, 1 and 1+0, whole disks of its own per logical
    disk, enough of them, and a RAID-1 root volume (bootable from either member).

    Raises:
        InvalidInput: the message names the logical disk and what to change.
    """
    parsed = raid.validate(config)
    problems = [
        f"logical_disks.{index}: {problem}"
        for index, disk in enumerate(parsed.logical_disks)
        for problem in _problems(disk)
    ]
    if problems:
        raise InvalidInput(
            "Invalid software RAID configuration for raid interface 'agent': "
            f"{'; '.join(problems)}."
        )
    return parsed


def _problems(disk: raid.LogicalDisk) -> list[str]:
    out = []
    if disk.controller != SOFTWARE_RAID:
        out.append(f"controller must be {SOFTWARE_RAID!r} (the agent builds software RAID only)")
    levels = SOFTWARE_RAID_LEVELS.get(disk.raid_level)
    if levels is None:
        out.append(
            f"raid_level {disk.raid_level!r} is not a software RAID level: use "
            + ", ".join(repr(level) for level in SOFTWARE_RAID_LEVELS)
        )
    elif disk.is_root_volume and disk.raid_level != "1":
        out.append("the root volume must be RAID '1': the machine boots from either member")
    set_keys = [key for key in _UNSUPPORTED if getattr(disk, key) not in (None, False)]
    if set_keys:
        out.append(
            f"{', '.join(set_keys)} is not supported: each logical disk takes whole disks of "
            "its own (choose them with physical_disks)"
        )
    if disk.volume_name is not None and not _VOLUME_NAME.fullmatch(disk.volume_name):
        out.append("volume_name must be 1 to 32 letters, digits, '_', '.' or '-'")
    return out + _disk_count_problems(disk, levels[1] if levels else 1)


def _disk_count_problems(disk: raid.LogicalDisk, fewest: int) -> list[str]:
    out = []
    wanted = disk.physical_disks
    if wanted is not None:
        for entry in wanted:
            out += _physical_disk_problems(entry)
        if disk.number_of_physical_disks not in (None, len(wanted)):
            out.append("number_of_physical_disks differs from the number of physical_disks")
    count = len(wanted) if wanted is not None else disk.number_of_physical_disks or fewest
    if count < fewest:
        out.append(f"RAID {disk.raid_level} needs at least {fewest} physical disks, not {count}")
    return out


def _physical_disk_problems(entry: str | dict[str, Any]) -> list[str]:
    if isinstance(entry, str):
        if not _DEVICE.fullmatch(entry):
            return [f"physical disk {entry!r} is not a device name such as '/dev/sda'"]
        return []
    unknown = sorted(set(entry) - set(DEVICE_HINTS))
    if unknown or not entry:
        return [
            f"a physical disk is a device name or root device hints ({', '.join(DEVICE_HINTS)}); "
            f"not {', '.join(unknown) or 'an empty object'}"
        ]
    return []


def applied_config(sent: Mapping[str, Any], reported: Mapping[str, Any]) -> dict[str, Any]:
    """The RAID configuration to record once the agent built ``sent`` (the command's
    arguments): the logical disks as asked, with what the agent reports of each
    (``size_gb``, ``physical_disks``, ``md_uuid``) taken only when well formed.

    Raises:
        InvalidInput: the report does not match what was asked.
    """
    asked = sent.get("logical_disks") or []
    built = reported.get("logical_disks")
    if not isinstance(built, list) or len(built) != len(asked):
        raise InvalidInput(
            f"The agent reported {len(built) if isinstance(built, list) else 'no'} logical "
            f"disks for the {len(asked)} asked."
        )
    return {"logical_disks": [_applied(dict(a), b) for a, b in zip(asked, built, strict=True)]}


def _applied(asked: dict[str, Any], built: object) -> dict[str, Any]:
    report = built if isinstance(built, dict) else {}
    size, disks, uuid = report.get("size_gb"), report.get("physical_disks"), report.get("md_uuid")
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        asked["size_gb"] = size
    if isinstance(disks, list) and all(isinstance(d, str) and _DEVICE.fullmatch(d) for d in disks):
        asked["physical_disks"] = list(disks)
    if not isinstance(uuid, str) or not _MD_UUID.fullmatch(uuid):
        raise InvalidInput("The agent reported a logical disk without a valid md UUID.")
    asked["md_uuid"] = uuid
    name = report.get("volume_name")
    if isinstance(name, str) and _VOLUME_NAME.fullmatch(name):
        asked["volume_name"] = name
    return asked


def raid_root(config: Mapping[str, Any]) -> str | None:
    """The md UUID of the software RAID root volume in ``config`` (a node's
    ``raid_config``), or None."""
    root = raid.root_volume(config)
    uuid = root.get("md_uuid") if root is not None else None
    if root is None or root.get("controller") != SOFTWARE_RAID or not isinstance(uuid, str):
        return None
    return uuid if _MD_UUID.fullmatch(uuid) else None


def _flag(args: Mapping[str, Any], name: str, *, default: bool) -> bool:
    value = args.get(name, default)
    if not isinstance(value, bool):
        raise InvalidInput(f"Clean step argument {name!r} must be true or false, not {value!r}")
    return value


class AgentRAID(RAIDInterface):
    """Software RAID (RAID 0, 1, 1+0 over whole disks) built by metalcast-agent."""

    name = "agent"

    def validate_raid_config(self, config: Mapping[str, Any]) -> None:
        """Check ``config`` as software RAID (:func:`check_software`).

        Raises:
            InvalidInput: the message says which logical disk and what to change.
        """
        check_software(config)

    @step(
        priority=0,
        requires_ramdisk=True,
        argsinfo={
            "create_root_volume": "Whether to create the root volume (default true).",
            "create_nonroot_volumes": "Whether to create the other volumes (default true).",
            "delete_existing": "Whether to delete every md array first (default true, as "
            "Ironic's agent RAID).",
        },
    )
    def create_configuration(self, ctx: DriverContext) -> StepOutcome:
        """Manual clean step: the agent builds the node's target_raid_config (the
        logical disks the arguments select) with mdadm, after deleting every md array
        unless ``delete_existing`` is false.

        Raises:
            InvalidInput: no target configuration, nothing left to create, bad args.
        """
        target = ctx.node.target_raid_config
        if not target:
            raise InvalidInput(
                f"Node {ctx.node.uuid} has no target RAID configuration; set one first "
                "(PUT /v1/nodes/{node}/states/raid)."
            )
        check_software(target)  # set before the interface was agent, perhaps
        disks = raid.select_disks(
            target,
            root=_flag(ctx.args, "create_root_volume", default=True),
            nonroot=_flag(ctx.args, "create_nonroot_volumes", default=True),
        )
        logical = [dict(disk) for disk in disks]
        commands = [AgentCommand("create_raid_configuration", {"logical_disks": logical})]
        if _flag(ctx.args, "delete_existing", default=True):
            commands.insert(0, AgentCommand("delete_raid_configuration"))
        return StepOutcome.for_agent(AgentPhase.CLEAN, *commands)

    @step(priority=0, kinds=DEPLOY_STEP, requires_ramdisk=True, argsinfo=raid.APPLY_ARGSINFO)
    def apply_configuration(self, ctx: DriverContext) -> StepOutcome:
        """Deploy step (Ironic's): the agent builds ``raid_config`` with mdadm, after
        deleting every md array unless ``delete_existing`` is false.  Run before
        ``deploy.write_image`` (a priority above 80), the image goes onto its root.

        Raises:
            InvalidInput: ``raid_config`` missing, not software RAID, bad args.
        """
        config = raid.apply_argument(ctx.args)
        check_software(config)
        disks = raid.select_disks(config, root=True, nonroot=True)
        logical = [dict(disk) for disk in disks]
        commands = [AgentCommand("create_raid_configuration", {"logical_disks": logical})]
        if _flag(ctx.args, "delete_existing", default=True):
            commands.insert(0, AgentCommand("delete_raid_configuration"))
        return StepOutcome.for_agent(AgentPhase.DEPLOY, *commands)

    @step(priority=0, requires_ramdisk=True)
    def delete_configuration(self, ctx: DriverContext) -> StepOutcome:
        """Manual clean step: the agent stops every md array and wipes its members."""
        return StepOutcome.for_agent(AgentPhase.CLEAN, AgentCommand("delete_raid_configuration"))
