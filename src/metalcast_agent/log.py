"""The agent's log: console lines for the serial log, a bounded buffer for heartbeats.

Every module logs to the ``metalcast_agent`` logger (stdlib :mod:`logging`). Two
handlers take the records: one prints ``METALCAST-AGENT ...`` to the console, so the
serial log of a node shows its progress; a :class:`LogBuffer` keeps the last 2,000
lines, which heartbeats ship to the conductor oldest first, at most 200 at a time.
Secrets never reach either: the agent token is never logged, and URLs are logged
through :func:`redact_url`.
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections import deque
from typing import TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

LOGGER_NAME = "metalcast_agent"
CONSOLE_PREFIX = "METALCAST-AGENT"
#: lines the agent keeps (older ones are dropped) and sends per heartbeat
BUFFER_LINES = 2000
LINES_PER_HEARTBEAT = 200
_SECRET_WORDS = ("sig", "token", "secret", "password", "passwd", "key", "credential")


def get_logger(name: str = "") -> logging.Logger:
    """The agent's logger, or its child ``name``."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class LogBuffer(logging.Handler):
    """The lines not yet accepted by the conductor, bounded to the newest ``capacity``."""

    def __init__(self, capacity: int = BUFFER_LINES) -> None:
        super().__init__()
        self._lines: deque[tuple[int, str]] = deque(maxlen=capacity)
        self._next_seq = 0
        self._guard = threading.Lock()
        self.setFormatter(_BufferFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        with self._guard:
            for line in text.splitlines():
                self._lines.append((self._next_seq, line))
                self._next_seq += 1

    def pending(self, limit: int = LINES_PER_HEARTBEAT) -> tuple[list[str], int]:
        """The oldest ``limit`` unsent lines and the mark to :meth:`commit` once sent."""
        with self._guard:
            batch = list(itertools.islice(self._lines, limit))
        lines = [line for _, line in batch]
        mark = batch[-1][0] if batch else -1
        return lines, mark

    def commit(self, mark: int) -> None:
        """Forget every line up to ``mark``: the conductor accepted them."""
        with self._guard:
            while self._lines and self._lines[0][0] <= mark:
                self._lines.popleft()

    def __len__(self) -> int:
        with self._guard:
            return len(self._lines)


class _BufferFormatter(logging.Formatter):
    """``2026-11-21T12:00:01Z message``, with the traceback on the following lines."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        record.asctime = self.formatTime(record)
        text = f"{record.asctime} {record.getMessage()}"
        if record.levelno >= logging.WARNING:
            text = f"{record.asctime} {record.levelname}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def setup_logging(buffer: LogBuffer, *, console: TextIO | None = None) -> logging.Logger:
    """Send the agent's records to ``buffer`` and to the console; return the logger."""
    logger = get_logger()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    stream = logging.StreamHandler(console if console is not None else sys.stderr)
    stream.setFormatter(
        logging.Formatter(f"{CONSOLE_PREFIX} %(asctime)s %(levelname)s %(message)s")
    )
    logger.addHandler(stream)
    logger.addHandler(buffer)
    return logger


def redact_url(url: str) -> str:
    """``url`` without a password in its user info or a secret in its query string."""
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        has_password = parts.password is not None
    except ValueError:
        return "<unparseable URL>"
    if not has_password and not any(_is_secret(key) for key, _ in pairs):
        return url
    netloc = parts.netloc
    if has_password:
        netloc = f"{parts.username}:***@{netloc.rpartition('@')[2]}"
    query = urlencode([(k, "***" if _is_secret(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _is_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)
