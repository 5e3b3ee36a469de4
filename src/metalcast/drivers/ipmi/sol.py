"""Serial-over-LAN through pyghmi: one activated SOL payload on a session of its own.

pyghmi's ``Console`` logs in by itself and activates the payload from inside its
login callback, which runs in pyghmi's event-loop thread, where a blocking command
waits for an answer only that thread could read (see :mod:`.eventloop`).
:func:`open_sol` instead logs in as every metalcast IPMI call does (the cipher suite
negotiated by :mod:`.negotiation`), then activates the payload from the caller's
thread.  The session is not the power/management pool's: pyghmi shares a session
among all ``Command`` objects with the same (address, user, password, port, Kg)
and the pool logs out idle sessions, which would end the console.  Passing the
password as Kg gives a session of its own with the same keys (a BMC without a Kg
uses the password in its place, IPMI v2.0 section 13.31).

A BMC holds one SOL payload at a time; a console left activated by a client that
went away (a conductor killed) would refuse every later one, so activation
deactivates a leftover first, as ``ipmitool sol deactivate`` would.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import console as pyghmi_console
from pyghmi.ipmi.private import session as pyghmi_session

from metalcast.drivers.bmc_sessions import BmcFailure, FailureKind
from metalcast.drivers.console_log import DEFAULT_LIMIT, ConsoleLog
from metalcast.drivers.ipmi.client import IpmiTarget
from metalcast.drivers.ipmi.eventloop import ensure_event_pump
from metalcast.drivers.ipmi.pyghmi_client import classify, login, silence

#: called with what the machine printed
Output = Callable[[bytes], None]
#: called once with why the console ended
Ended = Callable[[str], None]


class SolConsole:
    """An activated SOL payload: output goes to ``on_output``; :meth:`send` types."""

    def __init__(self, console: Any, command: Any) -> None:
        self._console = console
        self._command = command
        self._send_lock = threading.Lock()

    @property
    def alive(self) -> bool:
        """False once the BMC or the session ended the console."""
        return not self._console.broken and self._console.activated

    def send(self, data: bytes) -> None:
        """Type ``data`` at the console; returns once the BMC acknowledged it.

        Raises:
            BmcFailure: the console has ended.
        """
        if self._console.broken:
            raise BmcFailure(FailureKind.NO_ANSWER, "the SOL session has ended")
        with self._send_lock:
            try:
                self._console.send_data(data)
            except pyghmi_exc.PyghmiException as exc:
                raise classify(exc) from exc

    def close(self) -> None:
        """Deactivate the payload and log out; never raises."""
        # the library boundary: closing is best effort, whatever pyghmi raises
        with contextlib.suppress(Exception):
            self._console.close()
            self._command.ipmi_session.logout()
        # pyghmi would hand the logged-out session to the next console of this BMC
        silence(self._command.ipmi_session)


def open_sol(target: IpmiTarget, *, on_output: Output, on_end: Ended) -> SolConsole:
    """Log in to ``target`` and activate its SOL payload.

    Raises:
        BmcFailure: the login failed, or the BMC refused the payload.
    """
    ensure_event_pump()
    try:
        command = _login(target)
    except BmcFailure:
        raise
    except pyghmi_exc.PyghmiException as exc:
        raise classify(exc) from exc
    except Exception as exc:
        raise BmcFailure(FailureKind.CLIENT, f"the IPMI client failed: {exc!r}") from exc
    console = _Console(command.ipmi_session, on_output=on_output, on_end=on_end)
    if console.broken:
        command.ipmi_session.logout()
        silence(command.ipmi_session)
        raise BmcFailure(FailureKind.REJECTED, f"the BMC refused SOL: {console.failure}")
    return SolConsole(console, command)


def _login(target: IpmiTarget) -> Any:
    # a session pyghmi keeps "initting" (one that once failed, or was logged out)
    # would be handed back half-dead: start from a new one
    key = (target.address, target.username, target.password, target.port, target.password)
    pyghmi_session.Session.initting_sessions.pop(key, None)
    # the password as kg: a pyghmi session of its own, apart from the power pool's
    return login(target, kg=target.password)


class _Console(pyghmi_console.Console):  # type: ignore[misc]
    """pyghmi's client console on a session already logged in."""

    def __init__(self, session: Any, *, on_output: Output, on_end: Ended) -> None:
        # pyghmi's own __init__ logs in; these are the attributes it would set
        self.outputlock = threading.RLock()
        self.keepaliveid = None
        self.connected = False
        self.broken = False
        self.failure = ""
        self.remseq = 0
        self.myseq = 0
        self.lastsize = 0
        self.retriedpayload = 0
        self.pendingoutput: list[Any] = []
        self.awaitingack = False
        self.activated = False
        self.force_session = True
        self.port = session.port
        self.callgotsession = None
        self._on_output = on_output
        self._on_end = on_end
        self.out_handler = self._handle
        self.ipmi_session = session
        self._got_session({})

    def _handle(self, data: Any) -> None:
        if isinstance(data, bytes | bytearray):
            self._on_output(bytes(data))
        elif isinstance(data, dict) and "error" in data:
            self.failure = str(data["error"])
            self._on_end(self.failure)


class SolConsoles:
    """The SOL consoles this conductor holds, and every node's console log, by node
    UUID.  Shared by the ``ipmi-sol`` interface instances of one registry."""

    def __init__(self, *, log_bytes: int = DEFAULT_LIMIT, opener: Opener | None = None) -> None:
        self.log_bytes = log_bytes
        self._open = opener or open_sol
        self._lock = threading.Lock()
        self._consoles: dict[str, SolConsole] = {}
        self._logs: dict[str, ConsoleLog] = {}

    def log(self, node: str) -> ConsoleLog:
        """The node's console log (an empty one at first)."""
        with self._lock:
            return self._logs.setdefault(node, ConsoleLog(self.log_bytes))

    def start(self, node: str, target: IpmiTarget) -> None:
        """Open the node's console (closing one left open first).  Raises BmcFailure."""
        self.stop(node)
        log = self.log(node)

        def ended(reason: str) -> None:
            log.append(f"\r\n[metalcast: the console ended: {reason}]\r\n".encode())
            log.set_open(False)

        console = self._open(target, on_output=log.append, on_end=ended)
        with self._lock:
            self._consoles[node] = console
        log.set_open(True)

    def stop(self, node: str) -> None:
        """Close the node's console, if open here; its log stays."""
        with self._lock:
            console = self._consoles.pop(node, None)
        if console is not None:
            console.close()
            self.log(node).set_open(False)

    def alive(self, node: str) -> bool:
        with self._lock:
            console = self._consoles.get(node)
        return console is not None and console.alive

    def send(self, node: str, data: bytes) -> None:
        """Raises BmcFailure: the console is not open here, or it ended."""
        with self._lock:
            console = self._consoles.get(node)
        if console is None:
            raise BmcFailure(FailureKind.SETTINGS, "the console is not open on this conductor")
        console.send(data)


Opener = Callable[..., SolConsole]
