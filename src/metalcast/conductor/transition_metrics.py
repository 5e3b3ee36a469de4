"""What a provision state transition adds to the metrics (:mod:`metalcast.metrics`).

Every transition counts once by event and the states left and entered, and the time
spent in the state it leaves is observed (the phases of a verb: ``deploying``, ``wait
call-back``, ...).  A verb's whole duration is measured from its first transition out
of a stable state until the node rests again (a stable or a failure state): when it
leaves rest, the verb and the time go into ``driver_internal_info`` (``verb``,
``verb_started_at``; the same save as the transition), so a verb that a takeover or a
restart finishes elsewhere is still measured whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from metalcast import metrics
from metalcast.states import FAILURE, WAIT, WORK, ProvisionState

_BUSY = WORK | WAIT
VERB_KEYS = ("verb", "verb_started_at")


@dataclass(frozen=True, slots=True)
class Move:
    """One transition, as the task made it."""

    label: str
    old: ProvisionState
    new: ProvisionState
    #: when the node entered ``old`` (None: unknown)
    entered: datetime | None
    now: datetime


def verb_keys(move: Move) -> dict[str, Any]:
    """The ``driver_internal_info`` keys this transition sets (None: removes)."""
    if move.old not in _BUSY and move.new in _BUSY:
        return {"verb": move.label, "verb_started_at": move.now.isoformat()}
    if move.old in _BUSY and move.new not in _BUSY:
        return dict.fromkeys(VERB_KEYS)
    return {}


def record(move: Move, info: Mapping[str, Any]) -> None:
    """Count ``move`` once it was saved; ``info`` is the node's ``driver_internal_info``
    from before it."""
    metrics.TRANSITIONS.labels(move.label, move.old.value, move.new.value).inc()
    if move.entered is not None:
        metrics.STATE_SECONDS.labels(move.old.value).observe(_seconds(move.entered, move.now))
    if move.new in _BUSY:
        return
    if move.old not in _BUSY:  # from rest to rest in one step: the verb took no time
        metrics.VERB_SECONDS.labels(move.label, _result(move.new)).observe(0.0)
        return
    started = _parsed(info.get("verb_started_at"))
    verb = info.get("verb")
    if started is None or not isinstance(verb, str):
        return  # a verb that began before metalcast measured verbs
    metrics.VERB_SECONDS.labels(verb, _result(move.new)).observe(_seconds(started, move.now))


def _result(state: ProvisionState) -> str:
    return "failed" if state in FAILURE else "succeeded"


def _seconds(earlier: datetime, later: datetime) -> float:
    return max(0.0, (later - earlier).total_seconds())


def _parsed(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
