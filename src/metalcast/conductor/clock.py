"""Time, as the conductor sees it: a seam so that tests can move it by hand."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Protocol

from metalcast.db.repository import utcnow


class Clock(Protocol):
    """Where the conductor reads the time (naive UTC, like every stored timestamp)."""

    def now(self) -> datetime:
        """The current time in UTC, without tzinfo."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return utcnow()


class ManualClock:
    """A clock that only moves when told to (for tests and simulations)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        with self._lock:
            self._now += timedelta(seconds=seconds)
