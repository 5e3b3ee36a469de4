"""Deploy interface ``direct``: the agent in the deploy ramdisk writes the image.

A deploy runs this interface's deploy steps, Ironic's: ``deploy`` (100) boots the
node into the deploy ramdisk; once the agent is up, in-band steps of other interfaces
(software RAID) run; ``write_image`` (80) has the conductor cache the image and hand
the agent ``write_image`` and ``write_configdrive`` commands in its heartbeat
replies (:mod:`metalcast.conductor.direct`); ``prepare_instance_boot`` (60),
``tear_down_agent`` (40), ``switch_to_tenant_network`` (30) and ``boot_instance``
(20) ask the conductor to make the node boot its disk, end the ramdisk, move it to
its tenant networks and power it on.  This interface says what the agent must do: the image to write
(:meth:`DirectDeploy.validate` checks ``instance_info`` for it) and the clean steps
that erase the disks through the agent: ``erase_devices_metadata`` (their partition
tables and signatures) and ``erase_devices`` (all of every disk, by NVMe format, ATA
Secure Erase, write-zeroes or an overwrite: ``metalcast_agent.erase``).  Their
priorities and how the agent erases come from the ``cleaning`` settings
(:class:`~metalcast.config.CleaningSettings`), as Ironic's ``[deploy]`` options
drive its agent.

Errors::

    InvalidInput   instance_info lacks image_source or a checksum, or has bad values
"""

from __future__ import annotations

from dataclasses import replace

from metalcast.config import CleaningSettings
from metalcast.drivers.base import (
    DEPLOY_STEP,
    AgentCommand,
    AgentPhase,
    AgentWork,
    DeployInterface,
    DriverContext,
    InstanceAction,
    StepOutcome,
    StepResult,
    StepSpec,
    step,
)
from metalcast.images.source import parse_image_source


class DirectDeploy(DeployInterface):
    """Deploy whole-disk images (raw, qcow2) through metalcast-agent."""

    name = "direct"

    def __init__(self, cleaning: CleaningSettings | None = None) -> None:
        self.cleaning = cleaning or CleaningSettings()

    def steps(self) -> list[StepSpec]:
        """The declared steps, the erase steps at the priorities the settings give."""
        priorities = {
            "erase_devices": self.cleaning.erase_devices_priority,
            "erase_devices_metadata": self.cleaning.erase_devices_metadata_priority,
        }
        return [
            replace(s, priority=priorities[s.name]) if s.name in priorities else s
            for s in super().steps()
        ]

    def validate(self, ctx: DriverContext) -> None:
        """When an instance is described, it must name an image and its checksum.

        Raises:
            InvalidInput: the message names the key to fix.
        """
        if ctx.node.instance_info.get("image_source") is not None:
            parse_image_source(ctx.node.instance_info)

    def deploy(self, ctx: DriverContext) -> StepOutcome:
        """Core deploy step: the conductor caches the image and builds the config
        drive, then the node boots the deploy ramdisk; the deploy goes on with the
        agent (in-band steps, then :meth:`write_image`)."""
        work = AgentWork(AgentPhase.DEPLOY, prepare_instance=True)
        return StepOutcome(StepResult.WAIT, agent=work)

    @step(priority=80, kinds=DEPLOY_STEP, requires_ramdisk=True)
    def write_image(self, ctx: DriverContext) -> StepOutcome:
        """Deploy step: the agent writes the image and the config drive (the
        conductor adds the commands that do: it owns the image cache)."""
        work = AgentWork(AgentPhase.DEPLOY, write_instance=True)
        return StepOutcome(StepResult.WAIT, agent=work)

    @step(priority=60, kinds=DEPLOY_STEP)
    def prepare_instance_boot(self, ctx: DriverContext) -> StepOutcome:
        """Deploy step: the node boots from its disk from now on."""
        return StepOutcome(instance=InstanceAction.PREPARE_INSTANCE_BOOT)

    @step(priority=40, kinds=DEPLOY_STEP)
    def tear_down_agent(self, ctx: DriverContext) -> StepOutcome:
        """Deploy step: no more ramdisk boot; the node is powered off."""
        return StepOutcome(instance=InstanceAction.TEAR_DOWN_AGENT)

    @step(priority=30, kinds=DEPLOY_STEP)
    def switch_to_tenant_network(self, ctx: DriverContext) -> StepOutcome:
        """Deploy step: the network interface moves the node to its tenant networks."""
        return StepOutcome(instance=InstanceAction.SWITCH_TO_TENANT_NETWORK)

    @step(priority=20, kinds=DEPLOY_STEP)
    def boot_instance(self, ctx: DriverContext) -> StepOutcome:
        """Deploy step: the node is powered on into its instance."""
        return StepOutcome(instance=InstanceAction.BOOT_INSTANCE)

    def tear_down(self, ctx: DriverContext) -> None:
        """Nothing on the node to undo: cleaning erases the disk."""

    def prepare_cleaning(self, ctx: DriverContext) -> StepOutcome:
        """The agent must boot before any clean step runs."""
        return StepOutcome.for_agent(AgentPhase.CLEAN)

    @step(priority=99, abortable=True, requires_ramdisk=True)
    def erase_devices_metadata(self, ctx: DriverContext) -> StepOutcome:
        """Automated clean step: the agent wipes partition tables and filesystem
        signatures at both ends of every disk."""
        return StepOutcome.for_agent(
            AgentPhase.CLEAN, AgentCommand("erase_metadata", {"devices": None})
        )

    @step(priority=0, abortable=True, requires_ramdisk=True)
    def erase_devices(self, ctx: DriverContext) -> StepOutcome:
        """Clean step (manual unless ``cleaning.erase_devices_priority``): the agent
        erases every disk whole, reporting its progress."""
        options = self.cleaning
        return StepOutcome.for_agent(
            AgentPhase.CLEAN,
            AgentCommand(
                "erase_devices",
                {
                    "devices": None,
                    "nvme_secure_erase": options.enable_nvme_secure_erase,
                    "ata_secure_erase": options.enable_ata_secure_erase,
                    "zeros": options.shred_final_overwrite_with_zeros,
                    "continue_if_secure_erase_fails": options.continue_if_disk_secure_erase_fails,
                },
            ),
        )
