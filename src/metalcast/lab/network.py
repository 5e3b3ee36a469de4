"""The lab's provisioning networks: a namespace, a bridge, one tap per machine.

Nothing of it is connected to the host's own namespace: the machines' taps and the
bridge live in namespace ``metalcast-lab`` (:data:`DEFAULT_NETNS`), where the
metalcast server's boot services answer DHCP, TFTP and HTTP on the bridge's
addresses.  Deleting the namespace removes the bridge and the taps with it.

A lab may have more networks, numbered (``lab up --network N``), one per conductor
group: network 1 is the one above; network N has namespace ``metalcast-labN``,
bridge ``mcbr<N-1>``, subnet 192.168.<76+N>.0/24 (and fd<76+N>::/64), machines
``labN-0``, … with MACs ``52:54:00:6d:<0x62+N>:NN``.  The conductors of its group
run with :meth:`LabNetwork.boot_environment`.

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
#: numbered lab networks: 1 (the default) … 9
MAX_NETWORKS = 9


#: the last MAC byte of a machine's second NIC: its index plus this
SECOND_NIC_OFFSET = 0x80


def tap_name(index: int, *, nic: int = 0) -> str:
    """The tap of NIC ``nic`` of machine ``index``: ``mctap0``, ``mctap1``, … for the
    provisioning NICs, ``mctap0n1``, … for the second ones."""
    return f"{TAP_PREFIX}{index}" if nic == 0 else f"{TAP_PREFIX}{index}n{nic}"


def mac_address(index: int, *, network: int = 1, nic: int = 0) -> str:
    """The MAC of NIC ``nic`` (0: the provisioning NIC, 1: the second) of machine
    ``index`` of lab network ``network``, stable across labs: ``52:54:00:6d:63:NN``
    on network 1, ``52:54:00:6d:64:NN`` on 2, …; a second NIC's last byte is
    ``0x80 + NN``.

    Raises:
        ValueError: ``index``, ``network`` or ``nic`` is out of range.
    """
    if not 0 <= index < MAX_MACHINES:
        raise ValueError(f"machine index {index} is outside 0..{MAX_MACHINES - 1}")
    if nic not in (0, 1):
        raise ValueError(f"NIC {nic} is not 0 (provisioning) or 1 (second)")
    _check_number(network)
    last = index + SECOND_NIC_OFFSET * nic
    if network == 1:
        return f"{MAC_PREFIX}:{last:02x}"
    return f"{MAC_PREFIX[:-3]}:{0x62 + network:02x}:{last:02x}"


def _check_number(network: int) -> None:
    if not 1 <= network <= MAX_NETWORKS:
        raise ValueError(f"lab network {network} is outside 1..{MAX_NETWORKS}")


@dataclass(frozen=True, slots=True)
class LabNetwork:
    """A lab network: its namespace, bridge and taps."""

    netns: str = DEFAULT_NETNS
    bridge: str = BRIDGE
    cidrs: tuple[str, ...] = BRIDGE_CIDRS
    #: its number (``lab up --network``)
    number: int = 1

    @classmethod
    def numbered(cls, number: int, *, netns: str | None = None) -> LabNetwork:
        """Lab network ``number`` (1 is the default one), in ``netns`` if given.

        Raises:
            ValueError: ``number`` is outside 1..:data:`MAX_NETWORKS`.
        """
        _check_number(number)
        if number == 1:
            return cls(netns or DEFAULT_NETNS, number=1)
        octet = 76 + number
        return cls(
            netns or f"{DEFAULT_NETNS}{number}",
            f"mcbr{number - 1}",
            (f"192.168.{octet}.1/24", f"fd{octet}::1/64"),
            number,
        )

    @property
    def name(self) -> str:
        """The network's ``boot.network`` name: "" for network 1, ``labN`` else."""
        return "" if self.number == 1 else f"lab{self.number}"

    @property
    def address(self) -> str:
        """The boot services' IPv4 address on the bridge."""
        return self.cidrs[0].split("/")[0]

    def boot_environment(self) -> dict[str, str]:
        """The settings a conductor serving this network runs with (environment)."""
        prefix = self.address.rsplit(".", 1)[0]
        return {
            "METALCAST_BOOT__NETWORK": self.name,
            "METALCAST_BOOT__NETNS": self.netns,
            "METALCAST_BOOT__INTERFACE": self.bridge,
            "METALCAST_BOOT__ADDRESS": self.address,
            "METALCAST_BOOT__DHCP_RANGE_START": f"{prefix}.100",
            "METALCAST_BOOT__DHCP_RANGE_END": f"{prefix}.200",
        }

    def exists(self) -> bool:
        """Whether the namespace exists."""
        return netns.netns_exists(self.netns)

    def create(self, taps: int, *, nics: int = 1) -> None:
        """Create the namespace, the bridge (up, with its addresses) and taps
        ``mctap0`` … ``mctap<taps-1>`` on it (with ``nics=2`` also each machine's
        second tap, ``mctap<i>n1``, on the same bridge); what exists already is kept.

        Raises:
            NetnsError: an ``ip`` command failed (not root, no ``ip``, …).
        """
        netns.create_netns(self.netns)
        netns.add_bridge(self.netns, self.bridge, cidrs=self.cidrs)
        for index in range(taps):
            for nic in range(nics):
                netns.add_tap(self.netns, tap_name(index, nic=nic), bridge=self.bridge)

    def delete(self) -> None:
        """Delete the namespace (and with it the bridge and the taps), if it exists.

        Raises:
            NetnsError: ``ip netns delete`` failed.
        """
        netns.delete_netns(self.netns)
