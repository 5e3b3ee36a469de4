"""LLDP frames as the agent parses them (Ironic's [[type, hex value]] pairs)."""

from __future__ import annotations

import pytest
from agent_machine import FakeMachine

from metalcast_agent.commands import CommandContext
from metalcast_agent.errors import InvalidArguments
from metalcast_agent.handlers import get_inventory
from metalcast_agent.lldp import listen, parse_frame, parse_tlvs


def tlv(kind: int, value: bytes) -> bytes:
    return ((kind << 9) | len(value)).to_bytes(2, "big") + value


CHASSIS = tlv(1, b"\x04" + bytes.fromhex("525400aabbcc"))
PORT = tlv(2, b"\x05Ethernet1/7")
TTL = tlv(3, b"\x00\x78")
NAME = tlv(5, b"leaf-3.lab")
LLDPDU = CHASSIS + PORT + TTL + NAME + tlv(0, b"")
HEADER = bytes.fromhex("0180c200000e525400aabbcc")


def expected() -> list[list[object]]:
    return [
        [1, "04525400aabbcc"],
        [2, b"\x05Ethernet1/7".hex()],
        [3, "0078"],
        [5, b"leaf-3.lab".hex()],
    ]


def test_a_frame_gives_its_tlvs_up_to_the_end_tlv() -> None:
    assert parse_frame(HEADER + b"\x88\xcc" + LLDPDU + b"\x00" * 20) == expected()


def test_a_vlan_tagged_frame_is_read_past_its_tag() -> None:
    assert parse_frame(HEADER + b"\x81\x00\x00\x64" + b"\x88\xcc" + LLDPDU) == expected()


def test_other_frames_and_truncated_tlvs() -> None:
    assert parse_frame(HEADER + b"\x08\x00" + LLDPDU) is None  # IPv4
    assert parse_frame(HEADER[:10]) is None
    assert parse_tlvs(CHASSIS + tlv(2, b"\x05port")[:5]) == [[1, "04525400aabbcc"]]


def test_nothing_is_listened_for_without_time_or_nics() -> None:
    assert listen(["eth0"], 0) == {}
    assert listen([], 30) == {}


@pytest.mark.parametrize("seconds", [-1, 61, "30", True])
def test_get_inventory_refuses_a_bad_lldp_time(machine: FakeMachine, seconds: object) -> None:
    with pytest.raises(InvalidArguments, match="lldp_seconds"):
        get_inventory({"lldp_seconds": seconds}, CommandContext(machine.env))


def test_get_inventory_without_lldp_time_listens_for_nothing(machine: FakeMachine) -> None:
    machine.add_nic("eth0", "52:54:00:aa:bb:01")

    inventory = get_inventory({}, CommandContext(machine.env))

    assert [nic["lldp"] for nic in inventory["interfaces"]] == [None]  # type: ignore[index, union-attr]
