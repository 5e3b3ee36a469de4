"""Inspect interface ``agent``: the node's ramdisk agent reports its hardware.

The conductor boots the node into the deploy ramdisk and hands the agent
``get_inventory``; the inventory (Ironic's format) is checked, stored and turned into
properties and ports by :mod:`metalcast.conductor.inspection`.
"""

from __future__ import annotations

from metalcast.drivers.base import (
    AgentCommand,
    AgentPhase,
    DriverContext,
    InspectInterface,
    StepOutcome,
)


class AgentInspect(InspectInterface):
    """In-band inspection through metalcast-agent."""

    name = "agent"

    def inspect_hardware(self, ctx: DriverContext) -> StepOutcome:
        """Wait for the agent, booted for inspection, to report its inventory."""
        return StepOutcome.for_agent(AgentPhase.INSPECT, AgentCommand("get_inventory"))
