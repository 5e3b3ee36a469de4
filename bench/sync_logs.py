"""Power-sync passes as the two conductors log them (stdlib only).

Each conductor logs one line when a sync pass ends, with the pass's duration:

metalcast (``metalcast.conductor.periodics``, INFO)::

    2026-11-21T16:46:06.558298Z [info     ] power sync pass: 2 node(s) in 0.026 s
    (out of band: 2) [metalcast.conductor.periodics]

Ironic 39.0.0 (``ironic.conductor.manager``, DEBUG; bench/ironic_env.py turns on
DEBUG for that logger alone)::

    2026-11-21 16:45:10.142 8902 DEBUG ironic.conductor.manager [...] Completed power
    state sync operation, evaluated 1 nodes with 2 workers in 5.12 seconds ...

Ironic's line has no outcome counts ("evaluated" counts its helper threads, not
nodes), so the nodes a pass found changed out of band are its "During
sync_power_state, node X state does not match expected state" warnings logged
since the previous pass ended; its failed reads are its "could not get power
state" warnings.  Both lines carry a wall-clock timestamp: a pass started at the
end's timestamp minus its duration.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_METALCAST_END = re.compile(
    r"^(?P<ts>\S+) \[info\s*\] power sync pass: (?P<nodes>\d+) node\(s\) "
    r"in (?P<seconds>[\d.]+) s \((?P<counts>[^)]*)\)"
)
_IRONIC_TS = r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ "
_IRONIC_END = re.compile(
    _IRONIC_TS + r"DEBUG ironic\.conductor\.manager .*Completed power state sync operation, "
    r"evaluated \d+ nodes with (?P<workers>\d+) workers in (?P<seconds>[\d.]+) seconds"
)
_IRONIC_CHANGED = re.compile(
    _IRONIC_TS + r"WARNING ironic\.conductor\.manager .*During sync_power_state, node \S+ "
    r"state does not match expected state"
)
_IRONIC_FAILED = re.compile(
    _IRONIC_TS + r"WARNING ironic\.conductor\.manager .*During sync_power_state, could not get"
)
#: metalcast's outcomes that mean "the recorded power state was changed"
_METALCAST_CHANGED = ("out of band", "recorded")
_METALCAST_FAILED = ("failed", "timeout", "error")


@dataclass(frozen=True)
class SyncPass:
    """One finished sync pass."""

    ended: float  # wall clock, seconds since the epoch
    seconds: float
    changed: int  # nodes whose recorded power state the pass changed
    failed: int  # nodes whose BMC could not be read
    detail: str  # the pass's own summary, as logged

    @property
    def started(self) -> float:
        return self.ended - self.seconds


class PassLog:
    """Follows a conductor's log file from its current end, collecting sync passes."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        self._offset = path.stat().st_size if path.exists() else 0
        self._partial = ""
        self._changed = 0  # Ironic: warnings since the last pass ended
        self._failed = 0
        self._unread: list[SyncPass] = []
        self.passes: list[SyncPass] = []

    def poll(self) -> list[SyncPass]:
        """Read what was appended since the last call; return the passes it ended."""
        if not self.path.exists():
            return []
        with self.path.open("r", encoding="utf-8", errors="replace") as log:
            log.seek(self._offset)
            text = log.read()
            self._offset = log.tell()
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        found = [p for p in map(self._parse, lines) if p is not None]
        self.passes.extend(found)
        self._unread.extend(found)
        return found

    def wait_next(self, timeout: float, *, interval: float = 0.02) -> SyncPass:
        """The oldest pass not returned yet, waiting for one to end if need be.

        Raises:
            TimeoutError: no pass ended within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while not self._unread:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no power sync pass ended in {self.path} within {timeout:.0f} s"
                )
            time.sleep(interval)
            self.poll()
        return self._unread.pop(0)

    def pending(self) -> int:
        """How many passes ended that :meth:`wait_next` did not return yet."""
        self.poll()
        return len(self._unread)

    def skip_to_now(self) -> None:
        """Forget the passes logged so far: wait_next then returns a later one."""
        self.poll()
        self._unread.clear()

    def _parse(self, line: str) -> SyncPass | None:
        if self.target == "metalcast":
            return _metalcast_pass(line)
        if _IRONIC_CHANGED.match(line):
            self._changed += 1
            return None
        if _IRONIC_FAILED.match(line):
            self._failed += 1
            return None
        match = _IRONIC_END.match(line)
        if match is None:
            return None
        ended = datetime.strptime(match["ts"], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        found = SyncPass(
            ended=ended,
            seconds=float(match["seconds"]),
            changed=self._changed,
            failed=self._failed,
            detail=f"workers: {match['workers']}, changed: {self._changed}",
        )
        self._changed = self._failed = 0
        return found


def _metalcast_pass(line: str) -> SyncPass | None:
    match = _METALCAST_END.match(line)
    if match is None:
        return None
    counts: dict[str, int] = {}
    for part in match["counts"].split(", "):
        outcome, _, number = part.rpartition(": ")
        if outcome:
            counts[outcome] = int(number)
    return SyncPass(
        ended=datetime.fromisoformat(match["ts"]).timestamp(),
        seconds=float(match["seconds"]),
        changed=sum(counts.get(k, 0) for k in _METALCAST_CHANGED),
        failed=sum(counts.get(k, 0) for k in _METALCAST_FAILED),
        detail=f"{match['nodes']} node(s): {match['counts']}",
    )
