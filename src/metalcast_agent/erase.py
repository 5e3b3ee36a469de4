"""``erase_devices``: every disk erased whole, the strongest way it supports.

For each disk, in order (the first that applies is used):

1. ``nvme_format``: an NVMe namespace, when ``nvme_secure_erase`` is on and nvme-cli's
   ``nvme`` is on the PATH: ``nvme format -s 2`` (cryptographic erase) when the
   controller says it can (``id-ctrl`` FNA bit 2), else ``-s 1`` (user data erase).
2. ``ata_secure_erase``: a disk ``hdparm -I`` reports as ATA with the security feature
   supported, not enabled, not locked and not frozen, when ``ata_secure_erase`` is on
   and ``hdparm`` is on the PATH: a temporary user password, then
   ``--security-erase-enhanced`` (or ``--security-erase``).
3. ``zeroout``: the ``BLKZEROOUT`` ioctl (what ``blkdiscard -z`` does): the device's
   write-zeroes command, unmapping where it can, else the kernel writes the zeros
   itself; in 64 MiB ranges, so that progress is reported.
4. ``overwrite``: zeros written by the agent (1 MiB blocks, ``O_DIRECT`` where the
   device takes it), where the ioctl does not apply (not a block device).

``zeroout`` and ``overwrite`` are the overwrite of Ironic's "shred" and run only with
``zeros`` on (``deploy.shred_final_overwrite_with_zeros``); with it off, a disk
that has no secure erase only has its metadata erased (method ``metadata``).  A failed
secure erase fails the command unless ``continue_if_secure_erase_fails``, in which
case the disk is overwritten instead.  Plain discard (``BLKDISCARD``) is never used:
Linux cannot tell whether discarded blocks read back as zeros (``BLKDISCARDZEROES``
answers 0 on every kernel since 4.12), and a QEMU disk with ``discard=ignore`` keeps
the data.  Progress: bytes erased of the disks' total.  Raises
:class:`~metalcast_agent.errors.DiskError` and
:class:`~metalcast_agent.errors.InvalidArguments`.
"""

from __future__ import annotations

import errno
import fcntl
import json
import mmap
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from metalcast_agent.commands import CommandContext, arg_str_list
from metalcast_agent.disks import (
    MIB,
    device_size,
    disks_named,
    erase_metadata,
    flush_device,
    open_device,
    open_direct,
    reread_partitions,
)
from metalcast_agent.environment import Environment
from metalcast_agent.errors import DiskError, InvalidArguments
from metalcast_agent.hints import format_size
from metalcast_agent.log import get_logger
from metalcast_agent.protocol import Disk

BLKZEROOUT = 0x127F  # _IO(0x12, 127): zero a byte range {start, length}
#: bytes per BLKZEROOUT call: progress is reported after each
ZEROOUT_CHUNK = 64 * MIB
#: bytes per write of the overwrite
BLOCK = MIB
#: seconds a secure erase tool may run (a large HDD's enhanced erase takes hours)
TOOL_TIMEOUT = 24 * 3600.0
_TEMPORARY_PASSWORD = "metalcast"  # set just before the erase, which clears it
_OPTIONS = (
    "nvme_secure_erase",
    "ata_secure_erase",
    "zeros",
    "continue_if_secure_erase_fails",
)
_log = get_logger("erase")

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class EraseOptions:
    """How ``erase_devices`` may erase (the conductor's ``cleaning`` settings)."""

    nvme_secure_erase: bool = True
    ata_secure_erase: bool = True
    zeros: bool = True
    continue_if_secure_erase_fails: bool = False

    @classmethod
    def from_args(cls, args: Mapping[str, object]) -> EraseOptions:
        """The options in a command's arguments (a missing one keeps its default)."""
        values: dict[str, bool] = {}
        for name in _OPTIONS:
            value = args.get(name)
            if value is None:
                continue
            if not isinstance(value, bool):
                raise InvalidArguments(f"erase_devices argument {name!r} must be true or false")
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class Erased:
    """How one disk was erased."""

    device: str
    method: str
    size: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "device": self.device,
            "method": self.method,
            "bytes": self.size,
            "seconds": round(self.seconds, 1),
        }


