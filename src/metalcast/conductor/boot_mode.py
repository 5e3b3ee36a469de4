"""A node's boot mode and secure boot state: read from its BMC into the node's
``boot_mode`` and ``secure_boot`` fields (Ironic 1.75), and changed through it
(``PUT /v1/nodes/{node}/states/boot_mode`` and ``…/secure_boot``, Ironic 1.76).

The fields are what the BMC last said, cached as Ironic caches them: after a change
made here, when a node is managed (verified), and by the power sync for a node whose
fields were never read or whose power state changed out of band (someone at the
machine may have changed its firmware settings too).  Ironic's sync reads them on
every pass; reading them only then spares two BMC requests per node and pass.  A
management interface that cannot read them (``supports_boot_mode`` and
``supports_secure_boot`` false: IPMI, no-management) leaves them ``null``.
"""

from __future__ import annotations

import functools
import logging

from metalcast.conductor.interfaces import OperationFailed, call, interface_of
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.conductor.workers import describe, start_async
from metalcast.drivers.base import ManagementInterface
from metalcast.errors import Conflict, InvalidInput
from metalcast.states import WAIT, WORK, ProvisionState

_log = logging.getLogger(__name__)

#: the boot modes a node can be asked to boot in
BOOT_MODES: tuple[str, ...] = ("uefi", "bios")


def observe(task: NodeTask) -> tuple[str | None, bool | None] | None:
    """What the BMC says of the node's boot mode and secure boot state (a shared
    task will do), each the node's recorded value where the BMC failed to answer;
    None when the management interface can read neither.  Failures are logged."""
    try:
        iface = interface_of(task.rt, task.node, cls=ManagementInterface)
    except OperationFailed:
        return None  # no management interface: nothing to read
    if not (iface.supports_boot_mode or iface.supports_secure_boot):
        return None
    mode, secure = task.node.boot_mode, task.node.secure_boot
    try:  # each on its own: a BMC may know the mode and have no SecureBoot resource
        if iface.supports_boot_mode:
            mode = call(task, ManagementInterface, "get boot mode", lambda i, c: i.get_boot_mode(c))
    except Exception as exc:  # boundary: a cache refresh never fails its caller
        task.log.warning("%s: boot mode not read: %s", task.uuid, describe(exc))
    try:
        if iface.supports_secure_boot:
            secure = call(
                task,
                ManagementInterface,
                "get secure boot state",
                lambda i, c: i.get_secure_boot_state(c),
            )
    except Exception as exc:  # boundary: as above
        task.log.warning("%s: secure boot state not read: %s", task.uuid, describe(exc))
    return mode, secure


def read(task: NodeTask, observed: tuple[str | None, bool | None] | None = None) -> bool:
    """Record in the (locked) task's node what :func:`observe` finds (or
    ``observed``, found already); True when that changed either field (the caller
    saves)."""
    found = observe(task) if observed is None else observed
    if found is None or found == (task.node.boot_mode, task.node.secure_boot):
        return False
    task.update(boot_mode=found[0], secure_boot=found[1])
    return True


def change_boot_mode(rt: Runtime, node_id: int, *, mode: str, user: str) -> None:
    """Start setting the node's boot mode (asynchronous; the outcome is in its
    ``boot_mode``, or ``last_error``).

    Raises:
        InvalidInput: not one of :data:`BOOT_MODES`, or the management interface
            cannot change it (or refuses the node's ``driver_info``).
        Conflict: the node is being worked on.
        NoFreeWorker, ServiceUnavailable, NodeLocked, NotFound: see start_async.
    """
    if mode not in BOOT_MODES:
        raise InvalidInput(
            f"Invalid boot mode {mode} requested for node. Allowed boot modes are: "
            f"{', '.join(BOOT_MODES)}"
        )
    start_async(
        rt,
        node_id,
        user=user,
        purpose="change boot mode",
        begin=functools.partial(_begin, what="boot mode", needs="supports_boot_mode"),
        work=functools.partial(_set_mode, mode=mode),
        on_error=functools.partial(_record_error, what=f"boot mode to '{mode}'"),
    )


def change_secure_boot(rt: Runtime, node_id: int, *, enabled: bool, user: str) -> None:
    """Start turning the node's secure boot on or off (asynchronous).

    Raises:
        InvalidInput: the management interface cannot change it (or refuses the
            node's ``driver_info``).
        Conflict: the node is being worked on.
        NoFreeWorker, ServiceUnavailable, NodeLocked, NotFound: see start_async.
    """
    start_async(
        rt,
        node_id,
        user=user,
        purpose="change secure boot",
        begin=functools.partial(_begin, what="secure boot state", needs="supports_secure_boot"),
        work=functools.partial(_set_secure, enabled=enabled),
        on_error=functools.partial(_record_error, what=f"secure_boot state to '{enabled}'"),
    )


def _begin(task: NodeTask, *, what: str, needs: str) -> None:
    state = ProvisionState(task.node.provision_state)
    if state in WORK | WAIT:
        raise Conflict(
            f"Node {task.uuid} is in {state.value} state. Since the node is transitioning, "
            f"the {what} will not be set as this may interfere with ongoing changes; "
            "try again once it rests."
        )
    try:
        iface = interface_of(task.rt, task.node, cls=ManagementInterface)
    except OperationFailed as exc:
        raise InvalidInput(exc.message) from exc
    if not getattr(iface, needs):
        raise InvalidInput(
            f"The {iface.name} management interface of node {task.uuid} cannot change the {what}."
        )
    call(task, ManagementInterface, "validate", lambda i, ctx: i.check_info(ctx))
    task.update(last_error=None)
    task.save()


def _set_mode(task: NodeTask, *, mode: str) -> None:
    before = task.node.boot_mode
    call(task, ManagementInterface, "set boot mode", lambda i, c: i.set_boot_mode(c, mode))
    read(task)
    if task.node.boot_mode is None:  # the BMC does not say: record what it was told
        task.update(boot_mode=mode)
    task.save(event=f"Boot mode {before} → {mode} by {task.user}", event_type="management")


def _set_secure(task: NodeTask, *, enabled: bool) -> None:
    before = task.node.secure_boot
    call(
        task,
        ManagementInterface,
        "set secure boot state",
        lambda i, c: i.set_secure_boot_state(c, enabled),
    )
    read(task)
    if task.node.secure_boot is None:
        task.update(secure_boot=enabled)
    task.save(event=f"Secure boot {before} → {enabled} by {task.user}", event_type="management")


def _record_error(task: NodeTask, exc: Exception, *, what: str) -> None:
    message = f"Failed to change {what}: {describe(exc)}"
    task.update(last_error=message)
    task.save(event=message, event_type="management", severity="ERROR")
