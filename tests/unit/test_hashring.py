"""The hash ring: every process computes the same owner, load spreads, and a
conductor joining or leaving moves only its own share of the nodes."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from metalcast.hashring import HashRing, Member, Rings, no_conductor_reason

KEYS = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(3000)]


def owners(ring: HashRing) -> dict[str, str | None]:
    return {key: ring.owner(key) for key in KEYS}


def test_the_same_hosts_give_the_same_owners_whatever_their_order() -> None:
    assert owners(HashRing(["c1", "c2", "c3"])) == owners(HashRing(["c3", "c1", "c2", "c1"]))


def test_an_empty_ring_has_no_owner() -> None:
    assert HashRing([]).owner(KEYS[0]) is None


def test_nodes_spread_over_every_host() -> None:
    counts = Counter(owners(HashRing(["c1", "c2", "c3"])).values())
    assert set(counts) == {"c1", "c2", "c3"}
    # 32 points per host: no host gets less than half or more than twice its share
    assert all(500 <= n <= 2000 for n in counts.values()), counts


def test_a_host_leaving_moves_only_its_own_nodes() -> None:
    before = owners(HashRing(["c1", "c2", "c3"]))
    after = owners(HashRing(["c1", "c3"]))
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved == {k for k in KEYS if before[k] == "c2"}


def test_a_host_joining_takes_nodes_only_for_itself() -> None:
    before = owners(HashRing(["c1", "c2"]))
    after = owners(HashRing(["c1", "c2", "c3"]))
    moved = {k for k in KEYS if before[k] != after[k]}
    assert moved and all(after[k] == "c3" for k in moved)
    assert len(moved) < len(KEYS) / 2


def test_rings_are_per_conductor_group_and_hardware_type() -> None:
    rings = Rings(
        [
            Member("a1", "", ("ipmi", "redfish")),
            Member("a2", "", ("ipmi",)),
            Member("b1", "site-b", ("ipmi",)),
        ]
    )
    node = KEYS[0]
    assert rings.owner(node, group="", hardware_type="ipmi") in {"a1", "a2"}
    assert rings.owner(node, group="", hardware_type="redfish") == "a1"
    assert rings.owner(node, group="site-b", hardware_type="ipmi") == "b1"
    assert rings.owner(node, group="site-b", hardware_type="redfish") is None
    assert rings.owner(node, group="site-c", hardware_type="ipmi") is None
    assert rings.serves(group="", hardware_type="redfish")
    assert not rings.serves(group="site-b", hardware_type="redfish")
    assert rings.groups() == {"", "site-b"}


def test_a_node_uuid_is_compared_without_case() -> None:
    rings = Rings([Member(f"c{i}", "", ("ipmi",)) for i in range(5)])
    for key in KEYS[:50]:
        assert rings.owner(key.upper(), group="", hardware_type="ipmi") == rings.owner(
            key, group="", hardware_type="ipmi"
        )


@pytest.mark.parametrize(
    ("group", "hardware_type", "says"),
    [
        ("site-b", "ipmi", 'no live conductor is in conductor group "site-b"'),
        ("", "redfish", "no conductor of group '' (the default) runs hardware type 'redfish'"),
    ],
)
def test_the_reason_says_what_is_missing_and_what_to_do(
    group: str, hardware_type: str, says: str
) -> None:
    rings = Rings([Member("a1", "", ("ipmi",))])
    reason = no_conductor_reason(group=group, hardware_type=hardware_type, rings=rings)
    assert reason.startswith(
        f"No conductor service registered which supports driver {hardware_type}"
    )
    assert says in reason