def erase_devices(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``erase_devices`` command: erase every disk (or those named in
    ``devices``) whole, reporting bytes erased of the total as progress."""
    names = arg_str_list(args, "devices", command="erase_devices")
    options = EraseOptions.from_args(args)
    disks = disks_named(ctx.env, names)
    total = sum(disk.size for disk in disks)
    done = 0
    ctx.report_progress(0, total)
    erased: list[Erased] = []
    for disk in disks:
        base = done

        def progress(count: int, base: int = base) -> None:
            ctx.report_progress(base + count, total)

        erased.append(erase_disk(ctx.env, disk, options, progress=progress))
        done += disk.size
        ctx.report_progress(done, total)
    return {"devices": [item.to_json() for item in erased]}


def erase_disk(
    env: Environment, disk: Disk, options: EraseOptions, *, progress: Progress
) -> Erased:
    """Erase ``disk`` the first way that applies (see the module's docstring)."""
    started = time.monotonic()
    method = _secure_erase(env, disk, options)
    if method is None:
        method = _overwrite(env, disk, progress=progress) if options.zeros else None
    if method is None:
        erase_metadata(env, disk)
        method = "metadata"
        _log.warning(
            "erase_devices: %s: no secure erase and zeros are off: metadata erased only",
            disk.name,
        )
    seconds = time.monotonic() - started
    _log.info(
        "erase_devices: %s (%s) erased by %s in %.1f s",
        disk.name,
        format_size(disk.size),
        method,
        seconds,
    )
    return Erased(disk.name, method, disk.size, seconds)


# ------------------------------------------------------------------ secure erase


def _secure_erase(env: Environment, disk: Disk, options: EraseOptions) -> str | None:
    """The secure erase method used, or None when none applies (or one failed and
    ``continue_if_secure_erase_fails`` is on)."""
    name = disk.name.removeprefix("/dev/")
    try:
        if name.startswith("nvme"):
            if options.nvme_secure_erase and _nvme_format(env, disk):
                return "nvme_format"
        elif options.ata_secure_erase and _ata_secure_erase(env, disk):
            return "ata_secure_erase"
    except DiskError as exc:
        if not options.continue_if_secure_erase_fails:
            raise
        _log.error("%s; overwriting it instead", exc.message)
    return None


def _nvme_format(env: Environment, disk: Disk) -> bool:
    """Format the namespace with a secure erase setting; False without nvme-cli."""
    tool = _tool(env, "nvme")
    if tool is None:
        _log.info("erase_devices: %s: no nvme tool: not formatted", disk.name)
        return False
    path = str(env.device_path(disk.name))
    identity = _run(tool, "id-ctrl", path, "-o", "json", disk=disk, what="nvme id-ctrl")
    try:
        fna = int(json.loads(identity).get("fna", 0))
    except (ValueError, TypeError, AttributeError):
        raise DiskError(f"nvme id-ctrl {disk.name} answered something that is not JSON") from None
    setting = "2" if fna & 0x4 else "1"  # cryptographic erase if supported, else user data
    _log.info("erase_devices: %s: nvme format, secure erase setting %s", disk.name, setting)
    _run(tool, "format", path, "-s", setting, "-f", disk=disk, what="nvme format")
    return True


def _ata_secure_erase(env: Environment, disk: Disk) -> bool:
    """ATA Secure Erase through hdparm; False when the disk does not support it."""
    tool = _tool(env, "hdparm")
    if tool is None:
        return False
    path = str(env.device_path(disk.name))
    try:
        found = _run(tool, "-I", path, disk=disk, what="hdparm -I")
    except DiskError:
        return False  # not an ATA disk (virtio, SCSI...): hdparm cannot identify it
    security = ata_security(found)
    if not security.usable:
        _log.info("erase_devices: %s: ATA secure erase not usable (%s)", disk.name, security)
        return False
    erase = "--security-erase-enhanced" if security.enhanced else "--security-erase"
    _log.info("erase_devices: %s: ATA secure erase (%s)", disk.name, erase)
    user = ("--user-master", "u")
    _run(tool, *user, "--security-set-pass", _TEMPORARY_PASSWORD, path, disk=disk,
         what="hdparm --security-set-pass")  # fmt: skip
    _run(tool, *user, erase, _TEMPORARY_PASSWORD, path, disk=disk, what=f"hdparm {erase}")
    after = ata_security(_run(tool, "-I", path, disk=disk, what="hdparm -I"))
    if after.enabled:
        raise DiskError(
            f"ATA secure erase of {disk.name} left its security password set; "
            "the disk is locked at its next power cycle: clear it with hdparm"
        )
    return True


@dataclass(frozen=True, slots=True)
class AtaSecurity:
    """The ``Security:`` section of ``hdparm -I``."""

    supported: bool = False
    enabled: bool = False
    locked: bool = False
    frozen: bool = False
    enhanced: bool = False

    @property
    def usable(self) -> bool:
        """Whether a secure erase may start: supported, no password, not locked or
        frozen (a frozen disk needs a suspend and resume, which metalcast does not do)."""
        return self.supported and not (self.enabled or self.locked or self.frozen)

    def __str__(self) -> str:
        flags = ("supported", "enabled", "locked", "frozen")
        return ", ".join(f"{'' if getattr(self, f) else 'not '}{f}" for f in flags)


def ata_security(text: str) -> AtaSecurity:
    """Parse the ``Security:`` section of ``hdparm -I`` output."""
    lines: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.strip() == "Security:":
            inside = True
            continue
        if inside and line and not line[0].isspace():
            break
        if inside:
            lines.append(line.strip().lower())
    flags = {line for line in lines if line}
    return AtaSecurity(
        supported="supported" in flags,
        enabled="enabled" in flags,
        locked="locked" in flags,
        frozen="frozen" in flags,
        enhanced=any(line.endswith("enhanced erase") and "not" not in line for line in flags),
    )


def _tool(env: Environment, name: str) -> str | None:
    return shutil.which(name, path=env.tools_path)


def _run(*argv: str, disk: Disk, what: str) -> str:
    """Run a tool; its standard output.  Raises DiskError with its message."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise DiskError(f"{what} {disk.name} failed: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise DiskError(f"{what} {disk.name} failed: {reason}")
    return done.stdout


# ----------------------------------------------------------------- overwriting


def _overwrite(env: Environment, disk: Disk, *, progress: Progress) -> str:
    """Zero the whole disk: BLKZEROOUT, else writes of zeros; the method used."""
    with open_device(env.device_path(disk.name), name=disk.name) as fd:
        size = device_size(fd) or disk.size
        method = "zeroout" if _zeroout(fd, size, disk=disk, progress=progress) else "overwrite"
        if method == "overwrite":
            _write_zeros(env, fd, size, disk=disk, progress=progress)
        flush_device(fd, name=disk.name)
        reread_partitions(fd, name=disk.name)
    return method


def _zeroout(fd: int, size: int, *, disk: Disk, progress: Progress) -> bool:
    """Zero ``size`` bytes with BLKZEROOUT; False when the device does not take it
    (before anything was zeroed)."""
    done = 0
    while done < size:
        length = min(ZEROOUT_CHUNK, size - done)
        try:
            fcntl.ioctl(fd, BLKZEROOUT, struct.pack("=QQ", done, length))
        except OSError as exc:
            if done == 0 and exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
                return False
            raise DiskError(
                f"Zeroing {disk.name} failed after {format_size(done)} of {format_size(size)}: "
                f"{exc.strerror}"
            ) from None
        done += length
        progress(done)
    return True


def _write_zeros(env: Environment, fd: int, size: int, *, disk: Disk, progress: Progress) -> None:
    """Write zeros over ``size`` bytes: whole blocks with O_DIRECT where it is taken."""
    zeros = mmap.mmap(-1, BLOCK)  # page-aligned, and zero
    done = 0
    try:
        with open_direct(env.device_path(disk.name)) as direct:
            while done < size:
                count = min(BLOCK, size - done)
                target = direct if direct is not None and count == BLOCK else fd
                written = os.pwrite(target, zeros if count == BLOCK else zeros[:count], done)
                if written <= 0:
                    raise OSError(errno.EIO, "nothing written")
                done += written
                progress(done)
    except OSError as exc:
        raise DiskError(
            f"Overwriting {disk.name} failed after {format_size(done)} of {format_size(size)}: "
            f"{exc.strerror}"
        ) from None
    finally:
        zeros.close()
