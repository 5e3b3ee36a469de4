"""The lab's provisioning network: a namespace, a bridge, one tap per machine.

Nothing of it is connected to the host's own namespace: the machines' taps and the
bridge live in namespace ``metalcast-lab`` (:data:`DEFAULT_NETNS`), where the
metalcast server's boot services answer DHCP, TFTP and HTTP on the bridge's
addresses.  Deleting the namespace removes the bridge and the taps with it.

Every function is idempotent (see :mod:`metalcast.boot.netns`, which does the work).

Errors: :class:`~metalcast.boot.errors.NetnsError` (an ``ip`` command failed).
"""

from __future__ import annotations

from dataclasses import dataclass

from metalcast.boot import netns

DEFAULT_NETNS = "metalcast-lab"
BRIDGE = "mcbr0"
#: the bridge's addresses: the boot services' address, and an IPv6 one so that
#: router advertisements spare iPXE its ~13 s router-solicitation timeout
BRIDGE_CIDRS = ("192.168.77.1/24", "fd77::1/64")
TAP_PREFIX = "mctap"
#: the lab's MACs: QEMU's OUI, then "mc", then the machine's index
MAC_PREFIX = "52:54:00:6d:63"
#: one MAC byte per index, and dnsmasq's default range has room for 100 leases
MAX_MACHINES = 64


def tap_name(index: int) -> str:
    """The tap of machine ``index`` (``mctap0``, ``mctap1``, …)."""
    return f"{TAP_PREFIX}{index}"


def mac_address(index: int) -> str:
    """The MAC of machine ``index``, stable across labs: ``52:54:00:6d:63:NN``.

    Raises:
        ValueError: ``index`` is out of range.
    """
    if not 0 <= index < MAX_MACHINES:
        raise ValueError(f"machine index {index} is outside 0..{MAX_MACHINES - 1}")
    return f"{MAC_PREFIX}:{index:02x}"


@dataclass(frozen=True, slots=True)
class LabNetwork:
    """A lab network: its namespace, bridge and taps."""

    netns: str = DEFAULT_NETNS
    bridge: str = BRIDGE
    cidrs: tuple[str, ...] = BRIDGE_CIDRS

    def exists(self) -> bool:
        """Whether the namespace exists."""
        return netns.netns_exists(self.netns)

    def create(self, taps: int) -> None:
        """Create the namespace, the bridge (up, with its addresses) and taps
        ``mctap0`` … ``mctap<taps-1>`` on it; what exists already is kept.

        Raises:
            NetnsError: an ``ip`` command failed (not root, no ``ip``, …).
        """
        netns.create_netns(self.netns)
        netns.add_bridge(self.netns, self.bridge, cidrs=self.cidrs)
        for index in range(taps):
            netns.add_tap(self.netns, tap_name(index), bridge=self.bridge)

    def delete(self) -> None:
        """Delete the namespace (and with it the bridge and the taps), if it exists.

        Raises:
            NetnsError: ``ip netns delete`` failed.
        """
        netns.delete_netns(self.netns)
