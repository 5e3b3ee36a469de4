"""The provision and power state machine: one declarative table, pure, no I/O.

State and verb strings are Ironic's exact wire strings, so that people and tools that
know Ironic know metalcast. Only the conductor's node task applies a transition; the
API uses :func:`advance` to reject an impossible request before anything is written.

Errors::

    MetalcastError
    └── InvalidTransition   (no transition for that state and event; HTTP 400)
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from metalcast.errors import MetalcastError


class ProvisionState(enum.StrEnum):
    """A node's provision state, as Ironic spells it."""

    ENROLL = "enroll"
    VERIFYING = "verifying"
    MANAGEABLE = "manageable"
    AVAILABLE = "available"
    ACTIVE = "active"
    DEPLOYING = "deploying"
    DEPLOYWAIT = "wait call-back"
    DEPLOYFAIL = "deploy failed"
    DEPLOYHOLD = "deploy hold"
    DELETING = "deleting"
    CLEANING = "cleaning"
    CLEANWAIT = "clean wait"
    CLEANFAIL = "clean failed"
    CLEANHOLD = "clean hold"
    INSPECTING = "inspecting"
    INSPECTWAIT = "inspect wait"
    INSPECTFAIL = "inspect failed"
    ADOPTING = "adopting"
    ADOPTFAIL = "adopt failed"
    RESCUING = "rescuing"
    RESCUEWAIT = "rescue wait"
    RESCUEFAIL = "rescue failed"
    RESCUE = "rescue"
    UNRESCUING = "unrescuing"
    UNRESCUEFAIL = "unrescue failed"
    SERVICING = "servicing"
    SERVICEWAIT = "service wait"
    SERVICEFAIL = "service failed"
    SERVICEHOLD = "service hold"
    ERROR = "error"


class Event(enum.StrEnum):
    """What moves a node: operator verbs plus the conductor's internal outcomes."""

    # operator verbs (the ``target`` of PUT /v1/nodes/{node}/states/provision)
    MANAGE = "manage"
    PROVIDE = "provide"
    INSPECT = "inspect"
    CLEAN = "clean"
    DEPLOY = "deploy"
    REBUILD = "rebuild"
    DELETE = "deleted"
    ABORT = "abort"
    ADOPT = "adopt"
    RESCUE = "rescue"
    UNRESCUE = "unrescue"
    SERVICE = "service"
    UNHOLD = "unhold"
    # internal outcomes, raised by the conductor only
    DONE = "done"
    FAIL = "fail"
    WAIT = "wait"
    RESUME = "resume"
    ERROR = "error"
    HOLD = "hold"  #: a ``hold`` step: the node waits for the operator's unhold


class PowerState(enum.StrEnum):
    """A node's power state (``None`` in the API means unknown)."""

    ON = "power on"
    OFF = "power off"
    ERROR = "error"


class PowerTarget(enum.StrEnum):
    """What an operator may ask of PUT /v1/nodes/{node}/states/power."""

    ON = "power on"
    OFF = "power off"
    REBOOT = "rebooting"
    SOFT_OFF = "soft power off"
    SOFT_REBOOT = "soft rebooting"


class Fault(enum.StrEnum):
    """Why the conductor put a node in maintenance (its ``fault``): Ironic's faults,
    the only values of the node list's ``fault`` filter."""

    POWER_FAILURE = "power failure"
    CLEAN_FAILURE = "clean failure"
    RESCUE_ABORT_FAILURE = "rescue abort failure"
    SERVICE_FAILURE = "service failure"


PS = ProvisionState

#: Verbs accepted in the API's ``target`` and the event each one raises.
#: ``active`` and ``undeploy`` are the API spellings of deploy and deleted.
#: the states an indicator (LED) may be in: Ironic's ``indicator_states`` (1.63)
INDICATOR_STATES: tuple[str, ...] = ("on", "off", "blinking", "unknown")

