"""The node's console: whether it is enabled, how to reach it, turning it on and off.

Enabling or disabling is asynchronous, as in Ironic: the request is checked under the
node's lock in the caller's thread (the node must have a console interface that is
not "no-console", with the ``driver_info`` it needs), then a worker starts or stops
the console and records ``console_enabled`` with a history row.  A failure is
recorded in ``last_error`` and the history; ``console_enabled`` keeps its value and
the provision state never changes.  Asking for the state the console is already in
changes nothing.

The console's output is kept on the conductor holding it, in a bounded log
(:func:`read_output`), and keystrokes reach it through :func:`send_input`: what
metalcast's websocket proxy and ``console-log`` use.  A console enabled on a node
this conductor owns but has not opened (after a restart, or a takeover) is opened by
:func:`reopen_consoles`, which a periodic task runs.

Errors::

    InvalidInput     (400) the node has no console ("no-console"), or its driver_info
                           lacks what the console needs
    OperationFailed  reading the console's connection details failed
    plus those of :func:`metalcast.conductor.workers.start_async`
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import time
from typing import Any

from metalcast.conductor.interfaces import call, context_for, interface_of, unsupported
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.conductor.workers import describe, start_async
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.drivers.base import ConsoleInterface
from metalcast.drivers.console_log import ConsoleOutput
from metalcast.errors import DriverError, InvalidInput, MetalcastError

#: most seconds one read waits for output (an RPC call must answer well within its
#: timeout); the proxy asks again
MAX_WAIT = 10.0
#: most bytes one input call types
MAX_INPUT = 4096
_PAGE = 500
#: the purpose of the key console tokens are signed with
TOKEN_KEYS = "console-tokens"
_log = logging.getLogger(__name__)


def get_console(rt: Runtime, node_id: int, *, user: str) -> tuple[bool, dict[str, Any] | None]:
    """Whether the node's console is enabled and, if it is, how to reach it
    (``{"type": ..., "url": ...}``).  A disabled console is not checked, whatever the
    console interface, as in Ironic.  A console reached through metalcast's websocket
    proxy (``{"type": "websocket"}``) gets a ``token`` for it, valid for this node
    for ``conductor.console_token_ttl`` seconds: the API makes it the URL.

    Raises:
        InvalidInput: the console is enabled but the node has no console interface.
        OperationFailed: the console interface failed.
    """
    task = acquire(rt, node_id, user=user, purpose="get console", shared=True)
    if not task.node.console_enabled:
        return False, None
    _check(task)
    info = call(task, ConsoleInterface, "get console", lambda i, ctx: i.get_console(ctx))
    if info.get("type") == "websocket":
        ttl = rt.settings.console_token_ttl
        info = {**info, "token": issue_token(rt, task.uuid, expires=time.time() + ttl)}
    return True, info


def issue_token(rt: Runtime, node_uuid: str, *, expires: float) -> str:
    """A token that opens the websocket console of this node (only) until ``expires``
    (a UNIX time), signed with a key derived from the secret key."""
    stamp = str(int(expires))
    return f"{stamp}.{_signature(rt, node_uuid, stamp)}"


def check_token(rt: Runtime, node_id: int, token: str) -> bool:
    """Whether ``token`` opens the websocket console of node ``node_id`` now.

    Raises:
        NotFound: no such node.
    """
    with rt.db.read() as conn:
        node = repo.get_node_by_id(conn, node_id)
    stamp, _, signature = token.partition(".")
    if not stamp.isdigit() or int(stamp) < time.time():
        return False
    return hmac.compare_digest(signature, _signature(rt, node.uuid, stamp))


def _signature(rt: Runtime, node_uuid: str, stamp: str) -> str:
    key = rt.secret_box.derive_key(TOKEN_KEYS)
    digest = hmac.new(key, f"{node_uuid}|{stamp}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


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


def read_output(
    rt: Runtime, node_id: int, *, offset: int | None, wait: float, user: str
) -> ConsoleOutput:
    """The node's console output from ``offset`` (None: all the log keeps), waiting
    up to ``wait`` seconds (at most :data:`MAX_WAIT`) for some.

    Raises:
        InvalidInput: the node has no console interface.
        NotFound, ServiceUnavailable: see :func:`~metalcast.conductor.task.acquire`.
    """
    task = acquire(rt, node_id, user=user, purpose="read console", shared=True)
    _check(task)
    iface = interface_of(rt, task.node, cls=ConsoleInterface)
    ctx = context_for(task)
    return iface.console_output(ctx, offset=offset, wait=min(max(wait, 0.0), MAX_WAIT))


def send_input(rt: Runtime, node_id: int, data: bytes, *, user: str) -> None:
    """Type ``data`` at the node's console.

    Raises:
        InvalidInput: no console, console disabled or not open, or too much input.
        OperationFailed: the BMC did not take it.
    """
    if len(data) > MAX_INPUT:
        raise InvalidInput(f"console input is limited to {MAX_INPUT} bytes per call")
    task = acquire(rt, node_id, user=user, purpose="console input", shared=True)
    _check(task)
    if not task.node.console_enabled:
        raise InvalidInput(f"the console of node {task.uuid} is not enabled")
    call(task, ConsoleInterface, "console input", lambda i, ctx: i.console_input(ctx, data))


def reopen_consoles(rt: Runtime) -> int:
    """Open again the enabled consoles of this conductor's nodes that are not open
    here (a restart, a takeover, a session the BMC ended); returns how many."""
    reopened = 0
    for node in _enabled_consoles(rt):
        try:
            task = acquire(rt, node.id, user="conductor", purpose="reopen console", shared=True)
            iface = interface_of(rt, task.node, cls=ConsoleInterface)
            ctx = context_for(task)
            if not task.node.console_enabled or iface.console_alive(ctx):
                continue
            iface.start_console(ctx)
            reopened += 1
            task.log.info("%s: console opened again on this conductor", task.uuid)
        except (MetalcastError, DriverError) as exc:
            _log.warning("console of node %s not reopened: %s", node.uuid, exc)
    return reopened


def _enabled_consoles(rt: Runtime) -> list[Node]:
    mine = rt.owned()
    filters = repo.NodeFilters(conductor_group=rt.settings.conductor_group, console_enabled=True)
    out: list[Node] = []
    marker: str | None = None
    with rt.db.read() as conn:
        while True:
            page = repo.list_nodes(conn, filters, repo.Page(limit=_PAGE, marker=marker))
            out.extend(n for n in page if n.console_enabled and mine(n))
            if len(page) < _PAGE:
                return out
            marker = page[-1].uuid
