"""metalcast.drivers.redfish: Redfish power, management and BIOS through sushy.

:mod:`.interfaces` holds the implementations, :mod:`.client` the connection pool
and the seam tests replace, :mod:`.sushy_client` the real client, :mod:`.hardware`
the ``redfish`` hardware type.  Importing this package does not import sushy; the
first connection does.
"""

from metalcast.drivers.redfish.client import RedfishSessions, RedfishTarget
from metalcast.drivers.redfish.info import RedfishInfo
from metalcast.drivers.redfish.interfaces import RedfishBIOS, RedfishManagement, RedfishPower

__all__ = [
    "RedfishBIOS",
    "RedfishInfo",
    "RedfishManagement",
    "RedfishPower",
    "RedfishSessions",
    "RedfishTarget",
]
