"""Driver contexts for driver tests, importable by name (a ``conftest`` is not: several
directories have one, and the first imported takes the name)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from metalcast.drivers.base import DriverContext, NodeSnapshot

NODE_UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
MakeCtx = Callable[..., DriverContext]


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


def build_ctx(
    driver_info: Mapping[str, Any] | None = None,
    *,
    power_state: str | None = None,
    args: Mapping[str, Any] | None = None,
    uuid: str = NODE_UUID,
) -> DriverContext:
    """A DriverContext: build_ctx(driver_info={...}, power_state=..., args=...)."""
    return DriverContext(
        node=node(uuid=uuid, power_state=power_state),
        driver_info=MappingProxyType(dict(driver_info or {})),
        logger=logging.getLogger("metalcast.tests.drivers"),
        args=MappingProxyType(dict(args or {})),
    )
