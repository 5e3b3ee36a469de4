"""Requests, results and errors of :mod:`metalcast.calls` as JSON, and back.

A value crosses between an API process and a conductor as JSON.  Plain JSON values
go as they are; the few other kinds are tagged objects of one key:

=====================  =============================================
``{"~dc": [n, {}]}``   a dataclass of the known set, by name ``n``
``{"~dt": "..."}``     a ``datetime`` (ISO 8601)
``{"~tu": [...]}``     a tuple
``{"~fs": [...]}``     a frozenset
``{"~d": {...}}``      a dict that has one key, and it starts with ``~``
=====================  =============================================

Only the dataclasses named in :data:`KNOWN` are rebuilt (the requests, what they carry
and answer, the caller's context), with the fields this version knows: a message
cannot make the other side build anything else.  A field at its default is not sent
(the receiver fills it in), so a request from a newer version that uses none of its
new fields reads as it did before them; one that holds a type or a field this
version lacks is refused, saying so, rather than half understood (docs/upgrades.md,
"Requests between processes").

An error is the class of a :class:`~metalcast.errors.MetalcastError` (looked up among
that class's subclasses, never imported by name), its message and its extra
attributes; a class the receiving side does not know comes back as the nearest base
class it does know with the same HTTP status.

Errors::

    MetalcastError
    └── CodecError     a message that does not decode (the other side's bug, or not
                       a metalcast message)
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from metalcast import __version__, calls, reports
from metalcast.context import RequestContext
from metalcast.db import models
from metalcast.errors import MetalcastError


class CodecError(MetalcastError):
    """A message that is not a well-formed metalcast RPC value."""


def _known() -> dict[str, type[Any]]:
    out: dict[str, type[Any]] = {}
    for module in (calls, models, reports):
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value):
                out[value.__name__] = value
    out[RequestContext.__name__] = RequestContext
    return out


#: the dataclasses a message may hold, by name
KNOWN: dict[str, type[Any]] = _known()

_TAGS = ("~dc", "~dt", "~tu", "~fs", "~d")
_OLDER = (
    f" (this process runs metalcast {__version__}, older than the sender's: upgrade "
    "conductors before API processes, docs/upgrades.md)"
)


def encode(value: Any) -> Any:
    """``value`` as plain JSON (see the module docstring).

    Raises:
        CodecError: ``value`` holds something that has no JSON form here.
    """
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        out = {_key(k): encode(v) for k, v in value.items()}
        if len(out) == 1 and next(iter(out)).startswith("~"):
            return {"~d": out}
        return out
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, tuple):
        return {"~tu": [encode(v) for v in value]}
    if isinstance(value, frozenset):
        return {"~fs": sorted(encode(v) for v in value)}
    if isinstance(value, datetime):
        return {"~dt": value.isoformat()}
    name = type(value).__name__
    if dataclasses.is_dataclass(value) and KNOWN.get(name) is type(value):
        fields = {
            f.name: encode(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not _at_default(f, getattr(value, f.name))
        }
        return {"~dc": [name, fields]}
    raise CodecError(f"a value of type {name} cannot be sent to another process")


def _at_default(field: dataclasses.Field[Any], value: Any) -> bool:
    """Whether ``value`` is ``field``'s default: such a field is not sent, so that a
    process of the version before, which lacks a field added since, still reads a
    request that does not use it (docs/upgrades.md, rule 2)."""
    if field.default is not dataclasses.MISSING:
        default = field.default
    elif field.default_factory is not dataclasses.MISSING:
        default = field.default_factory()
    else:
        return False
    return type(value) is type(default) and bool(value == default)


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise CodecError(f"a dict key of type {type(key).__name__} cannot be sent")
    return key


def decode(data: Any) -> Any:
    """The value :func:`encode` made ``data`` of.

    Raises:
        CodecError: ``data`` is not an encoded value.
    """
    if data is None or isinstance(data, (str, bool, int, float)):
        return data
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        raise CodecError(f"unexpected JSON value of type {type(data).__name__}")
    if len(data) == 1:
        tag, inner = next(iter(data.items()))
        if tag in _TAGS:
            return _untag(tag, inner)
    return {k: decode(v) for k, v in data.items()}


def _untag(tag: str, inner: Any) -> Any:
    try:
        if tag == "~d":
            return {k: decode(v) for k, v in inner.items()}
        if tag == "~dt":
            return datetime.fromisoformat(inner)
        if tag == "~tu":
            return tuple(decode(v) for v in inner)
        if tag == "~fs":
            return frozenset(decode(v) for v in inner)
        name, fields = inner
        kind = KNOWN.get(name)
        if kind is None:
            raise CodecError(f"unknown type {name!r} in a message{_OLDER}")
        unknown = set(fields) - {f.name for f in dataclasses.fields(kind)}
        if unknown:
            raise CodecError(f"unknown field(s) {', '.join(sorted(unknown))} of {name}{_OLDER}")
        return kind(**{k: decode(v) for k, v in fields.items()})
    except (TypeError, ValueError, AttributeError) as exc:
        raise CodecError(f"malformed {tag} value in a message: {exc}") from None


# ---- errors ------------------------------------------------------------------------

#: attributes some errors carry besides their message
_EXTRA = ("node", "holder", "challenge", "operation")


def encode_error(error: MetalcastError) -> dict[str, Any]:
    """``error`` as JSON: its class path (most derived first), message, status and
    extra attributes."""
    lineage = [
        c.__name__
        for c in type(error).__mro__
        if isinstance(c, type) and issubclass(c, MetalcastError)
    ]
    extra = {a: getattr(error, a) for a in _EXTRA if isinstance(getattr(error, a, None), str)}
    return {
        "lineage": lineage,
        "message": error.message,
        "status": error.status_code,
        "extra": extra,
    }


def decode_error(data: Any) -> MetalcastError:
    """The error :func:`encode_error` described: the first class of its lineage this
    process knows (a :class:`MetalcastError` subclass), with the same status."""
    try:
        lineage = [str(n) for n in data["lineage"]]
        message = str(data["message"])
        status = int(data["status"])
        extra = {str(k): str(v) for k, v in dict(data.get("extra") or {}).items()}
    except (KeyError, TypeError, ValueError):
        return CodecError("a conductor answered with a malformed error")
    classes = _error_classes()
    kind = next((classes[n] for n in lineage if n in classes), MetalcastError)
    error: MetalcastError = kind.__new__(kind)
    Exception.__init__(error, message)
    error.message = message
    for name, value in extra.items():
        if name in _EXTRA:
            setattr(error, name, value)
    if error.status_code != status:
        error.status_code = status
    return error


def _error_classes() -> dict[str, type[MetalcastError]]:
    out: dict[str, type[MetalcastError]] = {}
    todo: list[type[MetalcastError]] = [MetalcastError]
    while todo:
        kind = todo.pop()
        out.setdefault(kind.__name__, kind)
        todo.extend(kind.__subclasses__())
    return out
