"""What an inspection rule may say, and its validation (what ``POST`` and ``PATCH
/v1/inspection_rules`` accept).

A rule has ``conditions`` (all must hold; none: always) and ``actions`` (at least
one), each ``{"op": ..., "args": ...}``.  ``args`` is an object, or a list given in
the order of the operation's arguments (required first, then optional), as in
Ironic.  A condition may be inverted (``"op": "!eq"`` or ``"invert": true``) and
evaluated for each item of a ``loop`` (``"multiple"``: any, all, first or last);
an action may ``loop`` too.

Errors: :class:`InvalidRule` (400).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from metalcast.errors import InvalidInput

#: the only phase Ironic has
PHASES = ("main",)
#: user rules' priorities (Ironic: 0..9999; higher runs first)
MIN_PRIORITY, MAX_PRIORITY = 0, 9999
MAX_DESCRIPTION = 255
#: a rule stays small: so many conditions and actions, loop items, nesting
MAX_ITEMS = 100
MULTIPLE = ("any", "all", "first", "last")
#: the node fields a rule may set, extend or delete (``/driver_info/...``): what
#: an operator may PATCH, never state, identity or the conductor's own records
NODE_FIELDS = frozenset(
    {
        "name", "description", "driver", "driver_info", "properties", "extra",
        "instance_info", "resource_class", "owner", "lessee", "automated_clean",
        "bios_interface", "boot_interface", "console_interface", "deploy_interface",
        "firmware_interface", "inspect_interface", "management_interface",
        "network_interface", "power_interface", "raid_interface", "rescue_interface",
        "storage_interface", "vendor_interface",
    }
)  # fmt: skip
#: the port fields ``set-port-attribute`` may set
PORT_FIELDS = frozenset(
    {"extra", "local_link_connection", "physical_network", "pxe_enabled", "is_smartnic", "name"}
)


class InvalidRule(InvalidInput):
    """A rule the API refuses; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Signature:
    """An operation's arguments: required ones (in list order), then optional ones
    with their defaults; ``formatted`` are interpolated (``{inventory[...]}``)."""

    required: tuple[str, ...]
    optional: Mapping[str, Any]
    formatted: frozenset[str]

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


def _sig(
    required: tuple[str, ...], optional: Mapping[str, Any] | None = None, formatted: str = ""
) -> Signature:
    return Signature(required, dict(optional or {}), frozenset(formatted.split()))


_VALUES = _sig(("values",), {"force_strings": False}, "values")
_VALUE = _sig(("value",), formatted="value")
_REGEX = _sig(("value", "regex"), formatted="value")
CONDITIONS: Mapping[str, Signature] = {
    "eq": _VALUES,
    "ne": _VALUES,
    "lt": _VALUES,
    "gt": _VALUES,
    "le": _VALUES,
    "ge": _VALUES,
    "is-empty": _VALUE,
    "is-none": _VALUE,
    "is-true": _VALUE,
    "is-false": _VALUE,
    "in-net": _sig(("address", "subnet"), formatted="address subnet"),
    "matches": _REGEX,
    "contains": _REGEX,
    "one-of": _sig(("value",), {"values": []}, "value"),
}
_PATH_VALUE = _sig(("path", "value"), formatted="value")
_PATH_VALUE_UNIQUE = _sig(("path", "value"), {"unique": False}, "value")
ACTIONS: Mapping[str, Signature] = {
    "fail": _sig(("msg",), formatted="msg"),
    "log": _sig(("msg",), {"level": "info"}, "msg"),
    "set-attribute": _PATH_VALUE,
    "extend-attribute": _PATH_VALUE_UNIQUE,
    "del-attribute": _sig(("path",)),
    "set-capability": _sig(("name", "value"), formatted="value"),
    "unset-capability": _sig(("name",)),
    "add-trait": _sig(("name",), formatted="name"),
    "remove-trait": _sig(("name",), formatted="name"),
    "set-plugin-data": _PATH_VALUE,
    "extend-plugin-data": _PATH_VALUE_UNIQUE,
    "unset-plugin-data": _sig(("path",)),
    "set-port-attribute": _sig(("port_id", "path", "value"), formatted="port_id value"),
}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def parse_op(op: object, *, where: str) -> tuple[str, bool]:
    """A condition's operation name and whether it is inverted (``"!eq"``)."""
    if not isinstance(op, str):
        raise InvalidRule(f"{where}.op must be a string, not {type(op).__name__}.")
    name = op.strip()
    inverted = name.startswith("!")
    name = name.removeprefix("!").strip()
    if "!" in name:
        raise InvalidRule(f"{where}.op {op!r}: invert with one '!' before the operator (!eq).")
    return name, inverted


