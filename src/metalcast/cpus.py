"""One Python process, one CPU: the all-in-one server keeps its threads together.

``metalcast server`` is one Python process whose threads (the API's event loop and
worker threads, the conductor's task threads, the periodic tasks) take turns
holding the interpreter's lock.  Left to the kernel on a machine of several CPUs,
those threads run on different CPUs, and each hand-over of the lock wakes a thread
on another CPU whose caches hold none of the interpreter's state.  Measured with
``bench/run`` (500 nodes with a port each, 8 clients, then manage, provide, deploy
and undeploy; docs/benchmarks.md, "One CPU"), the server took 4.0-4.6 ms of CPU per
node and 7.9-8.6 ms per transition free on 2 CPUs, 2.6 ms and 4.7-4.8 ms kept on
one, which made its rates 1.6-1.8 times higher: it cannot use more than about one
CPU's worth of Python anyway.

So the server's threads share one CPU (the ``cpu`` setting): ``auto`` (the default)
picks the least busy CPU at start-up and moves every thread to another one when
other work keeps its CPU busier than another by :data:`MOVE_MARGIN` of a CPU; a
number keeps them on that CPU; ``off`` leaves them to the kernel.  ``auto`` applies
to ``metalcast server`` only: the API and conductor processes of a scale-out
installation share a machine's CPUs among themselves, so they are pinned only to a
number given to each.  Programs the server starts (dnsmasq, qemu-img, xorriso,
``ip``) get back every CPU the server was started with (:func:`child_setup`).

Affinity is per thread on Linux and a new thread inherits its creator's, so pinning
every thread that exists at start-up (before the server starts its own) pins them
all; the follower re-applies it to every thread at each look.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from metalcast.errors import InvalidInput

_log = logging.getLogger(__name__)

#: seconds between two looks at the CPUs' load (a little jitter added, so that two
#: servers on one machine do not move at the same instant)
FOLLOW_INTERVAL = 5.0
#: how much busier (a fraction of one CPU) other work must keep the server's CPU
#: than another CPU before the server moves there
MOVE_MARGIN = 0.3

_PROC_STAT = Path("/proc/stat")
_TASKS = Path("/proc/self/task")


@dataclass
class Pinning:
    """Where this process's threads run, and the CPUs it was started with."""

    cpu: int
    started_with: frozenset[int]
    follow: bool


_pinning: Pinning | None = None


def pinning() -> Pinning | None:
    """This process's pinning, or None when its threads are the kernel's to place."""
    return _pinning


def child_setup() -> Callable[[], None] | None:
    """``subprocess``'s ``preexec_fn`` that gives a child program every CPU this
    process was started with (None when it is not pinned).  It runs in the child
    between fork and exec, and makes one system call."""
    current = _pinning
    if current is None:
        return None
    cpus = current.started_with

    def every_cpu() -> None:
        os.sched_setaffinity(0, cpus)

    return every_cpu


def parse(setting: str) -> int | None:
    """The CPU number of a ``cpu`` setting, None for ``auto`` and ``off``.

    Raises:
        InvalidInput: neither ``auto``, ``off`` nor a CPU number.
    """
    if setting in ("auto", "off"):
        return None
    if setting.isdigit():
        return int(setting)
    raise InvalidInput(f"cpu: {setting!r} is not 'auto', 'off' or a CPU number (0, 1, ...)")


def pin(setting: str, *, server: bool) -> Pinning | None:
    """Keep every thread of this process on one CPU, as ``setting`` says (see the
    module's text); call before the process starts its own threads.

    Returns the pinning, or None when the threads stay the kernel's to place
    (``off``; ``auto`` outside ``metalcast server``; a single CPU to run on).

    Raises:
        InvalidInput: the setting is not understood, or names a CPU this process
            may not run on (the message lists those it may).
    """
    global _pinning
    number = parse(setting)
    started_with = frozenset(os.sched_getaffinity(0))
    if number is not None:
        if number not in started_with:
            allowed = ", ".join(str(cpu) for cpu in sorted(started_with))
            raise InvalidInput(
                f"cpu: this process may not run on CPU {number}; it may run on {allowed}"
            )
        cpu = number
    elif setting == "off" or not server or len(started_with) < 2:
        return None
    else:
        cpu = _idlest(started_with)
    _move_threads(cpu)
    _pinning = Pinning(cpu=cpu, started_with=started_with, follow=number is None)
    _log.info("threads kept on CPU %d (setting cpu=%s)", cpu, setting)
    return _pinning