VERBS: Mapping[str, Event] = {
    "manage": Event.MANAGE,
    "provide": Event.PROVIDE,
    "inspect": Event.INSPECT,
    "clean": Event.CLEAN,
    "active": Event.DEPLOY,
    "deploy": Event.DEPLOY,
    "rebuild": Event.REBUILD,
    "deleted": Event.DELETE,
    "undeploy": Event.DELETE,
    "abort": Event.ABORT,
    "adopt": Event.ADOPT,
    "rescue": Event.RESCUE,
    "unrescue": Event.UNRESCUE,
    "service": Event.SERVICE,
    "unhold": Event.UNHOLD,
}

STABLE: frozenset[ProvisionState] = frozenset(
    {PS.ENROLL, PS.MANAGEABLE, PS.AVAILABLE, PS.ACTIVE, PS.RESCUE, PS.ERROR}
)
WORK: frozenset[ProvisionState] = frozenset(
    {
        PS.VERIFYING,
        PS.DEPLOYING,
        PS.DELETING,
        PS.CLEANING,
        PS.INSPECTING,
        PS.ADOPTING,
        PS.RESCUING,
        PS.UNRESCUING,
        PS.SERVICING,
    }
)
WAIT: frozenset[ProvisionState] = frozenset(
    {PS.DEPLOYWAIT, PS.CLEANWAIT, PS.INSPECTWAIT, PS.RESCUEWAIT, PS.SERVICEWAIT}
)
FAILURE: frozenset[ProvisionState] = frozenset(
    {
        PS.DEPLOYFAIL,
        PS.CLEANFAIL,
        PS.INSPECTFAIL,
        PS.ADOPTFAIL,
        PS.RESCUEFAIL,
        PS.UNRESCUEFAIL,
        PS.SERVICEFAIL,
        PS.ERROR,
    }
)
#: States a ``hold`` step leaves a node in until the operator's ``unhold`` (or
#: ``abort``); they have no timeout.
HOLD: frozenset[ProvisionState] = frozenset({PS.DEPLOYHOLD, PS.CLEANHOLD, PS.SERVICEHOLD})
#: States in which a ramdisk agent may look its node up and heartbeat (Ironic's
#: lookup-allowed states): the wait states and the work states that boot an agent.
AGENT_STATES: frozenset[ProvisionState] = (
    WAIT | HOLD | frozenset({PS.DEPLOYING, PS.CLEANING, PS.INSPECTING, PS.RESCUING, PS.SERVICING})
)
#: States in which a node may be deleted from the inventory.
DELETE_ALLOWED: frozenset[ProvisionState] = frozenset(
    {PS.ENROLL, PS.MANAGEABLE, PS.AVAILABLE, PS.INSPECTFAIL, PS.CLEANFAIL, PS.ADOPTFAIL}
)
#: States in which the API may change a node's driver and interface fields.
UPDATE_ALLOWED: frozenset[ProvisionState] = frozenset(
    {PS.ENROLL, PS.MANAGEABLE, PS.AVAILABLE, PS.INSPECTFAIL, PS.CLEANFAIL, PS.ADOPTFAIL}
)


@dataclass(frozen=True, slots=True)
class Transition:
    """One edge of the state machine: ``event`` in ``source`` leads to ``target``."""

    source: ProvisionState
    event: Event
    target: ProvisionState


def _t(source: ProvisionState, event: Event, target: ProvisionState) -> Transition:
    return Transition(source, event, target)


E = Event

