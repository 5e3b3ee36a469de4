"""Software RAID with mdadm: ``create_raid_configuration``, ``delete_raid_configuration``
and the RAID root volume ``write_image`` writes to (docs/raid.md).

Layout: every logical disk is one md array over **whole disks** of its own, with
metadata 1.0 (the superblock at the end of each member, the array's data from its
first sector).  A RAID-1 member therefore starts with exactly what the array holds: the
whole-disk image written to the array, boot code and partition table included, so the
firmware boots from either member ("the bootloader on every member").

The plan (:func:`plan_arrays`) is pure: logical disks (Ironic's keys) and the
machine's disks in, which disks each array takes and how much of them out.  A logical
disk with ``physical_disks`` takes a disk per entry (a device name, or root-device
hints); the others take the smallest free disks, as many as ``number_of_physical_disks``
or the fewest their level needs.  ``size_gb`` is the array's size: each member gives
``size_gb`` (RAID-1), ``size_gb / n`` (RAID-0) or ``2 * size_gb / n`` (RAID-1+0, two
copies) rounded up to a MiB; ``"MAX"`` takes the smallest member whole.

Raises :class:`~metalcast_agent.errors.RaidError` (no disks for an array, a disk
that is too small or already in an array, mdadm failing) and
:class:`~metalcast_agent.errors.InvalidArguments`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from metalcast_agent.commands import CommandContext
from metalcast_agent.disks import erase_metadata
from metalcast_agent.environment import Environment
from metalcast_agent.errors import InvalidArguments, RaidError
from metalcast_agent.hardware import SECTOR, list_disks, read_attr
from metalcast_agent.hints import GIB, MIB, check_hints, describe, format_size, matches
from metalcast_agent.log import get_logger
from metalcast_agent.protocol import SOFTWARE_RAID, SOFTWARE_RAID_LEVELS, Disk

#: the md superblock format: version 1.0 lives at the end of each member
METADATA = "1.0"
#: what a member keeps beyond the array's data for the superblock (and its bitmap)
SUPERBLOCK_ROOM = MIB
_log = get_logger("raid")


@dataclass(frozen=True, slots=True)
class ArrayPlan:
    """One md array to create."""

    device: str  # "/dev/md0"
    name: str  # the array's name in its superblock
    level: str  # Ironic's: "0", "1", "1+0"
    members: tuple[Disk, ...]
    #: KiB each member gives (mdadm --size); None: all of the smallest member
    member_kib: int | None
    logical_disk: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class MdArray:
    """An assembled md array: its device, members and identity."""

    device: str  # "/dev/md127"
    size: int  # bytes
    members: tuple[str, ...]  # "/dev/vda", ...
    uuid: str | None
    name: str | None


# ------------------------------------------------------------------------ planning


def plan_arrays(
    logical_disks: Sequence[Mapping[str, object]], disks: Sequence[Disk]
) -> list[ArrayPlan]:
    """Which disks each logical disk's array takes, and how much of each.

    Logical disks with ``physical_disks`` choose first, in order; then the others.

    Raises:
        InvalidArguments: a logical disk is malformed (the conductor checked it).
        RaidError: there are not enough (large enough) disks, or none matches hints.
    """
    free = sorted(disks, key=lambda disk: (disk.size, disk.name))
    chosen: dict[int, tuple[Disk, ...]] = {}
    order = sorted(
        range(len(logical_disks)), key=lambda i: logical_disks[i].get("physical_disks") is None
    )
    for index in order:
        members = _members(logical_disks[index], index, free, disks)
        free = [disk for disk in free if disk not in members]
        chosen[index] = members
    return [
        _plan(logical_disks[index], index, chosen[index]) for index in range(len(logical_disks))
    ]


def _members(
    logical: Mapping[str, object], index: int, free: list[Disk], disks: Sequence[Disk]
) -> tuple[Disk, ...]:
    level = _level(logical, index)
    wanted = logical.get("physical_disks")
    if isinstance(wanted, list):
        return tuple(_matching(entry, index, free, disks) for entry in wanted) if wanted else ()
    count = logical.get("number_of_physical_disks") or SOFTWARE_RAID_LEVELS[level][1]
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InvalidArguments(f"logical disk {index}: number_of_physical_disks must be >= 1")
    if len(free) < count:
        raise RaidError(
            f"Logical disk {index} (RAID {level}) needs {count} disks of its own; "
            f"{len(free)} left: {describe(free)} (of {describe(disks)})"
        )
    return tuple(free[:count])


def _matching(entry: object, index: int, free: list[Disk], disks: Sequence[Disk]) -> Disk:
    hints: Mapping[str, object]
    if isinstance(entry, str):
        hints = {"name": entry}
    elif isinstance(entry, dict):
        hints = cast("Mapping[str, object]", entry)
        check_hints(hints)
    else:
        raise InvalidArguments(f"logical disk {index}: a physical disk is a name or hints")
    for disk in free:
        if matches(disk, hints):
            free.remove(disk)
            return disk
    raise RaidError(
        f"Logical disk {index}: no free disk matches physical disk {dict(hints)}; "
        f"free disks: {describe(free)} (of {describe(disks)})"
    )


def _level(logical: Mapping[str, object], index: int) -> str:
    level = logical.get("raid_level")
    if not isinstance(level, str) or level not in SOFTWARE_RAID_LEVELS:
        known = ", ".join(SOFTWARE_RAID_LEVELS)
        raise InvalidArguments(f"logical disk {index}: raid_level must be one of {known}")
    return level


def _plan(logical: Mapping[str, object], index: int, members: tuple[Disk, ...]) -> ArrayPlan:
    level = _level(logical, index)
    fewest = SOFTWARE_RAID_LEVELS[level][1]
    if len(members) < fewest:
        raise RaidError(
            f"Logical disk {index} (RAID {level}) needs at least {fewest} disks, "
            f"{len(members)} given: {describe(members)}"
        )
    kib = _member_kib(logical.get("size_gb"), level, len(members), index)
    smallest = min(members, key=lambda disk: disk.size)
    room = smallest.size - SUPERBLOCK_ROOM
    if kib is not None and kib * 1024 > room:
        raise RaidError(
            f"Logical disk {index} (RAID {level}, {logical.get('size_gb')} GiB) needs "
            f"{kib // 1024} MiB of each disk; {smallest.name} has {max(room, 0) // MIB} MiB "
            "for it (1 MiB of each disk holds the md superblock)"
        )
    name = logical.get("volume_name")
    if not isinstance(name, str) or not name:
        name = "root" if logical.get("is_root_volume") else f"md{index}"
    return ArrayPlan(
        device=f"/dev/md{index}",
        name=name,
        level=level,
        members=members,
        member_kib=kib,
        logical_disk=logical,
    )


def _member_kib(size_gb: object, level: str, count: int, index: int) -> int | None:
    if size_gb == "MAX":
        return None
    if not isinstance(size_gb, int) or isinstance(size_gb, bool) or size_gb <= 0:
        raise InvalidArguments(f"logical disk {index}: size_gb must be a positive integer or MAX")
    total = size_gb * GIB
    share = {"1": total, "0": -(-total // count), "1+0": -(-2 * total // count)}[level]
    return -(-share // MIB) * MIB // 1024  # whole MiB, in KiB


# ------------------------------------------------------------------ the arrays there


def assemble(env: Environment) -> None:
    """Assemble the arrays whose superblocks are on the disks (the ramdisk runs no
    udev to do it), whatever host they were made on; finding none is no error."""
    try:
        env.mdadm(["--assemble", "--scan", "--homehost=any"])
    except RaidError as exc:
        _log.info("raid: nothing assembled (%s)", exc.message)


def arrays(env: Environment) -> list[MdArray]:
    """The md arrays the kernel runs now."""
    root = env.sys_root / "block"
    try:
        names = sorted(
            n for n in os.listdir(root) if n.startswith("md") and (root / n / "md").is_dir()
        )
    except OSError:
        return []
    found = []
    for name in names:
        sectors = read_attr(root / name / "size") or "0"
        try:
            members = sorted(f"/dev/{m}" for m in os.listdir(root / name / "slaves"))
        except OSError:
            members = []
        detail = _detail(env, f"/dev/{name}")
        found.append(
            MdArray(
                device=f"/dev/{name}",
                size=int(sectors) * SECTOR if sectors.isdigit() else 0,
                members=tuple(members),
                uuid=detail.get("MD_UUID"),
                name=detail.get("MD_NAME"),
            )
        )
    return found


def _detail(env: Environment, device: str) -> dict[str, str]:
    try:
        text = env.mdadm(["--detail", "--export", str(env.device_path(device))])
    except RaidError as exc:
        _log.info("raid: no detail for %s (%s)", device, exc.message)
        return {}
    pairs = (line.partition("=") for line in text.splitlines())
    return {key.strip(): value.strip() for key, sep, value in pairs if sep}


def running_array(env: Environment, name: str) -> Disk | None:
    """The running md array called ``name`` (``/dev/md127``) as a disk, or None:
    where write_image put the image, for the config drive to go next to it."""
    device = "/dev/" + name.removeprefix("/dev/")
    if not device.startswith("/dev/md"):
        return None
    found = next((a for a in arrays(env) if a.device == device), None)
    return None if found is None else Disk(name=found.device, size=found.size)


def root_array(env: Environment, uuid: str) -> Disk:
    """The md array ``uuid`` (the node's RAID root volume) as a disk to write to,
    assembled first if it is not running.

    Raises:
        RaidError: no array of this machine has that UUID.
    """
    running = arrays(env)
    if not any(array.uuid == uuid for array in running):
        assemble(env)
        running = arrays(env)
    for array in running:
        if array.uuid == uuid:
            _log.info(
                "raid: root volume %s is %s (%s)", uuid, array.device, ", ".join(array.members)
            )
            return Disk(name=array.device, size=array.size)
    shown = ", ".join(f"{a.device} ({a.uuid})" for a in running) or "none"
    raise RaidError(
        f"The node's RAID root volume (md UUID {uuid}) is not on this machine; arrays: "
        f"{shown}. Build it again (clean steps raid.delete_configuration, "
        "raid.create_configuration)"
    )


# ------------------------------------------------------------------------ commands


def create_configuration(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``create_raid_configuration`` command: an md array per logical disk; the
    RAID configuration built (Ironic's keys, the disks taken, each array's size and
    UUID)."""
    logical = _logical_disks(args)
    env = ctx.env
    assemble(env)
    busy = {member: array.device for array in arrays(env) for member in array.members}
    plans = plan_arrays(logical, list_disks(env))
    for plan in plans:
        for disk in plan.members:
            if disk.name in busy:
                raise RaidError(
                    f"{disk.name} is part of {busy[disk.name]}: delete the RAID "
                    "configuration first (clean step raid.delete_configuration)"
                )
    return {"logical_disks": [_create(env, plan) for plan in plans]}


def _logical_disks(args: Mapping[str, object]) -> list[Mapping[str, object]]:
    value = args.get("logical_disks")
    if not isinstance(value, list) or not value or not all(isinstance(d, dict) for d in value):
        raise InvalidArguments("create_raid_configuration needs 'logical_disks': a list of objects")
    for index, disk in enumerate(value):
        if disk.get("controller") != SOFTWARE_RAID:
            raise InvalidArguments(f"logical disk {index}: controller must be {SOFTWARE_RAID!r}")
    return value


def _create(env: Environment, plan: ArrayPlan) -> dict[str, object]:
    for disk in plan.members:
        erase_metadata(env, disk)  # old partition tables and superblocks: mdadm would ask
    argv = [
        "--create",
        str(env.device_path(plan.device)),
        "--run",
        f"--metadata={METADATA}",
        f"--level={SOFTWARE_RAID_LEVELS[plan.level][0]}",
        f"--raid-devices={len(plan.members)}",
        f"--name={plan.name}",
        "--homehost=any",
    ]
    if plan.member_kib is not None:
        argv.append(f"--size={plan.member_kib}")
    env.mdadm([*argv, *(str(env.device_path(disk.name)) for disk in plan.members)])
    built = next((a for a in arrays(env) if a.device == plan.device), None)
    if built is None or built.uuid is None:
        raise RaidError(f"mdadm created {plan.device}, but the kernel does not show it")
    _log.info(
        "raid: %s is RAID %s of %s over %s (md UUID %s)",
        plan.device,
        plan.level,
        format_size(built.size),
        ", ".join(d.name for d in plan.members),
        built.uuid,
    )
    return {
        **plan.logical_disk,
        "volume_name": plan.name,
        "size_gb": built.size // GIB,
        "physical_disks": [disk.name for disk in plan.members],
        "md_uuid": built.uuid,
    }


def delete_configuration(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``delete_raid_configuration`` command: stop every md array, wipe the md
    superblock and the first and last MiB of every member."""
    env = ctx.env
    assemble(env)
    found = arrays(env)
    members: set[str] = set()
    for array in found:
        env.mdadm(["--stop", str(env.device_path(array.device))])
        members.update(array.members)
    by_name = {disk.name: disk for disk in list_disks(env)}
    for name in sorted(members):
        env.mdadm(["--zero-superblock", str(env.device_path(name))])
        if name in by_name:
            erase_metadata(env, by_name[name])
    _log.info("raid: deleted %s", ", ".join(a.device for a in found) or "nothing (no arrays)")
    return {"deleted": [array.device for array in found], "members": sorted(members)}
