"""The one place errors become responses, in Ironic's shape.

Ironic wraps a JSON document in a JSON string::

    {"error_message": "{\\"faultstring\\": \\"Node x could not be found.\\",
                         \\"faultcode\\": \\"Client\\", \\"debuginfo\\": null}"}

``faultcode`` is ``Client`` for 4xx and ``Server`` for 5xx.  A database that cannot
be reached (restarting, down) is a 503 the client may retry; other unexpected
exceptions become a 500 with a generic message; their traceback goes to the log only.
"""

from __future__ import annotations

import orjson
import sqlalchemy as sa
import structlog

from metalcast.db.engine import is_unreachable
from metalcast.errors import MetalcastError
from metalcast.secrecy import scrub_text

log = structlog.get_logger("metalcast.api")

CONFLICT = "The request conflicts with an existing resource: a unique value is taken."
GENERIC_500 = "An unexpected error prevented the server from fulfilling your request."
DATABASE_UNAVAILABLE = "The database is unavailable right now; retry the request later."

#: messages for HTTP errors the router raises itself
_HTTP_MESSAGES = {
    404: "The resource could not be found.",
    405: "The method specified is not allowed for this resource.",
}


def error_body(status: int, message: str) -> bytes:
    """The encoded body of an error response; no secret the message may hold (a URL
    password, ``password=…``) is in it."""
    inner = {
        "faultstring": scrub_text(message),
        "faultcode": "Client" if status < 500 else "Server",
        "debuginfo": None,
    }
    return orjson.dumps({"error_message": orjson.dumps(inner).decode()})


def from_exception(exc: BaseException, *, request_id: str) -> tuple[int, bytes]:
    """The status and body for ``exc``; logs unexpected errors with their traceback."""
    if isinstance(exc, MetalcastError):
        status = exc.status_code
        if status >= 500:
            log.error("request failed", request_id=request_id, error=exc.message)
        return status, error_body(status, exc.message)
    if isinstance(exc, sa.exc.IntegrityError):
        # a unique value taken by a concurrent request, past the checks made before
        log.warning("integrity error", request_id=request_id, error=str(exc.orig))
        return 409, error_body(409, CONFLICT)
    if is_unreachable(exc):
        # the first line is the driver's message (the host, never the password; the
        # statement and its parameters follow it); no traceback: nothing is wrong here
        first = next(iter(str(exc).splitlines()), type(exc).__name__)
        log.warning("database unavailable", request_id=request_id, error=first)
        return 503, error_body(503, DATABASE_UNAVAILABLE)
    log.exception("unexpected error", request_id=request_id)
    return 500, error_body(500, GENERIC_500)


def from_http_status(status: int, detail: str | None = None) -> bytes:
    """The body for an error the router produced (unknown path, wrong method)."""
    return error_body(status, _HTTP_MESSAGES.get(status) or detail or "Error")