def arguments(signature: Signature, args: object, *, where: str) -> dict[str, Any]:
    """``args`` (a list or an object) as an object with the defaults filled in.

    Raises:
        InvalidRule: not a list or object, or missing or unexpected arguments.
    """
    if isinstance(args, list):
        if len(args) > len(signature.names):
            raise InvalidRule(
                f"{where}.args has {len(args)} items; this operation takes at most "
                f"{len(signature.names)}: {', '.join(signature.names)}."
            )
        args = dict(zip(signature.names, args, strict=False))
    if not isinstance(args, dict):
        raise InvalidRule(f"{where}.args must be a list or an object.")
    missing = [name for name in signature.required if name not in args]
    unexpected = sorted(set(args) - set(signature.names))
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing required argument(s): {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected argument(s): {', '.join(map(str, unexpected))}")
        takes = ", ".join(signature.names)
        raise InvalidRule(f"{where}.args: {'; '.join(problems)} (it takes: {takes}).")
    return {**signature.optional, **args}


def _templated(value: object) -> bool:
    return isinstance(value, str) and "{" in value


def path_parts(path: object, *, where: str) -> tuple[str, ...]:
    """``/driver_info/ipmi_address`` or ``driver_info.ipmi_address`` as its parts."""
    if not isinstance(path, str) or not path.strip("/. "):
        raise InvalidRule(f"{where}.args.path must be a non-empty string such as /properties/x.")
    parts = path.strip("/").split("/") if "/" in path else path.split(".")
    if any(not part for part in parts):
        raise InvalidRule(f"{where}.args.path {path!r} has an empty part.")
    return tuple(parts)


def check_path(path: object, fields: frozenset[str], *, where: str, what: str) -> None:
    """A path whose first part is one of ``fields`` (unless it is a template)."""
    parts = path_parts(path, where=where)
    if not _templated(parts[0]) and parts[0] not in fields:
        raise InvalidRule(
            f"{where}.args.path {path!r}: a rule may change only these {what} fields: "
            f"{', '.join(sorted(fields))}."
        )


def _check_loop(item: Mapping[str, Any], *, where: str) -> None:
    loop = item.get("loop")
    if loop is not None and not isinstance(loop, (list, dict)):
        raise InvalidRule(f"{where}.loop must be a list or an object.")
    if isinstance(loop, list) and len(loop) > MAX_ITEMS:
        raise InvalidRule(f"{where}.loop has more than {MAX_ITEMS} items.")


def _check_keys(item: object, allowed: frozenset[str], *, where: str) -> Mapping[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRule(f"{where} must be an object with op and args.")
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise InvalidRule(
            f"{where} has unknown key(s) {', '.join(map(str, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
    if "op" not in item or "args" not in item:
        raise InvalidRule(f"{where} needs both op and args.")
    return item


_CONDITION_KEYS = frozenset({"op", "args", "invert", "loop", "multiple"})
_ACTION_KEYS = frozenset({"op", "args", "loop"})


def check_condition(index: int, item: object) -> dict[str, Any]:
    """One condition, checked.  Raises InvalidRule."""
    where = f"conditions[{index}]"
    condition = _check_keys(item, _CONDITION_KEYS, where=where)
    name, _ = parse_op(condition["op"], where=where)
    if name not in CONDITIONS:
        raise InvalidRule(
            f"{where}.op {name!r} is not a condition; use one of {', '.join(CONDITIONS)} "
            "(prefix ! to invert)."
        )
    args = arguments(CONDITIONS[name], condition["args"], where=where)
    if not isinstance(condition.get("invert", False), bool):
        raise InvalidRule(f"{where}.invert must be true or false.")
    if condition.get("multiple", "any") not in MULTIPLE:
        raise InvalidRule(f"{where}.multiple must be one of {', '.join(MULTIPLE)}.")
    _check_loop(condition, where=where)
    _check_condition_args(name, args, where=where)
    return dict(condition)


def _check_condition_args(name: str, args: Mapping[str, Any], *, where: str) -> None:
    if name in ("matches", "contains") and not _templated(args["regex"]):
        try:
            re.compile(str(args["regex"]))
        except re.error as exc:
            raise InvalidRule(f"{where}.args.regex is not a regular expression: {exc}.") from None
    if name == "in-net" and not _templated(args["subnet"]):
        try:
            ipaddress.ip_network(str(args["subnet"]), strict=False)
        except ValueError:
            raise InvalidRule(
                f"{where}.args.subnet {args['subnet']!r} is not a network such as 10.0.0.0/8."
            ) from None
    # force_strings: any value, read as true or false when the rule runs (Ironic checks
    # no type; a list of positional args puts whatever comes second there)
    if "values" in args and not (isinstance(args["values"], list) or _templated(args["values"])):
        raise InvalidRule(f"{where}.args.values must be a list.")


def check_action(index: int, item: object) -> dict[str, Any]:
    """One action, checked.  Raises InvalidRule."""
    where = f"actions[{index}]"
    action = _check_keys(item, _ACTION_KEYS, where=where)
    name = action["op"]
    if not isinstance(name, str) or name not in ACTIONS:
        raise InvalidRule(f"{where}.op {name!r} is not an action; use one of {', '.join(ACTIONS)}.")
    args = arguments(ACTIONS[name], action["args"], where=where)
    _check_loop(action, where=where)
    if name in ("set-attribute", "extend-attribute", "del-attribute"):
        check_path(args["path"], NODE_FIELDS, where=where, what="node")
    elif name == "set-port-attribute":
        check_path(args["path"], PORT_FIELDS, where=where, what="port")
    elif name.endswith("plugin-data"):
        path_parts(args["path"], where=where)
    elif name in ("set-capability", "unset-capability"):
        capability = args["name"]
        if not isinstance(capability, str) or not capability or set(capability) & set(":,"):
            raise InvalidRule(f"{where}.args.name must be a capability name without : or ,.")
    elif name == "log" and args["level"] not in LOG_LEVELS:
        raise InvalidRule(f"{where}.args.level must be one of {', '.join(LOG_LEVELS)}.")
    if "unique" in args and not isinstance(args["unique"], bool):
        raise InvalidRule(f"{where}.args.unique must be true or false.")
    return dict(action)


def check_conditions(value: object) -> list[dict[str, Any]]:
    """Raises InvalidRule."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise InvalidRule(f"conditions must be a list of at most {MAX_ITEMS} conditions.")
    return [check_condition(i, c) for i, c in enumerate(value)]


def check_actions(value: object) -> list[dict[str, Any]]:
    """Raises InvalidRule."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ITEMS:
        raise InvalidRule(f"actions must be a list of 1 to {MAX_ITEMS} actions.")
    return [check_action(i, a) for i, a in enumerate(value)]


def check_priority(value: object) -> int:
    """Raises InvalidRule."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRule(f"priority must be an integer from {MIN_PRIORITY} to {MAX_PRIORITY}.")
    if not MIN_PRIORITY <= value <= MAX_PRIORITY:
        raise InvalidRule(
            f"priority {value} is out of range: user rules have {MIN_PRIORITY} to "
            f"{MAX_PRIORITY} (higher runs first)."
        )
    return value


def check_phase(value: object) -> str:
    """Raises InvalidRule."""
    if value not in PHASES:
        raise InvalidRule(f"phase {value!r} is not one of: {', '.join(PHASES)}.")
    return str(value)
