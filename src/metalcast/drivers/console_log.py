"""The bounded log of a node's console output, kept by the conductor holding it.

Output is numbered by its position since the log began (an offset), so a reader
asks for "what came after offset N" and learns where to ask next; once the log is
over its size only the last ``limit`` bytes are kept, and a reader that fell behind
is told how much it missed.  Readers may wait for new output (the websocket proxy
long-polls through the conductor's RPC).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: the default size of a node's console log (``conductor.console_log_bytes``)
DEFAULT_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConsoleOutput:
    """Console output from ``offset`` on: ``data``, and where the next read starts."""

    data: bytes
    offset: int
    next_offset: int
    #: bytes between the offset asked for and ``offset``, no longer kept
    missed: int = 0
    #: False once the console was disabled or its session ended
    open: bool = True


class ConsoleLog:
    """The last ``limit`` bytes a console printed.  Thread-safe."""

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._changed = threading.Condition()
        self._buffer = bytearray()
        self._start = 0  # the offset of _buffer[0]
        self.open = False

    @property
    def end(self) -> int:
        with self._changed:
            return self._start + len(self._buffer)

    def append(self, data: bytes) -> None:
        with self._changed:
            self._buffer += data
            excess = len(self._buffer) - self.limit
            if excess > 0:
                del self._buffer[:excess]
                self._start += excess
            self._changed.notify_all()

    def set_open(self, value: bool) -> None:
        """Record whether a console is feeding the log; wakes waiting readers."""
        with self._changed:
            self.open = value
            self._changed.notify_all()

    def read(self, offset: int | None = None, *, wait: float = 0.0) -> ConsoleOutput:
        """Output from ``offset`` (None: the oldest kept), waiting up to ``wait``
        seconds for some, or for the console to open or close."""
        with self._changed:
            if offset is not None and wait > 0:
                was_open = self.open
                self._changed.wait_for(
                    lambda: self._start + len(self._buffer) > offset or self.open != was_open,
                    wait,
                )
            end = self._start + len(self._buffer)
            asked = self._start if offset is None else min(max(offset, 0), end)
            first = max(asked, self._start)
            data = bytes(self._buffer[first - self._start :])
            return ConsoleOutput(
                data=data, offset=first, next_offset=end, missed=first - asked, open=self.open
            )
