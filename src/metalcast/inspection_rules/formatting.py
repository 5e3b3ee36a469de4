"""``{inventory[cpu][count]}``: how a rule's arguments refer to inspection data.

Ironic formats arguments with Python's ``str.format``, which also follows attribute
lookups (``{node.__class__}``): here only item lookups are resolved, by key in an
object and by index in a list, from the names a rule may see: ``node`` (a view
without secrets), ``inventory``, ``plugin_data`` and, in a loop, ``item``.  A dot
is a key lookup too (``{node.uuid}`` as in Ironic).

A string that is exactly one reference becomes the value it refers to (an integer
stays an integer); references inside longer text are formatted as text.  A
reference that does not resolve leaves the string as it was, as in Ironic.
Secret-looking keys (:data:`SENSITIVE_KEYS`) read as ``***`` unless the rule is
``sensitive``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: keys whose values a rule sees masked unless it is sensitive (Ironic's list)
SENSITIVE_KEYS = frozenset({"password", "auth_token", "bmc_password"})
MASK = "***"
_REFERENCE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\[\]{}]*\]|\.[A-Za-z0-9_-]+)*)\}")
_STEP = re.compile(r"\[([^\[\]]*)\]|\.([A-Za-z0-9_-]+)")


class Unresolved(LookupError):
    """A reference names something the data does not have."""


def _step(current: object, key: str, *, masked: bool) -> object:
    if isinstance(current, Mapping):
        if key not in current:
            raise Unresolved(key)
        value = current[key]
        return MASK if masked and key in SENSITIVE_KEYS else value
    if isinstance(current, list) and key.lstrip("-").isdigit():
        index = int(key)
        if -len(current) <= index < len(current):
            return current[index]
    raise Unresolved(key)


def resolve(match: re.Match[str], context: Mapping[str, Any], *, masked: bool) -> object:
    """The value one ``{name[key]...}`` reference refers to.  Raises Unresolved."""
    name, steps = match[1], match[2]
    if name not in context:
        raise Unresolved(name)
    current: object = context[name]
    for step in _STEP.finditer(steps):
        current = _step(current, step[1] if step[1] is not None else step[2], masked=masked)
    return mask(current) if masked else current


def mask(value: object) -> object:
    """A copy of ``value`` with every :data:`SENSITIVE_KEYS` value replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: MASK if k in SENSITIVE_KEYS else mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(v) for v in value]
    return value


def _text(value: object) -> str:
    return "None" if value is None else str(value)


def interpolate(value: object, context: Mapping[str, Any], *, masked: bool) -> object:
    """``value`` with its references resolved (recursively in lists and objects)."""
    if isinstance(value, str):
        whole = _REFERENCE.fullmatch(value)
        try:
            if whole is not None:
                return resolve(whole, context, masked=masked)
            return _REFERENCE.sub(lambda m: _text(resolve(m, context, masked=masked)), value)
        except Unresolved:
            return value
    if isinstance(value, list):
        return [interpolate(v, context, masked=masked) for v in value]
    if isinstance(value, dict):
        return {
            str(interpolate(k, context, masked=masked)): interpolate(v, context, masked=masked)
            for k, v in value.items()
        }
    return value
