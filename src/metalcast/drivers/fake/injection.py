"""Latency and failure injection for the fake interfaces, driven by ``driver_info``.

A node on ``fake-hardware`` behaves like fast, well-behaved hardware unless its
``driver_info`` asks otherwise::

    fake_latency          seconds every fake operation sleeps first
    fake_fail             operations that raise FatalDriverError
    fake_retryable_fail   operations that raise RetryableDriverError
    fake_wait             operations that return StepResult.WAIT (no agent calls back)

Operation names are listed in :data:`FAKE_OPERATIONS`; the lists accept a JSON list
or a comma-separated string.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from metalcast.drivers.base import DriverContext, parse_info
from metalcast.errors import FatalDriverError, RetryableDriverError

#: every operation name fake_fail / fake_retryable_fail accept
FAKE_OPERATIONS: frozenset[str] = frozenset(
    {
        "validate",
        "power",
        "boot_device",
        "boot_mode",
        "secure_boot",
        "deploy",
        "tear_down",
        "clean",
        "inspect",
        "rescue",
        "unrescue",
        "adopt",
        "service",
        "nmi",
        "vendor",
        "console",
        "sensors",
        "indicator",
        "vmedia",
    }
)
#: the operations fake_wait accepts: those that may wait for an agent
FAKE_WAIT_OPERATIONS: frozenset[str] = frozenset(
    {"deploy", "clean", "inspect", "rescue", "service"}
)

Sleep = Callable[[float], None]


def _operation_names(value: object, allowed: frozenset[str]) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple | set | frozenset):
        items = [str(part).strip() for part in value]
    else:
        raise ValueError("expected a list of operation names or a comma-separated string")
    names = frozenset(item for item in items if item)
    unknown = sorted(names - allowed)
    if unknown:
        raise ValueError(
            f"unknown operation(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )
    return names


class FakeInfo(BaseModel):
    """The ``driver_info`` settings every fake implementation understands."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    fake_latency: float = Field(
        default=0.0, ge=0, description="Seconds every fake operation sleeps before it runs."
    )
    fake_fail: frozenset[str] = Field(
        default=frozenset(),
        description="Operations that fail with a fatal error (list or comma-separated): "
        + ", ".join(sorted(FAKE_OPERATIONS))
        + ".",
    )
    fake_retryable_fail: frozenset[str] = Field(
        default=frozenset(),
        description="Operations that fail with a retryable error (same names as fake_fail).",
    )
    fake_wait: frozenset[str] = Field(
        default=frozenset(),
        description="Operations that wait for an agent that never calls back: "
        + ", ".join(sorted(FAKE_WAIT_OPERATIONS))
        + ".",
    )

    @field_validator("fake_fail", "fake_retryable_fail", mode="before")
    @classmethod
    def _failing_operations(cls, value: object) -> frozenset[str]:
        return _operation_names(value, FAKE_OPERATIONS)

    @field_validator("fake_wait", mode="before")
    @classmethod
    def _waiting_operations(cls, value: object) -> frozenset[str]:
        return _operation_names(value, FAKE_WAIT_OPERATIONS)


class FakeOperations:
    """Mixed into every fake implementation: sleeps and injected failures."""

    info_model: ClassVar[type[BaseModel]] = FakeInfo
    interface_type: ClassVar[str]

    def __init__(self, *, sleep: Sleep = time.sleep) -> None:
        self._sleep = sleep

    def _settings(self, ctx: DriverContext) -> FakeInfo:
        info = parse_info(self.info_model, ctx.driver_info, interface=self.interface_type)
        assert isinstance(info, FakeInfo)  # every fake info_model derives from FakeInfo
        return info

    def _begin(self, ctx: DriverContext, operation: str | None = None) -> FakeInfo:
        """Sleep ``fake_latency``, then raise if ``operation`` is set to fail.

        Raises:
            MissingDriverInfo: the fake_* settings are invalid.
            FatalDriverError: ``operation`` is in fake_fail.
            RetryableDriverError: ``operation`` is in fake_retryable_fail.
        """
        info = self._settings(ctx)
        if info.fake_latency:
            self._sleep(info.fake_latency)
        if operation is None:
            return info
        message = f"fake-hardware: injected failure in {operation}"
        if operation in info.fake_fail:
            raise FatalDriverError(message, operation=operation)
        if operation in info.fake_retryable_fail:
            raise RetryableDriverError(message, operation=operation)
        return info

    def _begin_waitable(self, ctx: DriverContext, operation: str) -> bool:
        """Like :meth:`_begin`; True when ``operation`` is set to wait (fake_wait)."""
        return operation in self._begin(ctx, operation).fake_wait

    def validate(self, ctx: DriverContext) -> None:
        """Check the fake_* settings.

        Raises:
            MissingDriverInfo: a fake_* setting is invalid.
            FatalDriverError / RetryableDriverError: ``validate`` is set to fail.
        """
        self._begin(ctx, "validate")
