"""Block devices: open, size, re-read partitions, erase metadata.

The ioctls are best effort: on a regular file (the "disk" of a test) they fail with
ENOTTY, and the size falls back to the file's size. Raises
:class:`~metalcast_agent.errors.DiskError` with the device and the reason.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from metalcast_agent.environment import Environment
from metalcast_agent.errors import DiskError
from metalcast_agent.hardware import list_disks
from metalcast_agent.hints import describe
from metalcast_agent.log import get_logger
from metalcast_agent.protocol import Disk

MIB = 1024**2
BLKGETSIZE64 = 0x80081272
BLKSSZGET = 0x1268
BLKRRPART = 0x125F
DEFAULT_SECTOR = 512

_log = get_logger("disks")


@contextmanager
def open_device(path: Path, *, name: str) -> Iterator[int]:
    """A read-write file descriptor of the device at ``path`` (shown as ``name``)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise DiskError(f"Cannot open {name} for writing: {exc.strerror}") from None
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def open_direct(path: Path) -> Iterator[int | None]:
    """A second, ``O_DIRECT`` descriptor of the device at ``path``, or None where the
    kernel refuses one (a file on tmpfs in a test): the fast path of image writes."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_DIRECT)
    except OSError as exc:
        _log.info("no O_DIRECT for %s (%s): writing through the page cache", path, exc.strerror)
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


def device_size(fd: int) -> int:
    """The size in bytes of the device (or regular file) open as ``fd``."""
    try:
        answer = fcntl.ioctl(fd, BLKGETSIZE64, bytes(8))
        return int(struct.unpack("=Q", answer)[0])
    except OSError:
        pass
    info = os.fstat(fd)
    if stat.S_ISREG(info.st_mode):
        return info.st_size
    return os.lseek(fd, 0, os.SEEK_END)


def sector_size(fd: int) -> int:
    """The logical sector size of the device open as ``fd`` (512 for a regular file)."""
    try:
        answer = fcntl.ioctl(fd, BLKSSZGET, bytes(4))
        size = int(struct.unpack("=i", answer)[0])
    except OSError:
        return DEFAULT_SECTOR
    return size if size in (512, 1024, 2048, 4096) else DEFAULT_SECTOR


def reread_partitions(fd: int, *, name: str) -> bool:
    """Ask the kernel to re-read the partition table; ``False`` when it would not."""
    try:
        fcntl.ioctl(fd, BLKRRPART)
    except OSError as exc:
        _log.info("%s: partition table not re-read (%s)", name, exc.strerror)
        return False
    return True


def flush_device(fd: int, *, name: str) -> None:
    """fsync the device: the bytes are on the disk, not in the page cache."""
    try:
        os.fsync(fd)
    except OSError as exc:
        raise DiskError(f"Flushing {name} failed: {exc.strerror}") from None


def write_zeros(fd: int, offset: int, length: int) -> None:
    """Overwrite ``length`` bytes at ``offset`` with zeros, in 1 MiB writes."""
    zeros = bytes(min(length, MIB))
    end = offset + length
    while offset < end:
        count = min(len(zeros), end - offset)
        offset += os.pwrite(fd, zeros[:count], offset)


def erase_metadata(env: Environment, disk: Disk) -> None:
    """Zero the first and last MiB of ``disk``: MBR, GPT and its backup, FS signatures."""
    with open_device(env.device_path(disk.name), name=disk.name) as fd:
        size = device_size(fd)
        try:
            write_zeros(fd, 0, min(MIB, size))
            tail = max(0, size - MIB)
            write_zeros(fd, tail, size - tail)
        except OSError as exc:
            raise DiskError(f"Erasing {disk.name} failed: {exc.strerror}") from None
        flush_device(fd, name=disk.name)
        reread_partitions(fd, name=disk.name)
    _log.info("erase_metadata: %s: first and last MiB zeroed", disk.name)


def disks_named(env: Environment, names: Sequence[str] | None) -> list[Disk]:
    """The disks called ``names`` (``/dev/vda`` or ``vda``), or every disk for ``None``."""
    disks = list_disks(env)
    if names is None:
        return disks
    by_name = {disk.name: disk for disk in disks}
    chosen = []
    for name in names:
        disk = by_name.get("/dev/" + name.removeprefix("/dev/"))
        if disk is None:
            raise DiskError(
                f"Device {name} is not a disk of this machine; disks: {describe(disks)}"
            )
        chosen.append(disk)
    return chosen
