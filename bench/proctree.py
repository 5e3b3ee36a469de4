"""Resident memory of a process tree, read from /proc (Linux only, stdlib only)."""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def _parent_of(pid: int) -> int | None:
    """Return the parent pid of ``pid``, or None if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[1])


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
