"""Running dnsmasq: start, watch, restart on request or after a crash, stop.

One supervisor thread spawns every dnsmasq and waits for it.  The kernel's
parent-death signal (``PR_SET_PDEATHSIG``, set between fork and exec) is tied to
the thread that spawned the child, so that thread lives exactly as long as dnsmasq
should: if metalcast dies, even by SIGKILL, dnsmasq gets SIGTERM.  dnsmasq runs in
a session of its own (a terminal's Ctrl-C reaches metalcast, which then stops it
in order) and writes its log to standard error (``log-facility=-``), appended to a
file.

A dnsmasq that dies is restarted after a delay that doubles with each quick death
(0.5 s up to 30 s).  :meth:`Dnsmasq.restart` is the way to make dnsmasq forget
host entries (see :mod:`metalcast.boot.dnsmasq`); requests that arrive before the
restart begins share it.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from metalcast import cpus
from metalcast.boot.errors import DnsmasqError

log = logging.getLogger("metalcast.boot.dnsmasq")

#: dnsmasq's documented exit codes
_EXIT_MEANINGS = {
    1: "configuration problem",
    2: "network problem",
    3: "file system problem",
    4: "out of memory",
    5: "other problem",
}
#: what to ask the operator when the log says ...
_HINTS = (
    ("Address already in use", "is another DHCP server bound to {where}?"),
    ("unknown interface", "does interface {where} exist?"),
    ("Cannot assign requested address", "is boot.address configured on {where}?"),
    ("Permission denied", "may dnsmasq's user read the boot directory and bind port 67?"),
)
_LOG_TAIL_LINES = 8
_LOG_ROTATE_BYTES = 16 * 1024 * 1024
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Timing:
    """How patient the supervisor is."""

    #: seconds dnsmasq gets to bind its sockets and say "started"
    start_timeout: float = 10.0
    #: seconds between SIGTERM and SIGKILL when stopping
    stop_timeout: float = 5.0
    #: first delay before restarting a dnsmasq that died; doubled after each quick death
    restart_delay: float = 0.5
    max_restart_delay: float = 30.0
    #: a run this long (seconds) counts as healthy: the delay starts over
    stable_after: float = 60.0

    def next_delay(self, previous: float, uptime: float) -> float:
        """The delay before restarting a dnsmasq that ran ``uptime`` seconds."""
        if previous <= 0 or uptime >= self.stable_after:
            return self.restart_delay
        return min(previous * 2, self.max_restart_delay)


@dataclass(frozen=True, slots=True)
class DnsmasqHealth:
    running: bool
    pid: int | None
    #: how many times the supervisor restarted a dnsmasq that died
    restarts: int
    #: why dnsmasq last died, if it did
    last_exit: str | None


def describe_exit(returncode: int, log_tail: Sequence[str], *, where: str) -> str:
    """One line saying how dnsmasq ended, what it logged last and what to check."""
    if returncode < 0:
        how = f"killed by {signal.Signals(-returncode).name}"
    else:
        how = f"exit {returncode}: {_EXIT_MEANINGS.get(returncode, 'unknown')}"
    text = " | ".join(line.strip() for line in log_tail if line.strip()) or "(no log output)"
    hints = [hint.format(where=where) for needle, hint in _HINTS if needle in text]
    return f"{how}: {text}" + (f"; {' '.join(hints)}" if hints else "")


def read_log_tail(path: Path, offset: int, *, lines: int = _LOG_TAIL_LINES) -> list[str]:
    """The last ``lines`` lines written to ``path`` after byte ``offset``."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode(errors="replace").splitlines()[-lines:]


