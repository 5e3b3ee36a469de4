"""metalcast.drivers.ipmi: IPMI 2.0 power and management through pyghmi.

:mod:`.interfaces` holds the power and management implementations, :mod:`.client`
the session pool and the seam tests replace, :mod:`.pyghmi_client` the real client,
:mod:`.hardware` the ``ipmi`` hardware type.  Importing this package does not
import pyghmi; the first login does.
"""

from metalcast.drivers.ipmi.client import IpmiSessions, IpmiTarget
from metalcast.drivers.ipmi.info import IpmiInfo
from metalcast.drivers.ipmi.interfaces import IPMIManagement, IPMIPower

__all__ = ["IPMIManagement", "IPMIPower", "IpmiInfo", "IpmiSessions", "IpmiTarget"]
