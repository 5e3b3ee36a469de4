"""The firmware components cache: what GET /v1/nodes/{node}/firmware serves.

As Ironic does, metalcast reads a node's firmware components from its firmware
interface around a firmware update and serves reads from the database, so that
listing components never waits for the BMC.  A firmware update step reports the
components it read before and after; :func:`record_update` stores them and writes
the versions to the node's history.  :func:`refresh` reads them afresh (after
cleaning, best effort: a failed read is logged and keeps the cache).
"""

from __future__ import annotations

from collections.abc import Iterable

from metalcast.conductor.interfaces import OperationFailed, call
from metalcast.conductor.task import NodeTask, TaskParked
from metalcast.db import firmware as db_firmware
from metalcast.drivers.base import FirmwareChange, FirmwareComponent, FirmwareInterface
from metalcast.errors import InvalidInput


def _readings(components: Iterable[FirmwareComponent]) -> list[db_firmware.FirmwareReading]:
    return [
        db_firmware.FirmwareReading(
            c.component,
            c.current_version,
            vendor=c.vendor,
            model=c.model,
            serial_number=c.serial_number,
        )
        for c in components
    ]


def store(task: NodeTask, components: Iterable[FirmwareComponent]) -> None:
    """Make the node's cache hold ``components``.  Raises TaskParked."""
    readings = _readings(components)
    with task.rt.db.read() as conn:
        if db_firmware.holds(conn, task.node.id, readings):
            return  # as read last time: no write transaction (most refreshes)
    if task.rt.parked.is_set():
        raise TaskParked(task.uuid)  # shutting down: write nothing more
    with task.rt.db.begin() as conn:
        db_firmware.sync_components(conn, task.node.id, readings)


def refresh(task: NodeTask) -> bool:
    """Replace the node's cached components with what its firmware interface reports,
    when it has one that reads them.  Returns False (and logs why) when they could
    not be read.  Raises TaskParked."""
    impl = task.node.interface("firmware")
    try:
        cls = task.rt.registry.implementation(task.node.driver, "firmware", impl)
    except InvalidInput:
        return False
    if impl is None or not cls.implemented:
        return False
    try:
        components = call(
            task,
            FirmwareInterface,
            "read firmware components",
            lambda i, ctx: i.get_components(ctx),
        )
    except OperationFailed as exc:
        task.log.warning("%s: firmware components not cached: %s", task.uuid, exc)
        return False
    store(task, components)
    return True


def record_update(task: NodeTask, change: FirmwareChange) -> None:
    """Store the components a firmware update read before and after it, and write
    their versions to the node's history.  Raises TaskParked."""
    store(task, change.before)
    store(task, change.after)
    before = {c.component: c.current_version for c in change.before}
    after = {c.component: c.current_version for c in change.after}
    versions = ", ".join(
        f"{name} {before.get(name) or 'unknown'} -> {after.get(name) or 'gone'}"
        for name in change.updated
    )
    task.save(event=f"Firmware updated: {versions}", event_type="firmware")