@functools.cache
def _prctl() -> Callable[..., int] | None:
    try:
        func: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return func


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec function: SIGTERM the child when the spawning thread dies; every CPU
    the server was started with (:func:`metalcast.cpus.child_setup`)."""
    prctl = _prctl()
    every_cpu = cpus.child_setup()
    if prctl is None:
        return every_cpu
    parent, sigterm = os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm)
        if os.getppid() != parent:  # the parent died before prctl
            os._exit(1)
        if every_cpu is not None:
            every_cpu()

    return preexec


class _Stopping(Exception):
    """The supervisor was asked to stop while it was starting dnsmasq."""


class Dnsmasq:
    """Runs dnsmasq (``argv``), restarts it when it dies or when asked, stops it.

    ``where`` (``br0 in network namespace prov``) goes into messages.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_file: Path,
        where: str,
        timing: Timing = Timing(),
    ) -> None:
        self._argv = list(argv)
        self._log_file = log_file
        self._where = where
        self._timing = timing
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        # guarded by _cond
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._spawned = 0  # how many dnsmasq were spawned
        self._ready = 0  # the number of the last one that reported "started"
        self._restart_pending = False
        self._first = 1  # the number of the dnsmasq that start() waits for
        self._offset = 0  # where the log of the current dnsmasq starts
        self._start_failure: DnsmasqError | None = None
        self._restarts = 0
        self._last_exit: str | None = None

    @property
    def pid(self) -> int | None:
        """The running dnsmasq's process id."""
        proc = self._process
        return proc.pid if proc is not None and proc.poll() is None else None

    def health(self) -> DnsmasqHealth:
        """Whether dnsmasq runs, its pid and how often it had to be restarted."""
        pid = self.pid
        return DnsmasqHealth(pid is not None, pid, self._restarts, self._last_exit)

    def start(self) -> None:
        """Start dnsmasq and return once it has bound its sockets.

        Raises:
            DnsmasqError: dnsmasq is missing, exited while starting (the message has
                its last log lines and a hint) or did not start in time.
        """
        if self._thread is not None and self._thread.is_alive():
            return
        with self._cond:
            self._stopping = False
            self._start_failure = None
            self._first = self._spawned + 1
        self._wake.clear()
        self._thread = threading.Thread(target=self._supervise, name="dnsmasq", daemon=True)
        self._thread.start()
        with self._cond:
            self._cond.wait_for(
                lambda: self._ready >= self._first or self._start_failure is not None
            )
            failure = self._start_failure
        if failure is not None:
            self._thread.join()
            raise failure

    def stop(self) -> None:
        """Stop dnsmasq: SIGTERM, then SIGKILL after ``timing.stop_timeout`` seconds."""
        with self._cond:
            self._stopping = True
            proc = self._process
            self._cond.notify_all()
        self._wake.set()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        thread = self._thread
        if thread is None:
            return
        thread.join(self._timing.stop_timeout)
        if thread.is_alive() and proc is not None:
            log.warning("dnsmasq (pid %d) ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            thread.join()

    def restart(self) -> bool:
        """Restart dnsmasq so that it reads its host entries afresh, and return once
        the new one runs.  Returns False if dnsmasq is not supervised (not started).

        Raises:
            DnsmasqError: the new dnsmasq did not start in time.
        """
        with self._cond:
            if self._thread is None or not self._thread.is_alive() or self._stopping:
                return False
            target = self._spawned + 1
            proc = None if self._restart_pending else self._process
            self._restart_pending = True
        self._wake.set()
        if proc is not None:
            self._terminate(proc)
        limit = self._timing.stop_timeout + self._timing.start_timeout
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready >= target or self._stopping, limit):
                raise DnsmasqError(
                    f"dnsmasq did not come back within {limit:.0f} s of a restart: "
                    f"{self._last_exit or 'no reason logged'}"
                )
        return True

    def _terminate(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(self._timing.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("dnsmasq (pid %d) ignored SIGTERM; killing it", proc.pid)
            proc.kill()

    # --- the supervisor thread ---

    def _supervise(self) -> None:
        try:
            self._watch()
        except Exception as exc:  # boundary of the thread: never leave start() waiting
            log.exception("the dnsmasq supervisor failed")
            self._fail_first_start(DnsmasqError(f"the dnsmasq supervisor failed: {exc!r}"))

    def _watch(self) -> None:
        delay = 0.0
        while True:
            try:
                proc = self._start_one()
            except _Stopping:
                return
            except DnsmasqError as exc:
                if self._fail_first_start(exc):
                    return
                reason, uptime = str(exc), 0.0
            else:
                began = time.monotonic()
                returncode = proc.wait()
                uptime = time.monotonic() - began
                reason = describe_exit(returncode, self._tail(), where=self._where)
            if self._is_stopping_or_restarting():
                delay = 0.0
                continue
            delay = self._timing.next_delay(delay, uptime)
            self._record_death(reason, delay)
            self._wake.wait(delay)

    def _fail_first_start(self, exc: DnsmasqError) -> bool:
        """Hand ``exc`` to start() if it still waits; returns whether to give up."""
        with self._cond:
            if self._stopping:
                return True
            if self._ready >= self._first:
                return False  # it ran: a crash like any other
            self._start_failure = exc
            self._cond.notify_all()
            return True

    def _is_stopping_or_restarting(self) -> bool:
        with self._cond:
            return self._stopping or self._restart_pending

    def _record_death(self, reason: str, delay: float) -> None:
        with self._cond:
            self._restarts += 1
            self._last_exit = reason
        log.error("dnsmasq died (%s); restarting it in %.1f s", reason, delay)

    def _start_one(self) -> subprocess.Popen[bytes]:
        """Spawn dnsmasq and wait until it says it started.

        Raises:
            _Stopping: stop() was called.
            DnsmasqError: it cannot be run, exited, or was too slow.
        """
        with self._cond:
            if self._stopping:
                raise _Stopping
            self._spawned += 1
            number = self._spawned
            self._restart_pending = False
            self._wake.clear()
            proc, offset = self._spawn()
        self._await_started(proc, offset)
        with self._cond:
            self._ready = number
            self._cond.notify_all()
        log.info("dnsmasq started (pid %d) on %s", proc.pid, self._where)
        return proc

    def _spawn(self) -> tuple[subprocess.Popen[bytes], int]:
        """Start one dnsmasq; returns it and where its log starts.  Holds _cond."""
        self._rotate_log()
        offset = self._log_size()
        try:
            with self._log_file.open("ab") as out:
                proc = subprocess.Popen(
                    self._argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    # only prctl, getppid and sched_setaffinity run in the child: safe beside
                    # other threads
                    preexec_fn=_die_with_parent(),
                )
        except OSError as exc:
            raise DnsmasqError(f"cannot run {self._argv[0]}: {exc}") from exc
        self._process = proc
        self._offset = offset
        return proc, offset

    def _await_started(self, proc: subprocess.Popen[bytes], offset: int) -> None:
        marker = f"dnsmasq[{proc.pid}]: started"
        deadline = time.monotonic() + self._timing.start_timeout
        while time.monotonic() < deadline:
            returncode = proc.poll()
            if returncode is not None:
                reason = describe_exit(returncode, self._tail(), where=self._where)
                raise DnsmasqError(f"dnsmasq exited at start ({reason})")
            if any(marker in line for line in read_log_tail(self._log_file, offset, lines=50)):
                return
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        text = " | ".join(read_log_tail(self._log_file, offset)) or "(no log output)"
        raise DnsmasqError(
            f"dnsmasq did not start within {self._timing.start_timeout:.0f} s: {text}"
        )

    def _tail(self) -> list[str]:
        return read_log_tail(self._log_file, self._offset)

    def _log_size(self) -> int:
        try:
            return self._log_file.stat().st_size
        except FileNotFoundError:
            return 0

    def _rotate_log(self) -> None:
        if self._log_size() > _LOG_ROTATE_BYTES:
            self._log_file.replace(self._log_file.with_name(self._log_file.name + ".1"))
