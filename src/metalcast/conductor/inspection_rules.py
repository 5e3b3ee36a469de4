"""Inspection rules on a node under its lock: evaluate the stored rules on what an
inspection found and apply the changes they ask for.

The inspect flow calls, once it has the inventory (and before it moves the node
out of ``inspecting``)::

    outcome = apply_rules(task, inventory, plugin_data)
    if outcome.failure is not None:
        task.fail(outcome.failure)      # a fail action, or a rule that could not run

:func:`apply_rules` is :func:`evaluate_rules` then :func:`apply_changes`; both are
usable alone (a test, a dry run).  The rules see the node as :func:`node_view`
shows it: its fields with every secret masked, and its ``traits``; a rule never
reads a BMC password.  Changes to node fields go through the task (written by its
next save, with the node's secrets sealed as any write); traits and ports are
written in the same transaction as the history row that records which rules
changed what (field paths and trait names, no values).

A ``fail`` action, or a rule that cannot run, writes nothing at all, also not what
rules before it asked for (Ironic saves each action as it goes): the node is left
as the inspection found it, and the failure says why.

Errors: none escape for a rule's sake: a rule that cannot be evaluated or applied
(:class:`~metalcast.inspection_rules.engine.RuleFailed`, an unknown driver or
interface, a port the node does not have) becomes ``RulesOutcome.failure``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metalcast.conductor.task import NodeTask
from metalcast.db import inspection_rules as rules_repo
from metalcast.db import repository as repo
from metalcast.db import rows
from metalcast.errors import MetalcastError
from metalcast.inspection_rules import engine
from metalcast.inspection_rules.engine import Change, Rule, RuleFailed
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.secrecy import mask

#: node fields a rule sees (besides ``traits``)
_VIEWED = (
    "uuid", "name", "description", "driver", "driver_info", "properties", "extra",
    "instance_info", "resource_class", "owner", "lessee", "automated_clean",
    "conductor_group", "provision_state", "power_state", "boot_mode",
    *(f"{name}_interface" for name in INTERFACE_NAMES),
)  # fmt: skip
_INTERFACE_FIELDS = frozenset(f"{name}_interface" for name in INTERFACE_NAMES)
MAX_TRAITS = 50


@dataclass(slots=True)
class RulesOutcome:
    """What applying the rules did."""

    changes: list[Change] = field(default_factory=list)
    #: the plugin data after the rules' plugin-data actions
    plugin_data: dict[str, Any] = field(default_factory=dict)
    #: why inspection must fail (a ``fail`` action, or a rule that could not run)
    failure: str | None = None


def node_view(task: NodeTask) -> dict[str, Any]:
    """The node as rules see it: secrets masked, its traits and ports' MACs included."""
    node = task.node
    view = {name: mask(copy.deepcopy(getattr(node, name))) for name in _VIEWED}
    with task.rt.db.read() as conn:
        view["traits"] = repo.get_traits(conn, node.id)
    view["ports"] = [{"uuid": p.uuid, "address": p.address} for p in task.ports()]
    return view


def load_rules(task: NodeTask, phase: str = "main") -> list[Rule]:
    """The stored rules of ``phase``."""
    with task.rt.db.read() as conn:
        stored = rules_repo.rules_of_phase(conn, phase)
    return [
        Rule(
            uuid=r.uuid,
            actions=tuple(r.actions),
            conditions=tuple(r.conditions),
            priority=r.priority,
            sensitive=r.sensitive,
            phase=r.phase,
        )
        for r in stored
    ]


def evaluate_rules(
    task: NodeTask, inventory: Mapping[str, Any], plugin_data: Mapping[str, Any]
) -> list[Change]:
    """The changes the stored rules ask for.  Raises RuleFailed."""
    return engine.evaluate(load_rules(task), node_view(task), inventory, plugin_data)


