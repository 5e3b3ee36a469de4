"""Fixtures for driver tests: a registry whose fakes record sleeps instead of sleeping."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import pytest

from metalcast.drivers.base import DriverContext, NodeSnapshot
from metalcast.drivers.fake import FakeBmcState
from metalcast.drivers.registry import DriverRegistry, default_registry

NODE_UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
MakeCtx = Callable[..., DriverContext]


@pytest.fixture
def sleeps() -> list[float]:
    """Every duration the fakes asked to sleep."""
    return []


@pytest.fixture
def bmc() -> FakeBmcState:
    return FakeBmcState()


@pytest.fixture
def registry(bmc: FakeBmcState, sleeps: list[float]) -> DriverRegistry:
    return default_registry(fake_bmc=bmc, sleep=sleeps.append)


def node(*, uuid: str = NODE_UUID, power_state: str | None = None) -> NodeSnapshot:
    return NodeSnapshot(
        uuid=uuid,
        name="node-0",
        driver="fake-hardware",
        provision_state="manageable",
        power_state=power_state,
        properties=MappingProxyType({}),
        instance_info=MappingProxyType({}),
        driver_internal_info=MappingProxyType({}),
    )


@pytest.fixture
def make_ctx() -> MakeCtx:
    """Build a DriverContext: make_ctx(driver_info={...}, power_state=..., args=...)."""

    def build(
        driver_info: Mapping[str, Any] | None = None,
        *,
        power_state: str | None = None,
        args: Mapping[str, Any] | None = None,
        uuid: str = NODE_UUID,
    ) -> DriverContext:
        return DriverContext(
            node=node(uuid=uuid, power_state=power_state),
            driver_info=MappingProxyType(dict(driver_info or {})),
            logger=logging.getLogger("metalcast.tests.drivers"),
            args=MappingProxyType(dict(args or {})),
        )

    return build
