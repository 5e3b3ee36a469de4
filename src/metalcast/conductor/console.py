"""The node's console: whether it is enabled, how to reach it, turning it on and off.

Enabling or disabling is asynchronous, as in Ironic: the request is checked under the
node's lock in the caller's thread (the node must have a console interface that is
not "no-console", with the ``driver_info`` it needs), then a worker starts or stops
the console and records ``console_enabled`` with a history row.  A failure is
recorded in ``last_error`` and the history; ``console_enabled`` keeps its value and
the provision state never changes.  Asking for the state the console is already in
changes nothing.

Errors::

    InvalidInput     (400) the node has no console ("no-console"), or its driver_info
                           lacks what the console needs
    OperationFailed  reading the console's connection details failed
    plus those of :func:`metalcast.conductor.workers.start_async`
"""

from __future__ import annotations

import functools
from typing import Any

from metalcast.conductor.interfaces import call, interface_of, unsupported
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.conductor.workers import describe, start_async
from metalcast.drivers.base import ConsoleInterface
from metalcast.errors import InvalidInput


def get_console(rt: Runtime, node_id: int, *, user: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether the node's console is enabled and, if it is, how to reach it
    (``{"type": ..., "url": ...}``).  A disabled console is not checked, whatever the
    console interface, as in Ironic.

    Raises:
        InvalidInput: the console is enabled but the node has no console interface.
        OperationFailed: the console interface failed.
    """
    task = acquire(rt, node_id, user=user, purpose="get console", shared=True)
    if not task.node.console_enabled:
        return False, None
    _check(task)
    info = call(task, ConsoleInterface, "get console", lambda i, ctx: i.get_console(ctx))
    return True, info


def set_console_mode(rt: Runtime, node_id: int, *, enabled: bool, user: str) -> None:
    """Start enabling or disabling the node's console (asynchronous).

    Raises:
        InvalidInput: no console interface, or its driver_info is incomplete.
        NoFreeWorker, ServiceUnavailable, NodeLocked, NotFound: see start_async.
    """

    def begin(task: NodeTask) -> None:
        _check(task)
        call(task, ConsoleInterface, "validate", lambda i, ctx: i.validate(ctx))
        if task.node.console_enabled != enabled:
            task.update(last_error=None)
            task.save()

    start_async(
        rt,
        node_id,
        user=user,
        purpose=f"console {_verb(enabled)}",
        begin=begin,
        work=functools.partial(_switch, enabled=enabled),
        on_error=functools.partial(_record_error, enabled=enabled),
    )


def _check(task: NodeTask) -> None:
    if not interface_of(task.rt, task.node, cls=ConsoleInterface).implemented:
        raise InvalidInput(unsupported(task, "console"))


def _verb(enabled: bool) -> str:
    return "enable" if enabled else "disable"


def _switch(task: NodeTask, *, enabled: bool) -> None:
    if task.node.console_enabled == enabled:
        task.log.info("%s: console already %sd; nothing to do", task.uuid, _verb(enabled))
        return
    if enabled:
        call(task, ConsoleInterface, "start console", lambda i, ctx: i.start_console(ctx))
    else:
        call(task, ConsoleInterface, "stop console", lambda i, ctx: i.stop_console(ctx))
    task.update(console_enabled=enabled, last_error=None)
    task.save(event=f"console {_verb(enabled)}d by {task.user}", event_type="console")


def _record_error(task: NodeTask, exc: Exception, *, enabled: bool) -> None:
    message = f"Failed to {_verb(enabled)} the console of node {task.uuid}: {describe(exc)}"
    task.update(last_error=message)
    task.save(event=message, event_type="console", severity="ERROR")
