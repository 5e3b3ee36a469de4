"""Deploy interface ``direct``: the agent in the deploy ramdisk writes the image.

The conductor drives the sequence (:mod:`metalcast.conductor.direct`): it caches the
image, boots the node into the deploy ramdisk, hands the agent ``write_image`` and
``write_configdrive`` commands in its heartbeat replies, then sets the boot device to
disk and reboots.  This interface says what the agent must do: the image to write
(:meth:`DirectDeploy.validate` checks ``instance_info`` for it) and the clean step
that erases disk metadata through the agent.

Errors::

    InvalidInput   instance_info lacks image_source or a checksum, or has bad values
"""

from __future__ import annotations

from metalcast.drivers.base import (
    AgentCommand,
    AgentPhase,
    DeployInterface,
    DriverContext,
    StepOutcome,
    step,
)
from metalcast.images.source import parse_image_source


class DirectDeploy(DeployInterface):
    """Deploy whole-disk images (raw, qcow2) through metalcast-agent."""

    name = "direct"

    def validate(self, ctx: DriverContext) -> None:
        """When an instance is described, it must name an image and its checksum.

        Raises:
            InvalidInput: the message names the key to fix.
        """
        if ctx.node.instance_info.get("image_source") is not None:
            parse_image_source(ctx.node.instance_info)

    def deploy(self, ctx: DriverContext) -> StepOutcome:
        """The agent writes the instance (the conductor adds the commands that do:
        it owns the image cache); the conductor waits for its call-back."""
        return StepOutcome.for_agent(AgentPhase.DEPLOY)

    def tear_down(self, ctx: DriverContext) -> None:
        """Nothing on the node to undo: cleaning erases the disk."""

    def prepare_cleaning(self, ctx: DriverContext) -> StepOutcome:
        """The agent must boot before any clean step runs."""
        return StepOutcome.for_agent(AgentPhase.CLEAN)

    @step(priority=10, requires_ramdisk=True)
    def erase_devices_metadata(self, ctx: DriverContext) -> StepOutcome:
        """Automated clean step: the agent wipes partition tables and filesystem
        signatures at both ends of every disk."""
        return StepOutcome.for_agent(
            AgentPhase.CLEAN, AgentCommand("erase_metadata", {"devices": None})
        )
