"""Rescue interface ``agent``: the deploy ramdisk as a rescue system with SSH.

``rescue`` asks for the node's agent booted for :attr:`AgentPhase.RESCUE` and hands it
``rescue``: the agent gives the user :data:`RESCUE_USER` the tenant's password (its
SHA-512 crypt hash, which the conductor adds to the command as it hands it out:
:mod:`metalcast.conductor.rescue`) and starts an SSH server (dropbear).  The tenant
then logs in with ``ssh rescue@<the node's address>``.  ``unrescue`` has nothing to
undo on the node: the conductor powers it off and boots it from its disk again.
"""

from __future__ import annotations

from metalcast.drivers.base import (
    AgentCommand,
    AgentPhase,
    DriverContext,
    RescueInterface,
    StepOutcome,
)

#: the account the rescue password opens (Ironic's agent ramdisks use the same name)
RESCUE_USER = "rescue"


class AgentRescue(RescueInterface):
    """Rescue through metalcast-agent: the ramdisk with an SSH server for the tenant."""

    name = "agent"

    def rescue(self, ctx: DriverContext) -> StepOutcome:
        """Wait for the agent, booted for rescue, to set the password and start SSH."""
        return StepOutcome.for_agent(
            AgentPhase.RESCUE, AgentCommand("rescue", {"user": RESCUE_USER})
        )

    def unrescue(self, ctx: DriverContext) -> None:
        """Nothing on the node: powering it off ends the rescue system."""
