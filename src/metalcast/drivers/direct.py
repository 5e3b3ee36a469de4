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

from typing import ClassVar

from metalcast.drivers.base import (
    DeployInterface,
    DriverContext,
    StepOutcome,
    StepResult,
    step,
)
from metalcast.images.source import parse_image_source


class DirectDeploy(DeployInterface):
    """Deploy whole-disk images (raw, qcow2) through metalcast-agent."""

    name = "direct"
    #: the conductor hands this interface's work to the node's agent
    agent_driven: ClassVar[bool] = True

    def validate(self, ctx: DriverContext) -> None:
        """When an instance is described, it must name an image and its checksum.

        Raises:
            InvalidInput: the message names the key to fix.
        """
        if ctx.node.instance_info.get("image_source") is not None:
            parse_image_source(ctx.node.instance_info)

    def deploy(self, ctx: DriverContext) -> StepResult:
        """The agent writes the instance; the conductor waits for its call-back."""
        return StepResult.WAIT

    def tear_down(self, ctx: DriverContext) -> None:
        """Nothing on the node to undo: cleaning erases the disk."""

    def prepare_cleaning(self, ctx: DriverContext) -> StepResult:
        """The agent must boot before any clean step runs."""
        return StepResult.WAIT

    @step(priority=10)
    def erase_devices_metadata(self, ctx: DriverContext) -> StepOutcome:
        """Automated clean step: the agent wipes partition tables and filesystem
        signatures at both ends of every disk."""
        return StepOutcome(StepResult.WAIT, agent_command=("erase_metadata", {"devices": None}))
