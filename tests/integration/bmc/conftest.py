"""Virtual BMCs in the test process.

Fixture ``fleet``: a :class:`~metalcast.lab.bmc.fleet.Fleet` of three simulated
machines served over IPMI (one UDP port each) and Redfish (one HTTP port), on free
loopback ports, shared by a module's tests; every fault is cleared after each test.
Helpers to drive it are in ``bmclab``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from bmclab import PASSWORD, USERNAME

from metalcast.lab.bmc.fleet import Fleet, simulated_machines


@pytest.fixture(scope="module")
def _served() -> Iterator[Fleet]:
    if shutil.which("ipmitool") is None:
        pytest.fail("ipmitool is missing: run scripts/install --test")
    with Fleet(
        simulated_machines(3, prefix="bmc"),
        ipmi=True,
        redfish=True,
        username=USERNAME,
        password=PASSWORD,
    ) as fleet:
        yield fleet


@pytest.fixture
def fleet(_served: Fleet) -> Iterator[Fleet]:
    yield _served
    for machine in _served.machines:
        machine.faults.clear()