def apply_rules(
    task: NodeTask, inventory: Mapping[str, Any], plugin_data: Mapping[str, Any]
) -> RulesOutcome:
    """Evaluate the stored rules and apply their changes to ``task``'s node."""
    try:
        changes = evaluate_rules(task, inventory, plugin_data)
    except RuleFailed as exc:
        return RulesOutcome(plugin_data=dict(plugin_data), failure=exc.message)
    return apply_changes(task, changes, plugin_data)


def apply_changes(
    task: NodeTask, changes: Sequence[Change], plugin_data: Mapping[str, Any]
) -> RulesOutcome:
    """Apply ``changes`` (from :func:`~metalcast.inspection_rules.engine.evaluate`) to
    the node of the exclusive ``task`` and record them in its history."""
    outcome = RulesOutcome(changes=list(changes), plugin_data=copy.deepcopy(dict(plugin_data)))
    fields: dict[str, Any] = {}
    traits = _Traits(task)
    port_changes: dict[str, dict[str, Any]] = {}
    try:
        for change in changes:
            if isinstance(change, engine.Fail):
                outcome.failure = f"inspection rule {change.rule} failed the node: {change.message}"
                break
            if isinstance(change, engine.Log):
                task.log.info("inspection rule %s: %s", change.rule, change.message)
            elif isinstance(change, engine.PluginData):
                engine.apply_plugin_data(change, outcome.plugin_data)
            elif isinstance(change, (engine.AddTrait, engine.RemoveTrait)):
                traits.change(change)
            elif isinstance(change, engine.SetPortField):
                _port_change(task, change, port_changes)
            else:
                _field_change(task, change, fields)
        _check_interfaces(task, fields)
    except (RuleFailed, MetalcastError, TypeError) as exc:
        return RulesOutcome(changes=list(changes), plugin_data=dict(plugin_data), failure=str(exc))
    if outcome.failure is None:
        _write(task, outcome, fields, traits, port_changes)
    return outcome


def _current(task: NodeTask, name: str, fields: Mapping[str, Any]) -> Any:
    return copy.deepcopy(fields[name] if name in fields else getattr(task.node, name))


def _field_change(task: NodeTask, change: Change, fields: dict[str, Any]) -> None:
    if isinstance(change, (engine.SetCapability, engine.UnsetCapability)):
        properties = _current(task, "properties", fields)
        capabilities = engine.parse_capabilities(properties.get("capabilities"))
        if isinstance(change, engine.SetCapability):
            capabilities[change.name] = change.value
        else:
            capabilities.pop(change.name, None)
        properties["capabilities"] = engine.format_capabilities(capabilities)
        fields["properties"] = properties
        return
    assert isinstance(change, (engine.SetField, engine.ExtendField, engine.DeleteField))
    top, rest = change.path[0], change.path[1:]
    if not rest:
        fields[top] = _top_level(change, _current(task, top, fields))
        return
    value = _current(task, top, fields)
    if not isinstance(value, dict):
        raise RuleFailed(change.rule, f"node field {top} is not an object")
    if isinstance(change, engine.SetField):
        engine.set_path(value, rest, change.value)
    elif isinstance(change, engine.ExtendField):
        found = engine.get_path(value, rest)
        engine.set_path(value, rest, engine.extended(found, change.value, unique=change.unique))
    else:
        engine.delete_path(value, rest)
    fields[top] = value


def _top_level(change: Change, current: Any) -> Any:
    if isinstance(change, engine.SetField):
        return change.value
    if isinstance(change, engine.ExtendField):
        return engine.extended(current, change.value, unique=change.unique)
    return None  # del-attribute of a whole field: it becomes empty


def _check_interfaces(task: NodeTask, fields: dict[str, Any]) -> None:
    """A driver or interface a rule set must exist (and fit the hardware type)."""
    for name in ("name", "description", "resource_class", "owner", "lessee", "driver"):
        value = fields.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 255 or not value.isprintable():
            raise RuleFailed(
                "(set-attribute)", f"node field {name} must be printable text of at most 255"
            )
    if fields.get("name") is not None and not rows.is_logical_name(fields["name"]):
        raise RuleFailed("(set-attribute)", f"{fields['name']!r} is not a valid node name")
    if "automated_clean" in fields and not isinstance(fields["automated_clean"], bool | None):
        raise RuleFailed("(set-attribute)", "node field automated_clean must be true or false")
    if "driver" not in fields and not _INTERFACE_FIELDS & set(fields):
        return
    node = task.node
    driver = str(fields.get("driver", node.driver))
    requested = {
        name: fields.get(f"{name}_interface", node.interface(name)) for name in INTERFACE_NAMES
    }
    resolved = task.rt.registry.resolve_interfaces(driver, requested)
    fields.update({f"{name}_interface": impl for name, impl in resolved.items()})


