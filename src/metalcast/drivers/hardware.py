"""The built-in hardware types.  Definitions only: nothing is instantiated here."""

from __future__ import annotations

from types import MappingProxyType

from metalcast.drivers import fake, noop
from metalcast.drivers.base import HardwareType

FAKE_HARDWARE = HardwareType(
    name="fake-hardware",
    description="Fake hardware for tests and demos: every interface succeeds at once "
    "unless driver_info injects latency or failures.",
    supported=MappingProxyType(
        {
            "bios": (fake.FakeBIOS, noop.NoBIOS),
            "boot": (fake.FakeBoot,),
            "console": (fake.FakeConsole, noop.NoConsole),
            "deploy": (fake.FakeDeploy,),
            "firmware": (fake.FakeFirmware, noop.NoFirmware),
            "inspect": (fake.FakeInspect, noop.NoInspect),
            "management": (fake.FakeManagement,),
            "network": (noop.NoopNetwork, fake.FakeNetwork),
            "power": (fake.FakePower,),
            "raid": (fake.FakeRAID, noop.NoRAID),
            "rescue": (fake.FakeRescue, noop.NoRescue),
            "storage": (noop.NoopStorage, fake.FakeStorage),
            "vendor": (fake.FakeVendor, noop.NoVendor),
        }
    ),
)

#: every hardware type metalcast ships, in the order they are listed
BUILTIN_HARDWARE_TYPES: tuple[HardwareType, ...] = (FAKE_HARDWARE,)
