"""LLDP: what the switch port at the other end of each NIC says about itself.

Switches send an LLDP frame every 30 seconds or so; the agent listens on every NIC at
once for up to the time the conductor allows (``get_inventory``'s ``lldp_seconds``,
0 by default: not listened) and reports each frame's TLVs as Ironic's inventory does:
``[[type, "hex of the value"], ...]``. Listening needs a raw packet socket (root, as
in the ramdisk); a NIC it cannot listen on, or that heard nothing, has ``None``.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Callable, Sequence

ETH_P_LLDP = 0x88CC
_VLAN_TAGS = (0x8100, 0x88A8)
_MAX_FRAME = 9216
_END_OF_LLDPDU = 0
#: the nearest-bridge group address LLDP is sent to, which a NIC drops unless asked
_LLDP_GROUP = bytes.fromhex("0180c200000e")
_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, _PACKET_MR_MULTICAST = 263, 1, 0

Tlvs = list[list[object]]


def parse_frame(frame: bytes) -> Tlvs | None:
    """The TLVs of an Ethernet frame carrying an LLDPDU, or ``None`` when it does not
    carry one (another ethertype, a truncated header)."""
    offset = 12
    while len(frame) >= offset + 2:
        ethertype = int.from_bytes(frame[offset : offset + 2], "big")
        if ethertype not in _VLAN_TAGS:
            break
        offset += 4  # a VLAN tag: the ethertype follows it
    if len(frame) < offset + 2 or int.from_bytes(frame[offset : offset + 2], "big") != ETH_P_LLDP:
        return None
    return parse_tlvs(frame[offset + 2 :])


def parse_tlvs(data: bytes) -> Tlvs:
    """The TLVs of an LLDPDU, up to its end TLV or the last complete one."""
    tlvs: Tlvs = []
    offset = 0
    while len(data) >= offset + 2:
        header = int.from_bytes(data[offset : offset + 2], "big")
        kind, length = header >> 9, header & 0x1FF
        value = data[offset + 2 : offset + 2 + length]
        if kind == _END_OF_LLDPDU or len(value) < length:
            break
        tlvs.append([kind, value.hex()])
        offset += 2 + length
    return tlvs


def listen(
    interfaces: Sequence[str],
    seconds: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    ready: Callable[[], None] = lambda: None,
) -> dict[str, Tlvs]:
    """The first LLDPDU heard on each of ``interfaces`` within ``seconds``; ``ready``
    is called once the sockets listen."""
    if seconds <= 0 or not interfaces:
        return {}
    sockets = _open(interfaces)
    ready()
    heard: dict[str, Tlvs] = {}
    deadline = clock() + seconds
    try:
        while sockets and (left := deadline - clock()) > 0:
            readable, _, _ = select.select(list(sockets), [], [], left)
            for sock in readable:
                tlvs = parse_frame(sock.recv(_MAX_FRAME))
                if tlvs:
                    heard[sockets.pop(sock)] = tlvs
                    sock.close()
    finally:
        for sock in sockets:
            sock.close()
    return heard


def _open(interfaces: Sequence[str]) -> dict[socket.socket, str]:
    opened: dict[socket.socket, str] = {}
    for name in interfaces:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_LLDP))
        except (OSError, AttributeError):  # no privilege, or not Linux
            continue
        try:
            sock.bind((name, ETH_P_LLDP))
            request = struct.pack(
                "iHH8s", socket.if_nametoindex(name), _PACKET_MR_MULTICAST, 6, _LLDP_GROUP
            )
            sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, request)
        except OSError:
            sock.close()
            continue
        opened[sock] = name
    return opened
