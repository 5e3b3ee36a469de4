"""Deploy steps (Ironic 1.69) and deploy templates (1.55): the steps a deploy runs.

A deploy runs, highest priority first (ties by interface: power, management,
deploy, firmware, bios, raid), the union of:

- the deploy steps of the node's interfaces with a priority above 0: the deploy
  interface's core step ``deploy.deploy`` (100) and, for ``direct``,
  ``deploy.write_image`` (80), ``prepare_instance_boot`` (60), ``tear_down_agent``
  (40), ``switch_to_tenant_network`` (30) and ``boot_instance`` (20);
- the steps of the deploy templates named like the node's instance traits
  (``instance_info.traits``, which must be traits of the node);
- the request's ``deploy_steps``.

A requested step overrides a template's of the same interface and step, and either
overrides the driver's (its priority and arguments); a priority of 0 leaves the step
out.  The core step may only be left out, not moved.  The reserved ``hold`` step
(any interface, no arguments) stops the deploy in ``deploy hold`` until ``unhold``.

The request's steps are checked when asked (400, nothing changed); the templates'
when the deploy starts: a template step the node cannot run fails the deploy, its
reason in ``last_error``.  Steps' arguments stay sealed while staged.

Errors::

    InvalidInput      (400) a malformed or unknown requested step; bad instance traits
    OperationFailed   a matching template holds a step the node cannot run
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from metalcast.conductor import steps
from metalcast.conductor.interfaces import OperationFailed
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.db import deploy_templates
from metalcast.db import repository as repo
from metalcast.db.models import Node
from metalcast.drivers.base import StepSpec
from metalcast.drivers.registry import STEP_INTERFACE_ORDER
from metalcast.errors import InvalidInput
from metalcast.interfaces import INTERFACE_NAMES

#: driver_internal_info key: the request's checked deploy steps, until the deploy
#: starts and merges them (Ironic's name)
USER_STEPS = "user_deploy_steps"
#: the core deploy step, which may be left out (priority 0) but not moved
CORE_STEP = ("deploy", "deploy")
#: the largest priority (Ironic stores it in an integer column)
MAX_PRIORITY = 2**31 - 1
_SHAPE = (
    '{"interface": <name>, "step": <name>, "args": {...}, "priority": <integer from 0 to '
    f"{MAX_PRIORITY}>}}"
)


def requested(rt: Runtime, node: Node, asked: Sequence[object] | None) -> list[dict[str, Any]]:
    """The request's deploy steps, checked against the node's interfaces, as staged.

    Raises:
        InvalidInput: a malformed step, an unknown one, bad arguments, the core step
            moved, a step twice; the message says which and what to fix.
    """
    if not asked:
        return []
    known = _known(rt, node)
    checked = [
        _checked(rt, node, item, known=known, where=f"deploy step number {n}")
        for n, item in enumerate(asked, start=1)
    ]
    _check_unique(checked, what="The deploy_steps")
    return checked


def _known(rt: Runtime, node: Node) -> dict[tuple[str, str], StepSpec]:
    return {(s.interface, s.name): s for s in steps.available(rt, node, kind="deploy")}


def _checked(
    rt: Runtime,
    node: Node,
    item: object,
    *,
    known: Mapping[tuple[str, str], StepSpec],
    where: str,
) -> dict[str, Any]:
    """One step as staged.  Raises InvalidInput."""
    if not isinstance(item, dict):
        raise InvalidInput(f"Invalid {where}: expected {_SHAPE}.")
    iface, name, args = item.get("interface"), item.get("step"), item.get("args", {})
    if not isinstance(iface, str) or not isinstance(name, str) or not isinstance(args, dict):
        # the step is not echoed: its args may hold secrets
        raise InvalidInput(f"Invalid {where}: expected {_SHAPE}.")
    priority = _priority(item.get("priority"), where=where)
    if name == steps.HOLD_STEP:
        if priority == 0:
            raise InvalidInput(
                f"Invalid {where}: a 'hold' step needs a priority above 0 to run: the "
                "deploy holds after the steps of higher priority."
            )
        if iface not in INTERFACE_NAMES or args:
            raise InvalidInput(
                f"Invalid {where}: the reserved step 'hold' takes no arguments and an "
                f"interface among {', '.join(INTERFACE_NAMES)}."
            )
        return {"interface": iface, "step": name, "priority": priority, "args": {}}
    spec = known.get((iface, name))
    if spec is None:
        names = ", ".join(sorted(f"{i}.{n}" for i, n in known)) or "none"
        raise InvalidInput(
            f"Invalid {where}: node {node.uuid} has no deploy step '{iface}.{name}' for "
            f"its interfaces. Available deploy steps: {names}."
        )
    if (iface, name) == CORE_STEP and priority > 0:
        raise InvalidInput(
            f"Invalid {where}: deploy.deploy is the core deploy step; it cannot be moved, "
            "only left out with priority 0."
        )
    unexpected = sorted(set(args) - set(spec.argsinfo))
    if unexpected:
        expected = ", ".join(sorted(spec.argsinfo)) or "none"
        raise InvalidInput(
            f"Invalid {where}: deploy step {iface}.{name} takes no argument "
            f"{', '.join(unexpected)[:200]} (its arguments: {expected})."
        )
    staged = steps.as_dict(spec, rt.secret_box.seal(args))
    return {**staged, "priority": priority}


def _priority(value: object, *, where: str) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 12:
        number = int(value)
    if number is None or not 0 <= number <= MAX_PRIORITY:
        raise InvalidInput(
            f"Invalid {where}: its priority must be an integer from 0 to {MAX_PRIORITY} "
            "(0 leaves the step out)."
        )
    return number


def _check_unique(checked: Sequence[Mapping[str, Any]], *, what: str) -> None:
    counts = Counter(f"{s['interface']}.{s['step']}" for s in checked)
    twice = sorted(name for name, n in counts.items() if n > 1)
    if twice:
        raise InvalidInput(
            f"{what} name a step more than once: {', '.join(twice)}. Each interface and "
            "step may be given once."
        )


def check_instance_traits(rt: Runtime, node: Node) -> None:
    """``instance_info.traits``, which select deploy templates, must be a list of the
    node's own traits (as in Ironic).  Raises InvalidInput."""
    traits = instance_traits(rt, node)
    if traits is None:
        return
    with rt.db.read() as conn:
        own = set(repo.get_traits(conn, node.id))
    missing = sorted(set(traits) - own)
    if missing:
        raise InvalidInput(
            f"Cannot specify instance traits that are not also traits of node {node.uuid}: "
            f"{', '.join(missing)[:500]}. Add them to the node's traits "
            "(baremetal node add trait) or remove them from instance_info/traits."
        )


