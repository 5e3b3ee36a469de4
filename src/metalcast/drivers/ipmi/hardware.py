"""The ``ipmi`` hardware type.  Definitions only: nothing is instantiated here.

IPMI power and management, iPXE/PXE network boot and the agent's ``direct`` deploy;
the fake interfaces stay selectable for rehearsals.  Register it with
:func:`ipmi_factories`, so that power and management share one session pool::

    DriverRegistry([..., IPMI_HARDWARE], factories={**fake_factories(...), **ipmi_factories()})
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
from metalcast.drivers.ipmi.client import IpmiSessions
from metalcast.drivers.ipmi.console import IPMISolConsole
from metalcast.drivers.ipmi.interfaces import IPMIManagement, IPMIPower
from metalcast.drivers.ipmi.sol import SolConsoles

IPMI_HARDWARE = HardwareType(
    name="ipmi",
    description="Servers with an IPMI 2.0 BMC (lanplus), driven through pyghmi.",
    supported=MappingProxyType(
        {
            "bios": (noop.NoBIOS, fake.FakeBIOS),
            "boot": (netboot.IPXEBoot, netboot.PXEBoot, fake.FakeBoot),
            "console": (noop.NoConsole, IPMISolConsole, fake.FakeConsole),
            "deploy": (direct.DirectDeploy, fake.FakeDeploy),
            "firmware": (noop.NoFirmware, fake.FakeFirmware),
            "inspect": (inspect_agent.AgentInspect, noop.NoInspect, fake.FakeInspect),
            "management": (IPMIManagement,),
            "network": (noop.NoopNetwork, fake.FakeNetwork),
            "power": (IPMIPower,),
            "raid": (noop.NoRAID, raid_agent.AgentRAID, fake.FakeRAID),
            "rescue": (rescue_agent.AgentRescue, noop.NoRescue, fake.FakeRescue),
            "storage": (noop.NoopStorage, fake.FakeStorage),
            "vendor": (noop.NoVendor,),
        }
    ),
)


def ipmi_factories(
    sessions: IpmiSessions | None = None,
    consoles: SolConsoles | None = None,
) -> dict[type[Interface], Callable[[], Interface]]:
    """Constructors for the IPMI interfaces, sharing ``sessions`` (a new pool by
    default) and the SOL ``consoles`` this conductor holds."""
    pool = sessions or IpmiSessions()
    held = consoles or SolConsoles()
    return {
        IPMIPower: functools.partial(IPMIPower, pool),
        IPMIManagement: functools.partial(IPMIManagement, pool),
        IPMISolConsole: functools.partial(IPMISolConsole, held),
    }