def follow(stop: threading.Event) -> None:
    """Move an ``auto`` pinning to a less busy CPU when other work crowds its own,
    until ``stop`` is set (in a thread of its own; nothing to do otherwise)."""
    current = _pinning
    if current is None or not current.follow:
        return

    def run() -> None:
        before = _busy_ticks()
        own_before = _own_ticks()
        while not stop.wait(FOLLOW_INTERVAL * random.uniform(0.8, 1.2)):
            after, own_after = _busy_ticks(), _own_ticks()
            elapsed = sum(after.get(-1, (0, 0))) - sum(before.get(-1, (0, 0)))
            target = _crowded(current, before, after, own_after - own_before, elapsed)
            if target is not None:
                _log.info(
                    "CPU %d is busy with other work: threads moved to CPU %d", current.cpu, target
                )
                current.cpu = target
            _move_threads(current.cpu)  # and any thread started since
            before, own_before = after, own_after

    threading.Thread(target=run, name="cpu-follow", daemon=True).start()


def _crowded(
    current: Pinning,
    before: Mapping[int, tuple[int, int]],
    after: Mapping[int, tuple[int, int]],
    own: int,
    elapsed_all: int,
) -> int | None:
    """The CPU to move to, or None to stay: where other work (busy ticks less this
    process's own) left the most room, if that is :data:`MOVE_MARGIN` of a CPU more
    than on the current one."""
    cpus = [cpu for cpu in current.started_with if cpu in after and cpu in before]
    if len(cpus) < 2 or current.cpu not in cpus or elapsed_all <= 0:
        return None
    ticks_per_cpu = elapsed_all / max(1, len(after) - (1 if -1 in after else 0))

    def others(cpu: int) -> float:
        busy = after[cpu][0] - before[cpu][0]
        return busy - own if cpu == current.cpu else busy

    crowd = others(current.cpu)
    best = min((cpu for cpu in cpus if cpu != current.cpu), key=others)
    if crowd - others(best) > MOVE_MARGIN * ticks_per_cpu:
        return best
    return None


def _idlest(cpus: frozenset[int]) -> int:
    """The CPU of ``cpus`` busy the least over a tenth of a second."""
    before = _busy_ticks()
    threading.Event().wait(0.1)
    after = _busy_ticks()
    candidates = sorted(cpus)

    def busy(cpu: int) -> int:
        if cpu not in after or cpu not in before:
            return 0
        return after[cpu][0] - before[cpu][0]

    # the last of equals: CPU 0 takes most of the interrupts on many machines
    return min(reversed(candidates), key=busy)


def _busy_ticks() -> dict[int, tuple[int, int]]:
    """Busy and idle clock ticks of each CPU since boot (-1: all of them), from
    /proc/stat; empty where it cannot be read."""
    out: dict[int, tuple[int, int]] = {}
    try:
        lines = _PROC_STAT.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        if not line.startswith("cpu"):
            continue
        name, *fields = line.split()
        values = [int(value) for value in fields[:8]]
        if len(values) < 5:
            continue
        idle = values[3] + values[4]  # idle, iowait
        key = -1 if name == "cpu" else int(name[3:])
        out[key] = (sum(values) - idle, idle)
    return out


def _own_ticks() -> int:
    """This process's user and system clock ticks."""
    times = os.times()
    return int((times.user + times.system) * os.sysconf("SC_CLK_TCK"))


def _move_threads(cpu: int) -> None:
    try:
        tids = [int(name) for name in os.listdir(_TASKS)]
    except OSError:
        tids = [0]
    for tid in tids:
        try:
            os.sched_setaffinity(tid, {cpu})
        except (ProcessLookupError, PermissionError):
            continue  # a thread that just ended
