"""The BIOS settings cache: what GET /v1/nodes/{node}/bios serves.

Like Ironic, metalcast reads a node's BIOS settings from its BIOS interface when
the node is verified (``manage``), after every cleaning (where BIOS steps change
them) and after a deploy that ran a BIOS deploy step, stores them in the database
and serves reads from there, so that listing settings never waits for, or fails
with, the BMC.  Refreshing is best effort: a failed read is logged and leaves the
previous cache in place; it never fails the operation that triggered it.
"""

from __future__ import annotations

from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.task import NodeTask, TaskParked
from metalcast.db import bios
from metalcast.drivers.base import BIOSInterface


def refresh(task: NodeTask) -> bool:
    """Replace the node's cached BIOS settings with what its BIOS interface reports.
    Returns False (and logs why) when they could not be read.

    Raises:
        TaskParked: the conductor is shutting down and parked this task.
    """
    try:
        settings = call(
            task, BIOSInterface, "read BIOS settings", lambda i, ctx: i.get_settings(ctx)
        )
    except OperationFailed as exc:
        task.log.warning("%s: BIOS settings not cached: %s", task.uuid, exc)
        return False
    if task.rt.parked.is_set():
        raise TaskParked(task.uuid)  # shutting down: write nothing more
    # read first: the settings rarely change, and a write transaction (SQLite's
    # BEGIN IMMEDIATE, the database's one writer) is not worth taking for nothing;
    # the node's lock keeps other writers of its cache away in between
    with task.rt.db.read() as conn:
        current = bios.cached_values(conn, task.node.id)
    if current != dict(settings):
        with task.rt.db.begin() as conn:
            bios.replace_settings(conn, task.node.id, settings, current=current)
    return True
