"""metalcast.drivers.fake: a ``fake`` implementation of every interface.

Fast, well-behaved hardware by default; latency and failures are injected per node
through ``driver_info`` (see :mod:`metalcast.drivers.fake.injection`).  The fake power,
management, BIOS and vendor implementations share one :class:`FakeBmcState`, so build
them with :func:`fake_factories` (the registry does).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from metalcast.drivers.base import Interface
from metalcast.drivers.fake.bmc import FakeBmcRecord, FakeBmcState
from metalcast.drivers.fake.configuration import FakeBIOS, FakeFirmware, FakeRAID
from metalcast.drivers.fake.connectivity import FakeNetwork, FakeStorage
from metalcast.drivers.fake.control import (
    BOOT_DEVICES,
    FakeConsole,
    FakeManagement,
    FakePower,
    FakeVendor,
)
from metalcast.drivers.fake.injection import (
    FAKE_OPERATIONS,
    FAKE_WAIT_OPERATIONS,
    FakeInfo,
    Sleep,
)
from metalcast.drivers.fake.provisioning import (
    FakeBoot,
    FakeDeploy,
    FakeInspect,
    FakeInspectInfo,
    FakeRescue,
)

__all__ = [
    "BOOT_DEVICES",
    "FAKE_OPERATIONS",
    "FAKE_WAIT_OPERATIONS",
    "FakeBIOS",
    "FakeBmcRecord",
    "FakeBmcState",
    "FakeBoot",
    "FakeConsole",
    "FakeDeploy",
    "FakeFirmware",
    "FakeInfo",
    "FakeInspect",
    "FakeInspectInfo",
    "FakeManagement",
    "FakeNetwork",
    "FakePower",
    "FakeRAID",
    "FakeRescue",
    "FakeStorage",
    "FakeVendor",
    "fake_factories",
]

_STATELESS = (
    FakeBoot,
    FakeConsole,
    FakeDeploy,
    FakeInspect,
    FakeNetwork,
    FakeRAID,
    FakeRescue,
    FakeStorage,
)
_BMC_BACKED = (FakeBIOS, FakeFirmware, FakeManagement, FakePower, FakeVendor)


def fake_factories(
    bmc: FakeBmcState, *, sleep: Sleep = time.sleep
) -> dict[type[Interface], Callable[[], Interface]]:
    """Constructors for every fake implementation, sharing ``bmc`` and ``sleep``."""
    factories: dict[type[Interface], Callable[[], Interface]] = {
        cls: functools.partial(cls, sleep=sleep) for cls in _STATELESS
    }
    for bmc_cls in _BMC_BACKED:
        factories[bmc_cls] = functools.partial(bmc_cls, bmc, sleep=sleep)
    return factories
