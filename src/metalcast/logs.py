"""Logging: one format for every logger, structured, with secrets redacted.

The API's access log (structlog) and the conductor's stdlib loggers go through the
same processors: ISO timestamps, level, the bound context (``request_id``, ``node``,
…) and a redaction step (:func:`redact_secrets`): the value of every key that names a
secret, at any depth, becomes ``******``, and every string is scrubbed of the secrets
text may hold (URL passwords, ``password=…``).  The rendered line is scrubbed once
more (:class:`ScrubbingFormatter`), which covers exception messages and tracebacks.
Console rendering for people, JSON (one object per line) for log shippers.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from metalcast.secrecy import MASK, is_secret_key, mask, scrub_text

#: third-party loggers that only need to say what goes wrong
QUIET = ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "httpx")


def redact_secrets(
    _logger: object, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask the value of every key that names a secret (at any depth) and scrub every
    string of the secrets it holds (:func:`metalcast.secrecy.mask`)."""
    for key, value in list(event_dict.items()):
        if is_secret_key(key) and value is not None and value != "":
            event_dict[key] = MASK
        elif isinstance(value, dict | list | str):
            event_dict[key] = mask(value)
    # exceptions are rendered later, and scrubbed with the line (ScrubbingFormatter)
    return event_dict


class ScrubbingFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's formatter, the rendered line scrubbed of secrets: what the
    processors cannot see (an exception's message in its traceback) is covered too."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_text(super().format(record))


def configure_logging(
    *, level: str = "INFO", json: bool = False, stream: TextIO | None = None
) -> None:
    """Send every log record to ``stream`` (stderr) in one format.  Call once per process."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    renderer: Any = structlog.processors.JSONRenderer() if json else render_console
    formatter = ScrubbingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in QUIET:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(max(logging.WARNING, root.level))


#: the widths ConsoleRenderer pads the level and the event to
_LEVEL_WIDTH = 9
_EVENT_WIDTH = 30


def render_console(_logger: object, _name: str, event_dict: MutableMapping[str, Any]) -> str:
    """One line for people, laid out as structlog's ConsoleRenderer without colours
    lays it out (``time [level    ] event   [logger] key=value …``, then a stack or
    traceback on the lines below) at about half its cost: it runs for every request
    and every transition."""
    stack = event_dict.pop("stack", None)
    exc = event_dict.pop("exception", None)
    exc_info = event_dict.pop("exc_info", None)
    head = [
        str(event_dict.pop("timestamp", "")),
        f"[{event_dict.pop('level', ''):<{_LEVEL_WIDTH}}]",
        f"{event_dict.pop('event', '')!s:<{_EVENT_WIDTH}}",
    ]
    name = event_dict.pop("logger", None)
    if name is not None:
        head.append(f"[{name}]")
    head.extend(
        f"{key}={value if isinstance(value, str) else repr(value)}"
        for key, value in sorted(event_dict.items())
    )
    line = " ".join(head).rstrip(" ")
    if stack is not None:
        line += "\n" + stack
        if exc_info or exc is not None:
            line += "\n\n" + "=" * 79 + "\n"
    failure = _exception_of(exc_info)
    if failure is not None:
        line += "\n" + "".join(traceback.format_exception(failure)).rstrip("\n")
    elif exc is not None:
        line += "\n" + str(exc)
    return line


def _exception_of(exc_info: Any) -> BaseException | None:
    """The exception ``exc_info`` (True, an exception or a ``sys.exc_info()`` tuple) names."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple) and len(exc_info) == 3:
        found = exc_info[1]
        return found if isinstance(found, BaseException) else None
    return None


def _identity(
    _logger: object, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return event_dict
