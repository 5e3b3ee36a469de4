"""The agent hears a switch's LLDP frame on a real (veth) NIC: two network namespaces
this test creates, a raw socket sending the frame from one, the agent's listener in
the other."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid as uuidlib
from collections.abc import Iterator

import pytest

from metalcast.boot import netns
from metalcast_agent.lldp import ETH_P_LLDP, listen


def tlv(kind: int, value: bytes) -> bytes:
    return ((kind << 9) | len(value)).to_bytes(2, "big") + value


FRAME = (
    bytes.fromhex("0180c200000e" "525400aabbcc") + ETH_P_LLDP.to_bytes(2, "big")
    + tlv(1, b"\x04" + bytes.fromhex("525400aabbcc")) + tlv(2, b"\x05Ethernet1/7")
    + tlv(3, b"\x00\x78") + tlv(5, b"leaf-3.lab") + tlv(0, b"")
)  # fmt: skip


@pytest.fixture
def wire() -> Iterator[tuple[str, str]]:
    """A node namespace with NIC eth0 wired to a switch namespace's port sw0."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and ip")
    suffix = uuidlib.uuid4().hex[:8]
    node_ns, switch_ns = f"mclldp-n-{suffix}", f"mclldp-s-{suffix}"
    try:
        netns.create_netns(node_ns)
        netns.create_netns(switch_ns)
        netns.add_veth(switch_ns, "sw0", peer_netns=node_ns, peer_name="eth0")
        yield node_ns, switch_ns
    finally:
        netns.delete_netns(node_ns)
        netns.delete_netns(switch_ns)


def send_frame() -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind(("sw0", 0))
        sock.send(FRAME)


def test_the_agent_reports_the_switch_ports_lldp(wire: tuple[str, str]) -> None:
    node_ns, switch_ns = wire
    listening = threading.Event()
    heard: list[dict[str, list[list[object]]]] = []

    def agent() -> None:
        heard.append(listen(["eth0", "missing0"], 30, ready=listening.set))

    thread = threading.Thread(target=netns.run_in_netns, args=(node_ns, agent))
    thread.start()
    assert listening.wait(timeout=30)
    netns.run_in_netns(switch_ns, send_frame)
    thread.join(timeout=60)

    assert heard == [
        {"eth0": [[1, "04525400aabbcc"], [2, b"\x05Ethernet1/7".hex()], [3, "0078"],
                  [5, b"leaf-3.lab".hex()]]}
    ]  # fmt: skip
