"""pyghmi's process-wide event loop: the thread that turns it, and the mends it needs.

pyghmi shares one socket loop among every IPMI session of a process, clients and
servers (the lab's virtual BMCs) alike.  :func:`ensure_event_pump` runs the one
thread that turns it, and, before the first session exists, mends the paths where
pyghmi, written for green threads, stalls or deadlocks under real ones.  Each of
these was seen to stop every IPMI session of a process:

1. Lock order.  Sending took the keepalive lock then the waiting-sessions lock;
   retrying a timed-out packet took them the other way round.  Both names now
   refer to one reentrant lock.
2. Blocking sockets.  Sending switched the shared UDP socket to blocking mode and
   receiving switched it back; a send landing between the I/O thread's switch and
   its read left that read blocked until the next packet, maybe forever.  Sending
   no longer changes the socket's mode.
3. Packets handled by any thread.  Callers, logins and the loop all drained the
   packet queues; a caller whose answer another thread took slept until its retry
   timer, and two threads could work one session at once.  Now only the loop
   thread handles packets, retries and keepalives; other threads wait for it to
   finish a turn (it signals each one) and look again.
4. Blocking inside the loop.  A login ends with a request sent and awaited from
   inside the packet handler; in the loop thread, that wait starves every other
   session, and a virtual BMC in the same process can never answer it.  The loop
   thread now hands that step to the next caller thread that waits.
5. Giving up on a session: pyghmi first logged out politely, waiting for the
   command that had just timed out.  A broken session now goes without a word.
   Logging in again to recover a timed-out command: the login's last request
   waited for that same command.  The recovery now clears it first (the command
   is re-sent once the login completes, as before).
6. The wake-up socket: see :func:`_pin_wake_socket`.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from typing import Any

from pyghmi.ipmi.private import session as pyghmi_session

LOG = logging.getLogger(__name__)

#: seconds between turns of the loop when no packet arrives
PUMP_INTERVAL = 0.05

_lock = threading.Lock()
_thread: threading.Thread | None = None
_mended = False
#: signalled by the loop thread after every turn
_progress = threading.Condition()
#: sessions whose login awaits its privilege-level request, for a caller to send
_deferred: collections.deque[Any] = collections.deque()


def ensure_event_pump() -> None:
    """Mend pyghmi and start this process's event-loop thread, if not done yet."""
    global _thread
    with _lock:
        _mend_pyghmi()
        if _thread is not None and _thread.is_alive():
            return
        _thread = threading.Thread(target=_pump, name="pyghmi-event-loop", daemon=True)
        _thread.start()


def _pump() -> None:
    while True:
        if not pyghmi_session.iosockets:
            # every socket closed (the last virtual BMC stopped, no session yet)
            time.sleep(PUMP_INTERVAL)
            continue
        try:
            pyghmi_session.Session.wait_for_rsp(timeout=PUMP_INTERVAL)
        except Exception:
            # One bad packet or handler must not stop IPMI for the whole process.
            LOG.exception("pyghmi event loop iteration failed")
        with _progress:
            _progress.notify_all()


def _in_event_loop() -> bool:
    return _thread is not None and threading.get_ident() == _thread.ident


def _mend_pyghmi() -> None:
    global _mended
    if _mended:
        return
    _mended = True
    session_class: Any = pyghmi_session.Session
    _pin_wake_socket(session_class)  # 6
    pyghmi_session.WAITING_SESSIONS = pyghmi_session.KEEPALIVE_SESSIONS  # 1
    pyghmi_session._io_sendto = _sendto  # 2
    _confine_to_event_loop(session_class)  # 3
    _defer_privilege_requests(session_class)  # 4
    _quiet_recoveries(session_class)  # 5


def _pin_wake_socket(session_class: Any) -> None:
    """Make pyghmi's first socket one that is never closed.

    pyghmi's I/O thread waits in ``select`` on the sockets of the moment, for up to
    300 s; other threads wake it by sending a byte to ``iosockets[0]``.  When that
    first socket was a virtual BMC's, closing the BMC left every later wake-up
    going to a socket the I/O thread no longer watched: BMCs started afterwards
    were never answered.  A client socket of pyghmi's own pool, made first, stays
    open for the life of the process.
    """
    if not pyghmi_session.iosockets:
        session_class._assignsocket()


def wake_io_thread() -> None:
    """Make pyghmi's I/O thread look at the current socket list again."""
    sockets = pyghmi_session.iosockets
    if sockets and pyghmi_session.myself is not None:
        with contextlib.suppress(OSError):
            sockets[0].sendto(b"\x01", (pyghmi_session.myself, sockets[0].getsockname()[1]))


def _sendto(sock: Any, packet: bytes, sockaddr: Any) -> None:
    # as pyghmi: a failed send is a packet lost on the way, which a retry resends
    with contextlib.suppress(OSError):
        sock.sendto(packet, sockaddr)


def _confine_to_event_loop(session_class: Any) -> None:
    io_wait = pyghmi_session._io_wait
    process_pktqueue = session_class.process_pktqueue
    wait_for_rsp = session_class.wait_for_rsp.__func__

    def _io_wait(timeout: float, myaddr: Any = None, evq: Any = None) -> Any:
        if _in_event_loop():
            return io_wait(timeout, myaddr, evq)
        return _await_progress(timeout)

    def _process_pktqueue(self: Any) -> Any:
        return process_pktqueue(self) if _in_event_loop() else None

    def _wait_for_rsp(cls: Any, timeout: float | None = None, callout: bool = True) -> Any:
        if _in_event_loop():
            return wait_for_rsp(cls, timeout, callout)
        return _await_progress(timeout)

    pyghmi_session._io_wait = _io_wait
    session_class.process_pktqueue = _process_pktqueue
    session_class.wait_for_rsp = classmethod(_wait_for_rsp)


def _await_progress(timeout: float | None) -> None:
    """In a caller thread: do deferred login steps, then wait for the loop's next turn."""
    _run_deferred()
    limit = PUMP_INTERVAL if timeout is None else max(0.0, min(timeout, PUMP_INTERVAL))
    with _progress:
        _progress.wait(limit)


def _defer_privilege_requests(session_class: Any) -> None:
    global _req_priv_level
    _req_priv_level = session_class._req_priv_level

    def _req_priv_level_outside_loop(self: Any) -> Any:
        if not _in_event_loop():
            return _req_priv_level(self)
        _deferred.append(self)
        return None

    session_class._req_priv_level = _req_priv_level_outside_loop


_req_priv_level: Any = None


def _run_deferred() -> None:
    while True:
        try:
            session = _deferred.popleft()
        except IndexError:
            return
        try:
            _req_priv_level(session)
        except Exception as exc:
            # the login fails; its own caller reads the error from the session
            session.onlogon({"error": f"privilege level request failed: {exc}"})


def _quiet_recoveries(session_class: Any) -> None:
    mark_broken = session_class._mark_broken
    relog = session_class._relog

    def _mark_broken(self: Any, error: Any = None) -> Any:
        self.logged = 0  # no polite logout: it would wait on the command that broke
        return mark_broken(self, error)

    def _relog(self: Any) -> Any:
        self.incommand = False  # the login's last request must not wait on it
        return relog(self)

    session_class._mark_broken = _mark_broken
    session_class._relog = _relog