def _port_change(
    task: NodeTask, change: engine.SetPortField, changes: dict[str, dict[str, Any]]
) -> None:
    wanted = change.port.lower()
    port = next((p for p in task.ports() if wanted in (p.uuid, p.address.lower())), None)
    if port is None:
        raise RuleFailed(change.rule, f"node {task.uuid} has no port {change.port}")
    values = changes.setdefault(port.uuid, {})
    top, rest = change.path[0], change.path[1:]
    if not rest:
        values[top] = change.value
        return
    current = copy.deepcopy(values.get(top, getattr(port, top)))
    if not isinstance(current, dict):
        raise RuleFailed(change.rule, f"port field {top} is not an object")
    engine.set_path(current, rest, change.value)
    values[top] = current


class _Traits:
    """The node's traits as the rules leave them."""

    def __init__(self, task: NodeTask) -> None:
        with task.rt.db.read() as conn:
            self.before = repo.get_traits(conn, task.node.id)
        self.after = list(self.before)

    def change(self, change: engine.AddTrait | engine.RemoveTrait) -> None:
        self.after = [t for t in self.after if t != change.name]
        if isinstance(change, engine.AddTrait):
            self.after.append(change.name)
        if len(self.after) > MAX_TRAITS:
            raise RuleFailed(change.rule, f"a node has at most {MAX_TRAITS} traits")


def _write(
    task: NodeTask,
    outcome: RulesOutcome,
    fields: dict[str, Any],
    traits: _Traits,
    ports: Mapping[str, Mapping[str, Any]],
) -> None:
    applied = [c for c in outcome.changes if not isinstance(c, engine.Log)]
    if not applied:
        return
    if fields:
        task.update(**fields)
    if set(traits.after) != set(traits.before) or ports:
        with task.rt.db.begin() as conn:
            if set(traits.after) != set(traits.before):
                repo.set_traits(conn, task.node.id, traits.after)
            for port in task.ports():
                if port.uuid in ports:
                    repo.update_port(conn, port.id, dict(ports[port.uuid]))
    task.save(event=history_line(applied), event_type="inspection")


def history_line(changes: Sequence[Change]) -> str:
    """What the rules changed, for the node's history: paths and names, no values."""
    by_rule: dict[str, list[str]] = {}
    for change in changes:
        by_rule.setdefault(change.rule, []).append(_describe(change))
    parts = [f"rule {rule}: {', '.join(what)}" for rule, what in by_rule.items()]
    return "Inspection rules applied: " + "; ".join(parts)


def _describe(change: Change) -> str:
    if isinstance(change, (engine.SetField, engine.ExtendField, engine.DeleteField)):
        verbs = {"SetField": "set", "ExtendField": "extended", "DeleteField": "deleted"}
        return f"{verbs[type(change).__name__]} /{'/'.join(change.path)}"
    if isinstance(change, (engine.SetCapability, engine.UnsetCapability)):
        verb = "set" if isinstance(change, engine.SetCapability) else "unset"
        return f"{verb} capability {change.name}"
    if isinstance(change, (engine.AddTrait, engine.RemoveTrait)):
        verb = "added" if isinstance(change, engine.AddTrait) else "removed"
        return f"{verb} trait {change.name}"
    if isinstance(change, engine.SetPortField):
        return f"set port {change.port} /{'/'.join(change.path)}"
    if isinstance(change, engine.PluginData):
        return f"{change.action} plugin data {'.'.join(change.path)}"
    return type(change).__name__
