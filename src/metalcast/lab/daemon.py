"""The lab daemon: the process that owns the lab's QEMU machines and their BMCs.

``metalcast lab up`` starts it detached (``metalcast lab serve --lab-dir DIR``, in its
own session, output to ``<lab-dir>/daemon.log``).  It reads ``lab.json``, serves one
virtual IPMI BMC per machine on loopback (:class:`~metalcast.lab.bmc.fleet.Fleet`)
and, for a ``--bmc redfish`` lab, one Redfish service for them all,
each powering a :class:`~metalcast.lab.qemu.QemuMachine`, writes ``daemon.pid`` once
it answers, and on SIGTERM or SIGINT powers every machine off (QMP ``quit``), closes
the BMCs, removes ``daemon.pid`` and exits 0.

The functions that start, find and stop processes by PID live here too: a PID is
only signalled after ``/proc/<pid>/cmdline`` shows it is the lab's own process.

Errors: :class:`~metalcast.lab.errors.LabError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from metalcast.lab.errors import LabError
from metalcast.lab.qemu import QemuMachine
from metalcast.lab.state import (
    DAEMON_LOG_FILE,
    DAEMON_PID_FILE,
    MEDIA_DIR,
    LabState,
    machine_spec,
    read_state,
)

LOG = logging.getLogger(__name__)

#: seconds ``lab up`` waits for the daemon to serve
START_TIMEOUT = 60.0
#: seconds ``lab down`` gives the daemon to power off its machines after SIGTERM
STOP_TIMEOUT = 60.0
_POLL = 0.05


# -- the daemon itself ------------------------------------------------------------------


def serve(lab_dir: Path) -> int:
    """Serve the lab in ``lab_dir`` until SIGTERM or SIGINT; the exit status.

    Raises:
        LabError: there is no lab state in ``lab_dir``.
    """
    from metalcast.lab.bmc.fleet import Fleet, Layout  # pyghmi: only in the daemon
    from metalcast.lab.bmc.sol import SerialLogTail

    state = read_state(lab_dir)
    if state is None:
        raise LabError(f"no lab in {lab_dir}: bring one up with `metalcast lab up`")
    stop = _stop_on_signals()
    machines = [QemuMachine(machine_spec(node), state.qemu_settings) for node in state.nodes]
    layout = Layout(
        address=state.bmc_address,
        ipmi_base_port=state.nodes[0].bmc_port,
        redfish_port=state.redfish_port or 0,
    )
    # each BMC serves its machine's serial port (the file QEMU writes it to) over SOL
    serials = {node.name: SerialLogTail(node.serial_log) for node in state.nodes}
    fleet = Fleet(
        machines,
        username=state.bmc_username,
        password=state.bmc_password,
        layout=layout,
        serials=serials,
        redfish=state.bmc == "redfish",
        media_dir=lab_dir / MEDIA_DIR,
    )
    try:
        fleet.start()
    except OSError as exc:
        LOG.error("cannot serve the BMCs on %s: %s", state.bmc_address, exc)
        return 1
    try:
        _write_pid_file(lab_dir)
        LOG.info("serving %d machines in namespace %s", len(machines), state.netns)
        while not stop.wait(0.5):
            pass
        LOG.info("stopping: powering the machines off")
    finally:
        for machine in machines:
            machine.close()
        fleet.stop()
        (lab_dir / DAEMON_PID_FILE).unlink(missing_ok=True)
    return 0


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    return stop


def _write_pid_file(lab_dir: Path) -> None:
    scratch = lab_dir / f".{DAEMON_PID_FILE}.tmp"
    scratch.write_text(f"{os.getpid()}\n")
    scratch.replace(lab_dir / DAEMON_PID_FILE)


# -- starting and stopping it -----------------------------------------------------------


def daemon_command(lab_dir: Path) -> list[str]:
    """The command line of the lab daemon for ``lab_dir``."""
    return [sys.executable, "-m", "metalcast.cli.main", "lab", "serve", "--lab-dir", str(lab_dir)]


def start_daemon(lab_dir: Path, *, timeout: float = START_TIMEOUT) -> int:
    """Start the lab daemon, detached; its PID once it serves.

    Raises:
        LabError: it exited or did not serve within ``timeout`` (the message has the
            end of its log).
    """
    log_path = lab_dir / DAEMON_LOG_FILE
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            daemon_command(lab_dir),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            cwd="/",
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_pid_file(lab_dir / DAEMON_PID_FILE) == process.pid:
            return process.pid
        if process.poll() is not None:
            raise LabError(
                f"the lab daemon exited with status {process.returncode}; "
                f"the end of {log_path}:\n{_tail(log_path)}"
            )
        time.sleep(_POLL)
    terminate(process.pid, needles=("lab", "serve"), timeout=STOP_TIMEOUT)
    raise LabError(f"the lab daemon did not serve within {timeout:.0f} s:\n{_tail(log_path)}")


def daemon_pid(state: LabState) -> int | None:
    """The PID of the daemon serving ``state``'s lab, if it runs."""
    candidates = [read_pid_file(state.lab_dir / DAEMON_PID_FILE), state.pid]
    for pid in candidates:
        if pid is not None and process_matches(pid, _daemon_needles(state.lab_dir)):
            return pid
    return None


def stop_daemon(state: LabState, *, timeout: float = STOP_TIMEOUT) -> int | None:
    """SIGTERM the lab's daemon and wait for it to exit (SIGKILL after ``timeout``);
    the PID it had, None if it was not running."""
    pid = daemon_pid(state)
    if pid is not None:
        terminate(pid, needles=_daemon_needles(state.lab_dir), timeout=timeout)
    (state.lab_dir / DAEMON_PID_FILE).unlink(missing_ok=True)
    return pid


def _daemon_needles(lab_dir: Path) -> tuple[str, ...]:
    return ("lab", "serve", str(lab_dir))


# -- processes by PID -----------------------------------------------------------------


def read_pid_file(path: Path) -> int | None:
    """The PID in ``path``; None if it is missing or holds no number."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.decode(errors="replace").split("\0")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def process_matches(pid: int, needles: Sequence[str]) -> bool:
    """Whether process ``pid`` is alive and its command line has every one of
    ``needles`` among its arguments (so that a recycled PID is never signalled)."""
    args = _cmdline(pid)
    if not args or _is_zombie(pid):
        return False
    return all(any(needle in arg for arg in args) for needle in needles)


def terminate(pid: int, *, needles: Sequence[str], timeout: float) -> bool:
    """SIGTERM process ``pid`` if it matches ``needles`` and wait up to ``timeout``
    seconds for it to go, then SIGKILL it; whether it was running."""
    if not process_matches(pid, needles):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while process_matches(pid, needles):
            if time.monotonic() > deadline:
                break
            time.sleep(_POLL)
        else:
            return True
        LOG.warning("process %s outlived %s for %.0f s", pid, sig.name, timeout)
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:])
