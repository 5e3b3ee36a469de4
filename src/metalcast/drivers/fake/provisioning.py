"""Fake boot, deploy, inspect and rescue: provisioning that succeeds at once."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from metalcast.drivers.base import (
    BootInterface,
    DeployInterface,
    DriverContext,
    InspectInterface,
    RescueInterface,
    StepResult,
    step,
)
from metalcast.drivers.fake.injection import FakeInfo, FakeOperations


class FakeBoot(FakeOperations, BootInterface):
    """Boot preparation that does nothing but the injected latency."""

    name = "fake"

    def prepare_ramdisk(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def clean_up_ramdisk(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def prepare_instance(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    def clean_up_instance(self, ctx: DriverContext) -> None:
        self._begin(ctx)


class FakeDeploy(FakeOperations, DeployInterface):
    """A deployment done as soon as asked.

    Operations: ``deploy``, ``tear_down``, ``adopt`` (take_over), ``clean`` (clean
    steps), ``service`` (service steps).
    """

    name = "fake"

    def deploy(self, ctx: DriverContext) -> StepResult:
        """Core deploy step: DONE, or WAIT when ``deploy`` is in fake_wait.  Raises
        DriverError if injected."""
        return StepResult.WAIT if self._begin_waitable(ctx, "deploy") else StepResult.DONE

    def tear_down(self, ctx: DriverContext) -> None:
        """Raises DriverError when ``tear_down`` is injected."""
        self._begin(ctx, "tear_down")

    def take_over(self, ctx: DriverContext) -> None:
        """Raises DriverError when ``adopt`` is injected."""
        self._begin(ctx, "adopt")

    def prepare_cleaning(self, ctx: DriverContext) -> StepResult:
        self._begin(ctx)
        return StepResult.DONE

    def tear_down_cleaning(self, ctx: DriverContext) -> None:
        self._begin(ctx)

    @step(priority=10, abortable=True)
    def erase_devices_metadata(self, ctx: DriverContext) -> StepResult:
        """Automated clean step.  Honours ``clean`` in fake_fail/fake_wait."""
        return self._step(ctx, "clean")

    @step(
        priority=0,
        abortable=True,
        argsinfo={
            "erase_pattern": "How to erase: 'zeros' or 'random' (optional, default zeros).",
        },
    )
    def erase_devices(self, ctx: DriverContext) -> StepResult:
        """Manual clean step.  Honours ``clean`` in fake_fail/fake_wait."""
        return self._step(ctx, "clean")

    @step(priority=0, kinds=frozenset({"service"}), abortable=True)
    def fake_service(self, ctx: DriverContext) -> StepResult:
        """Service step.  Honours ``service`` in fake_fail/fake_wait."""
        return self._step(ctx, "service")

    def _step(self, ctx: DriverContext, operation: str) -> StepResult:
        return StepResult.WAIT if self._begin_waitable(ctx, operation) else StepResult.DONE


class FakeInspectInfo(FakeInfo):
    """What fake inspection "discovers", on top of the common fake settings."""

    fake_cpus: int = Field(default=4, ge=1, description="CPUs fake inspection reports.")
    fake_memory_mb: int = Field(
        default=8192, ge=1, description="Memory (MiB) fake inspection reports."
    )
    fake_local_gb: int = Field(
        default=100, ge=0, description="Root disk size (GiB) fake inspection reports."
    )
    fake_cpu_arch: str = Field(
        default="x86_64", description="CPU architecture fake inspection reports."
    )


class FakeInspect(FakeOperations, InspectInterface):
    """Inspection that reports the fake_cpus/fake_memory_mb/… settings.  Op: ``inspect``."""

    name = "fake"
    info_model = FakeInspectInfo

    def inspect_hardware(self, ctx: DriverContext) -> tuple[StepResult, dict[str, Any]]:
        """The node's properties, or (WAIT, {}) when ``inspect`` is in fake_wait.

        Raises:
            DriverError: ``inspect`` is injected.
        """
        if self._begin_waitable(ctx, "inspect"):
            return StepResult.WAIT, {}
        info = ctx.info(FakeInspectInfo)
        return StepResult.DONE, {
            "cpus": info.fake_cpus,
            "memory_mb": info.fake_memory_mb,
            "local_gb": info.fake_local_gb,
            "cpu_arch": info.fake_cpu_arch,
        }


class FakeRescue(FakeOperations, RescueInterface):
    """Rescue that succeeds at once.  Operations: ``rescue``, ``unrescue``."""

    name = "fake"

    def rescue(self, ctx: DriverContext) -> StepResult:
        """DONE, or WAIT when ``rescue`` is in fake_wait.  Raises DriverError if injected."""
        return StepResult.WAIT if self._begin_waitable(ctx, "rescue") else StepResult.DONE

    def unrescue(self, ctx: DriverContext) -> None:
        """Raises DriverError when ``unrescue`` is injected."""
        self._begin(ctx, "unrescue")
