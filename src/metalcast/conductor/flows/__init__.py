"""The provisioning flows: what runs in a worker once a node enters a work state.

Each flow is a :class:`Flow`: ``stage`` runs in the caller's thread under the lock,
before the transition into the work state is written (it checks the request and
stages fields saved with that transition; anything it raises reaches the caller with
nothing written); ``work`` runs in a worker and ends the transition (``done``,
``wait``), or raises, and the worker drives the node to its failure state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from metalcast.conductor.task import NodeTask
from metalcast.states import Event


@dataclass(frozen=True, slots=True)
class ProvisionOptions:
    """What a provision request may carry besides its verb."""

    # secrets: left out of the repr, which a log line or a traceback may show
    configdrive: str | dict[str, Any] | None = field(default=None, repr=False)
    clean_steps: list[dict[str, Any]] | None = None
    deploy_steps: list[dict[str, Any]] | None = None
    service_steps: list[dict[str, Any]] | None = None
    rescue_password: str | None = field(default=None, repr=False)
    disable_ramdisk: bool | None = None
    #: the runbook the steps come from (its name and UUID), for the node's history
    runbook: str | None = None
    #: the caller is a system administrator: a config drive URL it gives may reach
    #: internal hosts (set from the request's context in :mod:`metalcast.conductor.handlers`)
    admin: bool = False


Stage = Callable[[NodeTask, Event, ProvisionOptions], None]
Work = Callable[[NodeTask], None]


def no_stage(task: NodeTask, event: Event, options: ProvisionOptions) -> None:
    """A flow that needs nothing staged."""


@dataclass(frozen=True, slots=True)
class Flow:
    """How a node goes through one work state."""

    work: Work
    stage: Stage = no_stage
