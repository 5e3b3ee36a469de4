"""Inspect interface ``agent``: the node's ramdisk agent reports its hardware.

The conductor boots the node into the deploy ramdisk and hands the agent
``get_inventory``; the inventory (Ironic's format) is checked, stored and turned into
properties and ports by :mod:`metalcast.conductor.inspection`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from metalcast.drivers.base import (
    AgentCommand,
    AgentPhase,
    DriverContext,
    InspectInterface,
    StepOutcome,
)


class AgentInspectInfo(BaseModel):
    """The ``driver_info`` settings of in-band inspection."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    inspect_lldp_seconds: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="Seconds the agent listens on every NIC for the switch's LLDP "
        "(0: not listened; switches send every 30 s).",
    )


class AgentInspect(InspectInterface):
    """In-band inspection through metalcast-agent."""

    name = "agent"
    info_model = AgentInspectInfo

    def inspect_hardware(self, ctx: DriverContext) -> StepOutcome:
        """Wait for the agent, booted for inspection, to report its inventory.

        Raises:
            MissingDriverInfo: ``inspect_lldp_seconds`` is not 0 to 60.
        """
        seconds = ctx.info(AgentInspectInfo).inspect_lldp_seconds
        command = AgentCommand("get_inventory", {"lldp_seconds": seconds})
        return StepOutcome.for_agent(AgentPhase.INSPECT, command)
