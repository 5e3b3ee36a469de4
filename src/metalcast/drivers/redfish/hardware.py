"""The ``redfish`` hardware type.  Definitions only: nothing is instantiated here.

Redfish power, management, BIOS, firmware and out-of-band inspection, iPXE/PXE
network boot, virtual media boot (``redfish-virtual-media``) and the agent's
``direct`` deploy; the fake interfaces stay selectable for rehearsals.  Register it
with :func:`redfish_factories`, so that they share one connection pool.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import MappingProxyType

from metalcast.drivers import (
    direct,
    fake,
    inspect_agent,
    netboot,
    noop,
    raid_agent,
    rescue_agent,
)
from metalcast.drivers.base import HardwareType, Interface
from metalcast.drivers.redfish.client import RedfishSessions
from metalcast.drivers.redfish.firmware import RedfishFirmware
from metalcast.drivers.redfish.interfaces import (
    RedfishBIOS,
    RedfishInspect,
    RedfishManagement,
    RedfishPower,
)
from metalcast.drivers.redfish.vmedia import RedfishVirtualMediaBoot, VirtualMediaFiles

REDFISH_HARDWARE = HardwareType(
    name="redfish",
    description="Servers with a DMTF Redfish service, driven through sushy.",
    supported=MappingProxyType(
        {
            "bios": (RedfishBIOS, noop.NoBIOS),
            "boot": (
                netboot.IPXEBoot,
                netboot.PXEBoot,
                RedfishVirtualMediaBoot,
                fake.FakeBoot,
            ),
            "console": (noop.NoConsole, fake.FakeConsole),
            "deploy": (direct.DirectDeploy, fake.FakeDeploy),
            "firmware": (RedfishFirmware, noop.NoFirmware, fake.FakeFirmware),
            "inspect": (
                inspect_agent.AgentInspect,
                RedfishInspect,
                noop.NoInspect,
                fake.FakeInspect,
            ),
            "management": (RedfishManagement,),
            "network": (noop.NoopNetwork, fake.FakeNetwork),
            "power": (RedfishPower,),
            "raid": (noop.NoRAID, raid_agent.AgentRAID, fake.FakeRAID),
            "rescue": (rescue_agent.AgentRescue, noop.NoRescue, fake.FakeRescue),
            "storage": (noop.NoopStorage, fake.FakeStorage),
            "vendor": (noop.NoVendor,),
        }
    ),
)


def redfish_factories(
    sessions: RedfishSessions | None = None,
    vmedia_files: VirtualMediaFiles | None = None,
) -> dict[type[Interface], Callable[[], Interface]]:
    """Constructors for the Redfish interfaces, sharing ``sessions`` (a new pool by
    default); ``vmedia_files`` builds and serves virtual media ISOs (the boot
    services; None: ``redfish-virtual-media`` fails with a clear error)."""
    pool = sessions or RedfishSessions()
    return {
        RedfishVirtualMediaBoot: functools.partial(RedfishVirtualMediaBoot, pool, vmedia_files),
        RedfishPower: functools.partial(RedfishPower, pool),
        RedfishManagement: functools.partial(RedfishManagement, pool),
        RedfishBIOS: functools.partial(RedfishBIOS, pool),
        RedfishInspect: functools.partial(RedfishInspect, pool),
        RedfishFirmware: functools.partial(RedfishFirmware, pool),
    }