TRANSITIONS: tuple[Transition, ...] = (
    # enrolment and verification of the BMC
    _t(PS.ENROLL, E.MANAGE, PS.VERIFYING),
    _t(PS.VERIFYING, E.DONE, PS.MANAGEABLE),
    _t(PS.VERIFYING, E.FAIL, PS.ENROLL),
    _t(PS.AVAILABLE, E.MANAGE, PS.MANAGEABLE),
    # making a node available: automated cleaning
    _t(PS.MANAGEABLE, E.PROVIDE, PS.CLEANING),
    _t(PS.MANAGEABLE, E.CLEAN, PS.CLEANING),
    _t(PS.CLEANING, E.DONE, PS.AVAILABLE),
    _t(PS.CLEANING, E.MANAGE, PS.MANAGEABLE),
    _t(PS.CLEANING, E.WAIT, PS.CLEANWAIT),
    _t(PS.CLEANING, E.FAIL, PS.CLEANFAIL),
    _t(PS.CLEANWAIT, E.RESUME, PS.CLEANING),
    _t(PS.CLEANWAIT, E.FAIL, PS.CLEANFAIL),
    _t(PS.CLEANWAIT, E.ABORT, PS.CLEANFAIL),
    _t(PS.CLEANFAIL, E.MANAGE, PS.MANAGEABLE),
    # a hold step: the operator looks, then lets cleaning go on or aborts it
    _t(PS.CLEANING, E.HOLD, PS.CLEANHOLD),
    _t(PS.CLEANWAIT, E.HOLD, PS.CLEANHOLD),
    _t(PS.CLEANHOLD, E.UNHOLD, PS.CLEANWAIT),
    _t(PS.CLEANHOLD, E.ABORT, PS.CLEANFAIL),
    # inspection
    _t(PS.MANAGEABLE, E.INSPECT, PS.INSPECTING),
    _t(PS.INSPECTING, E.DONE, PS.MANAGEABLE),
    _t(PS.INSPECTING, E.WAIT, PS.INSPECTWAIT),
    _t(PS.INSPECTING, E.FAIL, PS.INSPECTFAIL),
    _t(PS.INSPECTWAIT, E.DONE, PS.MANAGEABLE),
    _t(PS.INSPECTWAIT, E.FAIL, PS.INSPECTFAIL),
    _t(PS.INSPECTWAIT, E.ABORT, PS.INSPECTFAIL),
    _t(PS.INSPECTFAIL, E.MANAGE, PS.MANAGEABLE),
    _t(PS.INSPECTFAIL, E.INSPECT, PS.INSPECTING),
    # deployment
    _t(PS.AVAILABLE, E.DEPLOY, PS.DEPLOYING),
    _t(PS.DEPLOYING, E.DONE, PS.ACTIVE),
    _t(PS.DEPLOYING, E.WAIT, PS.DEPLOYWAIT),
    _t(PS.DEPLOYING, E.FAIL, PS.DEPLOYFAIL),
    _t(PS.DEPLOYWAIT, E.RESUME, PS.DEPLOYING),
    _t(PS.DEPLOYWAIT, E.FAIL, PS.DEPLOYFAIL),
    _t(PS.DEPLOYWAIT, E.ABORT, PS.DEPLOYFAIL),
    _t(PS.DEPLOYWAIT, E.DELETE, PS.DELETING),
    # a hold deploy step (API 1.85): the operator looks, then unholds or aborts
    _t(PS.DEPLOYING, E.HOLD, PS.DEPLOYHOLD),
    _t(PS.DEPLOYWAIT, E.HOLD, PS.DEPLOYHOLD),
    _t(PS.DEPLOYHOLD, E.UNHOLD, PS.DEPLOYWAIT),
    _t(PS.DEPLOYHOLD, E.ABORT, PS.DEPLOYFAIL),
    _t(PS.DEPLOYFAIL, E.DEPLOY, PS.DEPLOYING),
    _t(PS.DEPLOYFAIL, E.REBUILD, PS.DEPLOYING),
    _t(PS.DEPLOYFAIL, E.DELETE, PS.DELETING),
    _t(PS.ACTIVE, E.REBUILD, PS.DEPLOYING),
    # tearing down: deleting, then automated cleaning
    _t(PS.ACTIVE, E.DELETE, PS.DELETING),
    _t(PS.DELETING, E.CLEAN, PS.CLEANING),
    _t(PS.DELETING, E.ERROR, PS.ERROR),
    _t(PS.ERROR, E.REBUILD, PS.DEPLOYING),
    _t(PS.ERROR, E.DELETE, PS.DELETING),
    # adoption of a node that already runs its workload
    _t(PS.MANAGEABLE, E.ADOPT, PS.ADOPTING),
    _t(PS.ADOPTING, E.DONE, PS.ACTIVE),
    _t(PS.ADOPTING, E.FAIL, PS.ADOPTFAIL),
    _t(PS.ADOPTFAIL, E.ADOPT, PS.ADOPTING),
    _t(PS.ADOPTFAIL, E.MANAGE, PS.MANAGEABLE),
    # rescue
    _t(PS.ACTIVE, E.RESCUE, PS.RESCUING),
    _t(PS.RESCUING, E.DONE, PS.RESCUE),
    _t(PS.RESCUING, E.WAIT, PS.RESCUEWAIT),
    _t(PS.RESCUING, E.FAIL, PS.RESCUEFAIL),
    _t(PS.RESCUEWAIT, E.DONE, PS.RESCUE),
    _t(PS.RESCUEWAIT, E.FAIL, PS.RESCUEFAIL),
    _t(PS.RESCUEWAIT, E.ABORT, PS.RESCUEFAIL),
    _t(PS.RESCUEWAIT, E.DELETE, PS.DELETING),
    _t(PS.RESCUE, E.RESCUE, PS.RESCUING),
    _t(PS.RESCUE, E.UNRESCUE, PS.UNRESCUING),
    _t(PS.RESCUE, E.DELETE, PS.DELETING),
    _t(PS.UNRESCUING, E.DONE, PS.ACTIVE),
    _t(PS.UNRESCUING, E.FAIL, PS.UNRESCUEFAIL),
    _t(PS.RESCUEFAIL, E.RESCUE, PS.RESCUING),
    _t(PS.RESCUEFAIL, E.UNRESCUE, PS.UNRESCUING),
    _t(PS.RESCUEFAIL, E.DELETE, PS.DELETING),
    _t(PS.UNRESCUEFAIL, E.RESCUE, PS.RESCUING),
    _t(PS.UNRESCUEFAIL, E.UNRESCUE, PS.UNRESCUING),
    _t(PS.UNRESCUEFAIL, E.DELETE, PS.DELETING),
    # servicing an active node in place
    _t(PS.ACTIVE, E.SERVICE, PS.SERVICING),
    _t(PS.SERVICING, E.DONE, PS.ACTIVE),
    _t(PS.SERVICING, E.WAIT, PS.SERVICEWAIT),
    _t(PS.SERVICING, E.FAIL, PS.SERVICEFAIL),
    _t(PS.SERVICEWAIT, E.RESUME, PS.SERVICING),
    _t(PS.SERVICEWAIT, E.FAIL, PS.SERVICEFAIL),
    _t(PS.SERVICEWAIT, E.ABORT, PS.SERVICEFAIL),
    _t(PS.SERVICEFAIL, E.SERVICE, PS.SERVICING),
    _t(PS.SERVICEFAIL, E.RESCUE, PS.RESCUING),
    _t(PS.SERVICEFAIL, E.ABORT, PS.ACTIVE),
    _t(PS.SERVICING, E.HOLD, PS.SERVICEHOLD),
    _t(PS.SERVICEWAIT, E.HOLD, PS.SERVICEHOLD),
    _t(PS.SERVICEHOLD, E.UNHOLD, PS.SERVICEWAIT),
    _t(PS.SERVICEHOLD, E.ABORT, PS.SERVICEFAIL),
    _t(PS.SERVICEHOLD, E.FAIL, PS.SERVICEFAIL),
)

