"""newc cpio archives, the format the kernel unpacks an initramfs from: the deploy
ramdisk (:mod:`metalcast.ramdisk`) and the boot services' CA initrd
(:mod:`metalcast.boot.trust`).

Written here rather than with ``cpio(1)`` so that every entry is owned by root, has
one fixed timestamp and normalized permissions whoever runs the build: the same
inputs give the same bytes (and the same hash), and device nodes such as
``/dev/console`` need no root to create.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
#: the timestamp of every entry (reproducible builds)
MTIME = 0


@dataclass(frozen=True, slots=True)
class Entry:
    """One archive member: ``path`` is relative (``usr/bin/python3``)."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(entry: Entry, inode: int) -> bytes:
    name = entry.path.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (
        inode,
        entry.mode,
        0,  # uid
        0,  # gid
        nlink,
        MTIME,
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,  # check
    )
    header = MAGIC + b"".join(b"%08X" % value for value in fields) + name
    return header + _pad(len(header))


def write(out: BinaryIO, entries: Iterable[Entry]) -> None:
    """Write a newc archive of ``entries`` (parents must come before children)."""
    for inode, entry in enumerate(entries, start=1):
        out.write(_header(entry, inode))
        out.write(entry.data)
        out.write(_pad(len(entry.data)))
    out.write(_header(Entry(TRAILER, 0), 0))


def tree_entries(root: Path) -> Iterator[Entry]:
    """Every file, directory and symlink under ``root``, parents first, sorted.

    Permissions are normalized: 0755 for directories and executables, 0644 for the
    rest.
    """
    for top, dirs, files in os.walk(root):
        dirs.sort()
        base = Path(top)
        for name in sorted([*dirs, *files]):
            yield _entry(base / name, (base / name).relative_to(root).as_posix())


def _entry(path: Path, relative: str) -> Entry:
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        return Entry(relative, stat.S_IFLNK | 0o777, os.readlink(path).encode())
    if stat.S_ISDIR(info.st_mode):
        return directory(relative)
    executable = info.st_mode & 0o111
    return Entry(relative, stat.S_IFREG | (0o755 if executable else 0o644), path.read_bytes())
