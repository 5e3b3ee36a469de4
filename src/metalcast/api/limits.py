"""Limits on input: body size, JSON nesting, integer ranges, characters in paths.

A hostile client must get a clear 4xx, never a 500 and never a server that buffers
whatever it is sent:

- a request body larger than ``api.max_request_bytes`` is refused with 413 as soon
  as it is known to be: at once when ``Content-Length`` says so, else (a chunked
  body) when the bytes read pass the limit; the rest is never read into memory.  The
  provision-state endpoint, which carries config drives, allows that much more plus
  the encoded size of the largest config drive (:func:`body_limit`); the
  dashboard's CSV upload checks its own, smaller limit to answer with a page;
- a JSON document nested deeper than :data:`MAX_DEPTH` levels, or holding a NUL
  character (which PostgreSQL cannot store), is refused with 400;
- integers the database cannot hold are refused by the field that takes them
  (:data:`INT32`, ``metalcast.api.schema.Field``);
- a path or query string holding control characters is refused with 400.

Errors: ``RequestTooLarge`` (413), ``InvalidInput`` (400).
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from starlette.datastructures import Headers
from starlette.types import Message, Receive

from metalcast.config import Settings
from metalcast.errors import InvalidInput, RequestTooLarge

#: the deepest a request's JSON document (and any value it stores) may be nested
MAX_DEPTH = 32
#: the range of an integer column: the smallest one metalcast's databases share
#: (PostgreSQL's ``integer``; SQLite's holds 64 bits)
INT32 = (-(2**31), 2**31 - 1)

_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_PROVISION = re.compile(r"^/v1/nodes/[^/]+/states/provision$")
#: the dashboard's CSV upload refuses files over 1 MiB itself, with a page saying so
#: (metalcast.api.dashboard.enrolment); this is only the backstop for larger bodies
DASHBOARD_UPLOAD = ("POST", "/dashboard/import", 8 * 1024 * 1024)


# ------------------------------------------------------------------- body size


def body_limit(settings: Settings, *, method: str, path: str) -> int:
    """The largest body, in bytes, a request to ``path`` may carry.

    ``PUT /v1/nodes/{node}/states/provision`` may carry a config drive: a gzipped,
    base64-encoded ISO up to ``images.configdrive_max_bytes`` (base64 makes it a
    third larger), beside the usual ``api.max_request_bytes``.
    """
    limit = settings.api.max_request_bytes
    if (method, path) == DASHBOARD_UPLOAD[:2]:
        return max(limit, DASHBOARD_UPLOAD[2])
    if method == "PUT" and _PROVISION.match(path):
        limit += -(-settings.images.configdrive_max_bytes * 4 // 3)
    return limit


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"The request body is larger than the {limit} bytes this endpoint accepts "
        f"(api.max_request_bytes; config drives also images.configdrive_max_bytes)."
    )


def check_declared_length(headers: Headers, limit: int) -> None:
    """Refuse a body whose ``Content-Length`` is over ``limit`` before reading it.

    Raises:
        RequestTooLarge: it is.
        InvalidInput: the header is not a number.
    """
    declared = headers.get("content-length")
    if declared is None:
        return
    if not declared.isascii() or not declared.strip().isdigit() or len(declared) > 20:
        raise InvalidInput(f"Invalid Content-Length header: {declared[:40]!r}.")
    if int(declared) > limit:
        raise too_large(limit)


def limited(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises once the body read so far passes ``limit`` bytes, so
    a chunked body is never read (nor buffered) beyond it.

    Raises (when awaited):
        RequestTooLarge: the body is larger than ``limit``.
    """
    seen = 0

    async def receive_limited() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise too_large(limit)
        return message

    return receive_limited


# ------------------------------------------------------------------ JSON shape


def nesting(value: object) -> int:
    """How deeply ``value`` nests objects and lists (a scalar: 0, ``{}``: 1),
    counted without recursion and only up to one level past :data:`MAX_DEPTH`."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack and deepest <= MAX_DEPTH:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_document(document: object) -> None:
    """Refuse a request's JSON document that is too deep or holds a NUL character.

    Raises:
        InvalidInput: it does, saying which.
    """
    if nesting(document) > MAX_DEPTH:
        raise InvalidInput(
            f"The request body is nested deeper than {MAX_DEPTH} levels of objects "
            "and lists; flatten it."
        )
    if _has_nul(document):
        raise InvalidInput(
            "The request body holds a NUL character (\\u0000), which is not allowed."
        )


def _has_nul(document: object) -> bool:
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


# ------------------------------------------------------------- paths and queries


def check_target(raw_path: bytes, query_string: bytes) -> None:
    """Refuse a request whose path or query string, decoded, holds control
    characters (NUL, newlines, ...): no name, UUID or filter value has them.

    Raises:
        InvalidInput: one does.
    """
    for where, raw in (("path", raw_path), ("query string", query_string.replace(b"+", b" "))):
        if _CONTROL.search(unquote_to_bytes(raw)):
            raise InvalidInput(f"The request {where} holds control characters.")