_TABLE: Mapping[tuple[ProvisionState, Event], ProvisionState] = {
    (t.source, t.event): t.target for t in TRANSITIONS
}

#: The state a work or wait state falls into when its work fails or times out.
FAILURE_OF: Mapping[ProvisionState, ProvisionState] = {
    PS.VERIFYING: PS.ENROLL,
    PS.DEPLOYING: PS.DEPLOYFAIL,
    PS.DEPLOYWAIT: PS.DEPLOYFAIL,
    PS.DELETING: PS.ERROR,
    PS.CLEANING: PS.CLEANFAIL,
    PS.CLEANWAIT: PS.CLEANFAIL,
    PS.INSPECTING: PS.INSPECTFAIL,
    PS.INSPECTWAIT: PS.INSPECTFAIL,
    PS.ADOPTING: PS.ADOPTFAIL,
    PS.RESCUING: PS.RESCUEFAIL,
    PS.RESCUEWAIT: PS.RESCUEFAIL,
    PS.UNRESCUING: PS.UNRESCUEFAIL,
    PS.SERVICING: PS.SERVICEFAIL,
    PS.SERVICEWAIT: PS.SERVICEFAIL,
    PS.DEPLOYHOLD: PS.DEPLOYFAIL,
    PS.CLEANHOLD: PS.CLEANFAIL,
    PS.SERVICEHOLD: PS.SERVICEFAIL,
}


