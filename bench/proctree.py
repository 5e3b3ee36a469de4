"""Resident memory and CPU time of a process tree, read from /proc (Linux only, stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (None if it is gone)."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return stat[stat.rfind(")") + 2 :].split()


def _parent_of(pid: int) -> int | None:
    """Return the parent pid of ``pid``, or None if it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def descendants(root: int) -> list[int]:
    """Return ``root`` followed by every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir(PROC):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    tree = [root]
    index = 0
    while index < len(tree):
        tree.extend(children.get(tree[index], []))
        index += 1
    return tree


def rss_bytes(pid: int) -> int:
    """Return the VmRSS of one process in bytes (0 if it is gone)."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def tree_rss_bytes(root: int) -> int:
    """Return the summed RSS of ``root`` and all its descendants."""
    return sum(rss_bytes(pid) for pid in descendants(root))


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds ``pid`` has used (0 if it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # utime and stime are fields 14 and 15 of stat; 12 and 13 after the name
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """Return the summed CPU seconds of ``root`` and all its live descendants."""
    return sum(cpu_seconds(pid) for pid in descendants(root))
