"""Fixtures for driver tests: a registry whose fakes record sleeps instead of sleeping."""

from __future__ import annotations

import pytest
from driver_ctx import MakeCtx, build_ctx

from metalcast.drivers.fake import FakeBmcState
from metalcast.drivers.registry import DriverRegistry, default_registry


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


@pytest.fixture
def make_ctx() -> MakeCtx:
    """Build a DriverContext: make_ctx(driver_info={...}, power_state=..., args=...)."""
    return build_ctx