def instance_traits(rt: Runtime, node: Node) -> list[str] | None:
    """The node's instance traits (None: none given).  Raises InvalidInput when they
    are not a list of strings."""
    value = rt.secret_box.reveal(node.instance_info.get("traits"), where="traits")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise InvalidInput("instance_info/traits must be a list of trait names (strings).")
    return value


def plan(task: NodeTask, user: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every step the deploy runs, in order: the driver's, the matching templates',
    ``user`` (the request's, checked).

    Raises:
        OperationFailed: a matching template's step cannot run on the node.
        InvalidInput: the instance traits are not a list of strings.
    """
    chosen = {_key(s): dict(s) for s in from_templates(task)}
    chosen.update({_key(s): dict(s) for s in user})
    driver = [
        steps.as_dict(s)
        for s in steps.available(task.rt, task.node, kind="deploy")
        if s.priority > 0 and (s.interface, s.name) not in chosen
    ]
    merged = driver + [s for s in chosen.values() if s["priority"] > 0]
    return sorted(merged, key=lambda s: (-int(s["priority"]), _order(str(s["interface"]))))


def _key(step: Mapping[str, Any]) -> tuple[str, str]:
    return str(step["interface"]), str(step["step"])


def _order(interface: str) -> int:
    try:
        return STEP_INTERFACE_ORDER.index(interface)
    except ValueError:
        return len(STEP_INTERFACE_ORDER)


def from_templates(task: NodeTask) -> list[dict[str, Any]]:
    """The steps of the deploy templates named like the node's instance traits,
    checked against its interfaces.

    Raises:
        OperationFailed: a template's step cannot run on the node, or two templates
            name the same step.
        InvalidInput: the instance traits are not a list of strings.
    """
    names = instance_traits(task.rt, task.node)
    if not names:
        return []
    with task.rt.db.read() as conn:
        templates = deploy_templates.deploy_templates_named(conn, names)
    known = _known(task.rt, task.node)
    found: list[dict[str, Any]] = []
    try:
        for template in templates:
            for n, item in enumerate(template.steps, start=1):
                where = f"step {n} of deploy template {template.name}"
                found.append(_checked(task.rt, task.node, item, known=known, where=where))
        _check_unique(found, what=f"The deploy templates {', '.join(names)}")
    except InvalidInput as exc:
        impl = task.node.interface("deploy")
        raise OperationFailed("deploy", impl, "apply the deploy templates", exc.message) from exc
    return found


def summary(planned: Sequence[Mapping[str, Any]]) -> str:
    """``bios.apply_configuration (150), deploy.deploy (100), …``: a plan for the
    history."""
    return ", ".join(f"{s['interface']}.{s['step']} ({s['priority']})" for s in planned)
