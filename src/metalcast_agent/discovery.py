"""Discovery: the agent of a machine metalcast does not know reports its inventory.

The ramdisk is booted with ``metalcast.discovery=1`` when metalcast's boot services
have ``boot.discovery`` on and the machine's MAC has no node.  Its lookup then finds
nothing (404); the protocol loop asks :class:`Discovery` to report the machine's
inventory to ``POST /v1/continue_inspection`` once:

* ``202``: the machine was enrolled as a node: the agent powers it off;
* a refusal (``404`` discovery is off, ``409`` a node has its NIC, ``400`` the
  inventory was refused, ``413``): logged, never tried again; the agent keeps looking
  itself up, so that metalcast can still provision the machine;
* no answer, or ``5xx`` (too many machines at once): tried again at the next lookup.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Protocol

from metalcast_agent.errors import AgentError, ApiError, ApiUnreachable
from metalcast_agent.log import get_logger
from metalcast_agent.protocol import Inventory

_log = get_logger("discovery")


class Outcome(enum.Enum):
    ENROLLED = enum.auto()  #: the machine is a node now: power it off
    REFUSED = enum.auto()  #: metalcast will not enroll it: look it up as before
    RETRY = enum.auto()  #: no answer: report again at the next lookup


class DiscoveryApi(Protocol):
    def continue_inspection(self, report: Mapping[str, object]) -> str: ...


class Discovery:
    """Reports the machine's inventory (from ``inventory``) until metalcast answers."""

    def __init__(self, api: DiscoveryApi, inventory: Callable[[], Inventory]) -> None:
        self.api = api
        self.inventory = inventory
        #: once metalcast answered (enrolled or refused), nothing more is reported
        self.finished = False
        self.node_uuid: str | None = None

    def report(self) -> Outcome:
        """Report once (nothing once metalcast has answered); what came of it."""
        if self.finished:
            return Outcome.REFUSED
        try:
            inventory = self.inventory()
        except (AgentError, OSError) as exc:
            _log.error("discovery: cannot collect the inventory: %s", exc)
            self.finished = True
            return Outcome.REFUSED
        try:
            self.node_uuid = self.api.continue_inspection({"inventory": dict(inventory)})
        except ApiUnreachable as exc:
            _log.warning("%s; reporting again later", exc.message)
            return Outcome.RETRY
        except ApiError as exc:
            if exc.status is None or exc.status >= 500:
                _log.warning("%s; reporting again later", exc.message)
                return Outcome.RETRY
            _log.error("%s; waiting to be provisioned instead", exc.message)
            self.finished = True
            return Outcome.REFUSED
        self.finished = True
        _log.info("discovery: this machine was enrolled as node %s", self.node_uuid)
        return Outcome.ENROLLED