#: The conductor setting that bounds how long a node may sit in each wait state.
WAIT_TIMEOUT_SETTING: Mapping[ProvisionState, str] = {
    PS.DEPLOYWAIT: "deploy_callback_timeout",
    PS.CLEANWAIT: "clean_callback_timeout",
    PS.INSPECTWAIT: "inspect_wait_timeout",
    PS.RESCUEWAIT: "rescue_callback_timeout",
    PS.SERVICEWAIT: "service_callback_timeout",
}


class InvalidTransition(MetalcastError):
    """No transition exists for ``event`` while a node is in ``state``."""

    status_code = 400

    def __init__(self, state: ProvisionState, event: Event) -> None:
        allowed = sorted(t.event.value for t in TRANSITIONS if t.source == state)
        super().__init__(
            f"The requested action '{event.value}' can not be performed on a node in "
            f"provision state '{state.value}'. Actions allowed in that state: "
            f"{', '.join(allowed) or 'none'}."
        )
        self.state = state
        self.event = event


def advance(state: ProvisionState, event: Event) -> ProvisionState:
    """Return the state ``event`` leads to from ``state``.

    Raises:
        InvalidTransition: the table has no such edge.
    """
    try:
        return _TABLE[(state, event)]
    except KeyError:
        raise InvalidTransition(state, event) from None


def events_from(state: ProvisionState) -> frozenset[Event]:
    """Every event that has a transition out of ``state``."""
    return frozenset(t.event for t in TRANSITIONS if t.source == state)


def target_of(state: ProvisionState) -> ProvisionState | None:
    """The stable state a node in a work or wait state is heading to (its
    ``target_provision_state``); ``None`` for stable and failure states."""
    return _TARGETS.get(state)


_TARGETS: Mapping[ProvisionState, ProvisionState] = {
    PS.VERIFYING: PS.MANAGEABLE,
    PS.DEPLOYING: PS.ACTIVE,
    PS.DEPLOYWAIT: PS.ACTIVE,
    PS.DEPLOYHOLD: PS.ACTIVE,
    PS.DELETING: PS.AVAILABLE,
    PS.INSPECTING: PS.MANAGEABLE,
    PS.INSPECTWAIT: PS.MANAGEABLE,
    PS.ADOPTING: PS.ACTIVE,
    PS.RESCUING: PS.RESCUE,
    PS.RESCUEWAIT: PS.RESCUE,
    PS.UNRESCUING: PS.ACTIVE,
    PS.SERVICING: PS.ACTIVE,
    PS.SERVICEWAIT: PS.ACTIVE,
    PS.SERVICEHOLD: PS.ACTIVE,
}


def reachable(start: ProvisionState, transitions: Iterable[Transition]) -> set[ProvisionState]:
    """All states reachable from ``start`` over ``transitions`` (used by tests and docs)."""
    edges: dict[ProvisionState, set[ProvisionState]] = {}
    for t in transitions:
        edges.setdefault(t.source, set()).add(t.target)
    seen = {start}
    todo = [start]
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def mermaid() -> str:
    """The state machine as a Mermaid diagram (``docs/states.md`` is generated from it)."""
    ids = {s: s.name.lower() for s in ProvisionState}
    lines = ["stateDiagram-v2", "    [*] --> enroll"]
    for s in ProvisionState:
        lines.append(f'    state "{s.value}" as {ids[s]}')
    for t in TRANSITIONS:
        lines.append(f"    {ids[t.source]} --> {ids[t.target]}: {t.event.value}")
    return "\n".join(lines) + "\n"
