"""Evaluating inspection rules: :func:`evaluate` turns rules and a node's inspection
data into the list of changes their actions ask for, without touching anything.

Rules run highest ``priority`` first (in the given order among equals); a rule's
actions run when all its conditions hold.  Each change is applied to a working
copy of the node view and of the plugin data as it is made, so a later rule sees
what an earlier one set (``{node[properties][x]}``), as in Ironic, where actions
save the node at once.  A ``fail`` action ends the evaluation: it is the last
change.  The caller applies the changes (for a node:
:func:`metalcast.conductor.inspection_rules.apply_changes`).

Where metalcast differs from Ironic (docs/api-compat.md): the comparison
conditions interpolate their ``values`` too, and have ``ne``, ``le`` and ``ge``
as ironic-inspector did; ``matches`` matches the whole value; a string that is one
reference keeps the referenced value's type (see :mod:`.formatting`); deleting an
attribute that is not there is no change; ``api-call`` is not offered.

Errors: :class:`RuleFailed` (a rule that cannot be evaluated on this data: a
regular expression or network that is invalid after interpolation, values that
cannot be compared, a change to a field rules may not touch).
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import operator
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metalcast.errors import MetalcastError
from metalcast.inspection_rules import spec
from metalcast.inspection_rules.formatting import interpolate

#: so much of a value a regular expression is matched against
MAX_MATCHED = 65536
_TRAIT = re.compile(r"CUSTOM_[A-Z0-9_]+|[A-Z][A-Z0-9_]*")
_COMPARE: Mapping[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "gt": operator.gt,
    "le": operator.le,
    "ge": operator.ge,
}


class RuleFailed(MetalcastError):
    """A rule could not be evaluated on this node's data."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(f"inspection rule {rule}: {message}")
        self.rule = rule


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule, as the engine needs it."""

    uuid: str
    actions: tuple[Mapping[str, Any], ...]
    conditions: tuple[Mapping[str, Any], ...] = ()
    priority: int = 0
    sensitive: bool = False
    phase: str = "main"

    @classmethod
    def from_mapping(cls, record: Mapping[str, Any]) -> Rule:
        """A rule from its API representation (or a database row's mapping)."""
        return cls(
            uuid=str(record["uuid"]),
            actions=tuple(record.get("actions") or ()),
            conditions=tuple(record.get("conditions") or ()),
            priority=int(record.get("priority") or 0),
            sensitive=bool(record.get("sensitive")),
            phase=str(record.get("phase") or "main"),
        )


# -- the changes ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """What one action asks for; ``rule``: the UUID of the rule it came from."""

    rule: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Fail(Change):
    """Inspection fails with ``message``."""

    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Log(Change):
    message: str
    level: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetField(Change):
    """Set the node field at ``path`` (``("driver_info", "ipmi_address")``)."""

    path: tuple[str, ...]
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtendField(Change):
    """Append ``value`` to the list at ``path`` (if ``unique``: unless it is there)."""

    path: tuple[str, ...]
    value: Any
    unique: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteField(Change):
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetCapability(Change):
    """Set ``name:value`` in ``properties/capabilities``."""

    name: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnsetCapability(Change):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AddTrait(Change):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RemoveTrait(Change):
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetPortField(Change):
    """Set the field at ``path`` of the node's port ``port`` (UUID or MAC)."""

    port: str
    path: tuple[str, ...]
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginData(Change):
    """Set (``set``), append to (``extend``) or remove (``unset``) plugin data."""

    action: str
    path: tuple[str, ...]
    value: Any = None
    unique: bool = False


# -- evaluation -----------------------------------------------------------------------


@dataclass(slots=True)
class _Data:
    """The working copies the rules see, changed as the changes are made."""

    node: dict[str, Any]
    inventory: Mapping[str, Any]
    plugin_data: dict[str, Any]
    changes: list[Change] = field(default_factory=list)

    def context(self, item: object = None, *, looping: bool = False) -> dict[str, Any]:
        found = {"node": self.node, "inventory": self.inventory, "plugin_data": self.plugin_data}
        return {**found, "item": item} if looping else found


def evaluate(
    rules: Sequence[Rule],
    node_view: Mapping[str, Any],
    inventory: Mapping[str, Any],
    plugin_data: Mapping[str, Any],
    *,
    phase: str = "main",
) -> list[Change]:
    """The changes ``rules`` of ``phase`` make to a node seen as ``node_view`` (its API
    fields without secrets, and ``traits``) with this inspection data.

    Raises:
        RuleFailed: a rule cannot be evaluated on this data.
    """
    data = _Data(copy.deepcopy(dict(node_view)), inventory, copy.deepcopy(dict(plugin_data)))
    for rule in sorted(rules, key=lambda r: -r.priority):
        if rule.phase != phase:
            continue
        try:
            if all(_condition(rule, c, data) for c in rule.conditions):
                for change in _actions(rule, data):
                    data.changes.append(change)
                    if isinstance(change, Fail):
                        return data.changes
                    _apply_to_view(change, data)
        except spec.InvalidRule as exc:
            raise RuleFailed(rule.uuid, exc.message) from None
    return data.changes


def _loop_items(rule: Rule, item: Mapping[str, Any], data: _Data) -> list[object] | None:
    """The items of a ``loop``, their own references resolved (``"{inventory[x]}"``)."""
    loop = item.get("loop")
    if isinstance(loop, dict):
        loop = [loop]
    if not isinstance(loop, list) or not loop:
        return None
    return [interpolate(i, data.context(), masked=not rule.sensitive) for i in loop]


def _condition(rule: Rule, condition: Mapping[str, Any], data: _Data) -> bool:
    name, inverted = spec.parse_op(condition["op"], where="condition")
    inverted ^= bool(condition.get("invert", False))
    signature = spec.CONDITIONS[name]
    items = _loop_items(rule, condition, data)
    if items is None:
        return _check(rule, name, signature, condition, data.context()) ^ inverted
    results = []
    for item in items:
        context = data.context(item, looping=True)
        results.append(_check(rule, name, signature, condition, context) ^ inverted)
    multiple = condition.get("multiple", "any")
    if multiple == "all":
        return all(results)
    if multiple == "first":
        return results[0]
    if multiple == "last":
        return results[-1]
    return any(results)


def _args(
    rule: Rule, signature: spec.Signature, item: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """An operation's arguments, interpolated (all of them inside a loop, as Ironic)."""
    args = spec.arguments(signature, copy.deepcopy(item["args"]), where=str(item["op"]))
    looping = "item" in context
    return {
        name: interpolate(value, context, masked=not rule.sensitive)
        if looping or name in signature.formatted
        else value
        for name, value in args.items()
    }


def _check(
    rule: Rule,
    name: str,
    signature: spec.Signature,
    condition: Mapping[str, Any],
    context: Mapping[str, Any],
) -> bool:
    args = _args(rule, signature, condition, context)
    try:
        return _CHECKS[name](args) if name in _CHECKS else _compare(name, args)
    except (TypeError, ValueError, re.error) as exc:
        raise RuleFailed(rule.uuid, f"condition {name} on {args}: {exc}") from None


def _compare(name: str, args: Mapping[str, Any]) -> bool:
    values = args["values"]
    if not isinstance(values, list):
        raise TypeError("values must be a list")
    if args["force_strings"]:
        values = [str(v) for v in values]
    return all(_COMPARE[name](a, b) for a, b in itertools.pairwise(values))


def _text(value: object) -> str:
    return ("None" if value is None else str(value))[:MAX_MATCHED]


def _is_true(value: object) -> bool:
    if isinstance(value, (bool, int, float)):
        return bool(value)
    return isinstance(value, str) and value.lower() in ("yes", "true")


def _is_false(value: object) -> bool:
    if isinstance(value, (bool, int, float)):
        return not value
    if isinstance(value, str):
        return value.lower() in ("no", "false")
    return value is None


def _in_net(args: Mapping[str, Any]) -> bool:
    network = ipaddress.ip_network(str(args["subnet"]), strict=False)
    try:
        address = ipaddress.ip_address(str(args["address"]))
    except ValueError:
        return False  # no address (a NIC without one): not in any network
    return address.version == network.version and address in network


_CHECKS: Mapping[str, Callable[[Mapping[str, Any]], bool]] = {
    "is-empty": lambda a: _text(a["value"]) in ("", "None", "[]", "{}"),
    "is-none": lambda a: _text(a["value"]) == "None",
    "is-true": lambda a: _is_true(a["value"]),
    "is-false": lambda a: _is_false(a["value"]),
    "in-net": _in_net,
    "matches": lambda a: re.fullmatch(str(a["regex"]), _text(a["value"])) is not None,
    "contains": lambda a: re.search(str(a["regex"]), _text(a["value"])) is not None,
    "one-of": lambda a: a["value"] in a["values"],
}


def _actions(rule: Rule, data: _Data) -> Iterator[Change]:
    for action in rule.actions:
        name = str(action["op"])
        signature = spec.ACTIONS[name]
        items = _loop_items(rule, action, data)
        contexts = (
            [data.context()]
            if items is None
            else [data.context(item, looping=True) for item in items]
        )
        for context in contexts:
            yield _change(rule, name, _args(rule, signature, action, context))


def _change(rule: Rule, name: str, args: Mapping[str, Any]) -> Change:
    uuid = rule.uuid
    where = f"action {name}"
    if name == "fail":
        return Fail(rule=uuid, message=str(args["msg"]))
    if name == "log":
        return Log(rule=uuid, message=str(args["msg"]), level=str(args["level"]))
    if name.endswith("-attribute") and name != "set-port-attribute":
        return _attribute_change(uuid, name, args)
    if name == "set-port-attribute":
        spec.check_path(args["path"], spec.PORT_FIELDS, where=where, what="port")
        path = spec.path_parts(args["path"], where=where)
        return SetPortField(rule=uuid, port=str(args["port_id"]), path=path, value=args["value"])
    if name.endswith("-capability"):
        if name == "set-capability":
            return SetCapability(rule=uuid, name=args["name"], value=str(args["value"]))
        return UnsetCapability(rule=uuid, name=args["name"])
    if name.endswith("-trait"):
        trait = str(args["name"])
        if len(trait) > 255 or _TRAIT.fullmatch(trait) is None:
            raise RuleFailed(uuid, f"{trait!r} is not a trait (CUSTOM_[A-Z0-9_]+ or standard)")
        return (AddTrait if name == "add-trait" else RemoveTrait)(rule=uuid, name=trait)
    path = tuple(spec.path_parts(args["path"], where=where))
    verb = name.removesuffix("-plugin-data")
    return PluginData(
        rule=uuid, action=verb, path=path, value=args.get("value"), unique=args.get("unique", False)
    )


def _attribute_change(uuid: str, name: str, args: Mapping[str, Any]) -> Change:
    where = f"action {name}"
    spec.check_path(args["path"], spec.NODE_FIELDS, where=where, what="node")
    path = spec.path_parts(args["path"], where=where)
    if name == "set-attribute":
        return SetField(rule=uuid, path=path, value=args["value"])
    if name == "extend-attribute":
        return ExtendField(rule=uuid, path=path, value=args["value"], unique=args["unique"])
    return DeleteField(rule=uuid, path=path)


# -- the working copies ---------------------------------------------------------------------


def parse_capabilities(text: object) -> dict[str, str]:
    """``"boot_mode:uefi,x:y"`` (or an object, as some clients send) as a mapping."""
    if isinstance(text, Mapping):
        return {str(k): str(v) for k, v in text.items()}
    found = {}
    for pair in str(text or "").split(","):
        key, sep, value = pair.partition(":")
        if sep and key:
            found[key.strip()] = value.strip()
    return found


def format_capabilities(capabilities: Mapping[str, str]) -> str:
    return ",".join(f"{k}:{v}" for k, v in capabilities.items())


def set_path(target: dict[str, Any], path: Sequence[str], value: object) -> None:
    """Set ``target[path[0]][path[1]]... = value``, creating objects on the way."""
    current = target
    for part in path[:-1]:
        below = current.get(part)
        if not isinstance(below, dict):
            below = current[part] = {}
        current = below
    current[path[-1]] = value


def get_path(target: Mapping[str, Any], path: Sequence[str]) -> object:
    current: object = target
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def delete_path(target: dict[str, Any], path: Sequence[str]) -> None:
    parent = get_path(target, path[:-1]) if len(path) > 1 else target
    if isinstance(parent, dict):
        parent.pop(path[-1], None)


def extended(current: object, value: object, *, unique: bool) -> list[Any]:
    """The list at a path after appending ``value``.  Raises TypeError for a non-list."""
    if current is None:
        current = []
    if not isinstance(current, list):
        raise TypeError(f"cannot extend {type(current).__name__}, only a list")
    return current if unique and value in current else [*current, value]


def _apply_to_view(change: Change, data: _Data) -> None:
    node = data.node
    try:
        _apply_node_change(change, node)
    except TypeError as exc:
        raise RuleFailed(change.rule, str(exc)) from None
    if isinstance(change, PluginData):
        apply_plugin_data(change, data.plugin_data)


def _apply_node_change(change: Change, node: dict[str, Any]) -> None:
    if isinstance(change, SetField):
        set_path(node, change.path, change.value)
    elif isinstance(change, ExtendField):
        current = get_path(node, change.path)
        set_path(node, change.path, extended(current, change.value, unique=change.unique))
    elif isinstance(change, DeleteField):
        delete_path(node, change.path)
    elif isinstance(change, (SetCapability, UnsetCapability)):
        properties = node.setdefault("properties", {})
        capabilities = parse_capabilities(properties.get("capabilities"))
        if isinstance(change, SetCapability):
            capabilities[change.name] = change.value
        else:
            capabilities.pop(change.name, None)
        properties["capabilities"] = format_capabilities(capabilities)
    elif isinstance(change, (AddTrait, RemoveTrait)):
        traits = [t for t in node.get("traits") or [] if t != change.name]
        node["traits"] = [*traits, change.name] if isinstance(change, AddTrait) else traits


def apply_plugin_data(change: PluginData, plugin_data: dict[str, Any]) -> None:
    """Apply a plugin-data change to ``plugin_data``.  Raises RuleFailed (extending a
    value that is not a list)."""
    if change.action == "set":
        set_path(plugin_data, change.path, change.value)
    elif change.action == "extend":
        current = get_path(plugin_data, change.path)
        try:
            value = extended(current, change.value, unique=change.unique)
        except TypeError as exc:
            raise RuleFailed(change.rule, str(exc)) from None
        set_path(plugin_data, change.path, value)
    else:
        delete_path(plugin_data, change.path)
