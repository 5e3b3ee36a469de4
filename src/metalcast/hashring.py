"""Which conductor serves a node: a consistent hash ring per (conductor group,
hardware type), as Ironic's.

Every live conductor places :data:`PARTITIONS` points on the ring of each hardware
type it runs in its conductor group; a node belongs to the host of the first point
at or after its UUID's hash.  When a conductor joins or leaves, only the nodes
between its points move (about 1/n of them), which is what lets another conductor
take over a dead one's nodes without reshuffling everyone else's.

Pure and deterministic: every process that sees the same live conductors computes
the same owner for every node, with nothing to exchange but the conductors table.

    rings = Rings([Member("c1", "", ("ipmi", "fake-hardware")), Member("c2", "", ("ipmi",))])
    rings.owner(node_uuid, group="", hardware_type="ipmi")   # "c1" or "c2"
    rings.owner(node_uuid, group="site-b", hardware_type="ipmi")   # None: no conductor
"""

from __future__ import annotations

import bisect
import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

#: points per conductor on each ring it is on (Ironic's default: 2 ** 5)
PARTITIONS = 32


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """A consistent hash ring over ``hosts``."""

    __slots__ = ("_hosts", "_owners", "_points")

    def __init__(self, hosts: Iterable[str], *, partitions: int = PARTITIONS) -> None:
        if partitions < 1:
            raise ValueError("a hash ring needs at least one partition per host")
        self._hosts = frozenset(hosts)
        placed = sorted(
            (_point(f"{host}/{index}"), host) for host in self._hosts for index in range(partitions)
        )
        self._points = [point for point, _ in placed]
        self._owners = [host for _, host in placed]

    @property
    def hosts(self) -> frozenset[str]:
        return self._hosts

    def owner(self, key: str) -> str | None:
        """The host ``key`` belongs to (None on an empty ring)."""
        if not self._points:
            return None
        index = bisect.bisect_left(self._points, _point(key))
        return self._owners[index % len(self._owners)]


@dataclass(frozen=True, slots=True)
class Member:
    """A live conductor, as the rings see it."""

    hostname: str
    conductor_group: str
    hardware_types: tuple[str, ...]


class Rings:
    """One :class:`HashRing` per (conductor group, hardware type) that has a live
    conductor."""

    __slots__ = ("_rings", "members")

    def __init__(self, members: Iterable[Member], *, partitions: int = PARTITIONS) -> None:
        self.members = tuple(sorted(members, key=lambda m: m.hostname))
        hosts: dict[tuple[str, str], list[str]] = {}
        for member in self.members:
            for hardware_type in member.hardware_types:
                hosts.setdefault((member.conductor_group, hardware_type), []).append(
                    member.hostname
                )
        self._rings = {key: _ring(frozenset(h), partitions) for key, h in hosts.items()}

    def owner(self, node_uuid: str, *, group: str, hardware_type: str) -> str | None:
        """The conductor that serves the node, None when no live conductor of
        ``group`` runs ``hardware_type``."""
        ring = self._rings.get((group, hardware_type))
        return None if ring is None else ring.owner(node_uuid.lower())

    def serves(self, *, group: str, hardware_type: str) -> bool:
        """Whether some live conductor of ``group`` runs ``hardware_type``."""
        return (group, hardware_type) in self._rings

    def groups(self) -> set[str]:
        """The conductor groups with a live conductor."""
        return {m.conductor_group for m in self.members}


@functools.lru_cache(maxsize=128)
def _ring(hosts: frozenset[str], partitions: int) -> HashRing:
    """The ring of ``hosts``, made once: the same conductors are alive request after
    request, and placing their points is the costly part (a blake2b each)."""
    return HashRing(hosts, partitions=partitions)


def no_conductor_reason(*, group: str, hardware_type: str, rings: Rings) -> str:
    """Why no conductor serves ``(group, hardware_type)``, and what to do, for an
    error message (the words of Ironic's ``NoValidHost`` first)."""
    shown = f'"{group}"' if group else "'' (the default)"
    if group not in rings.groups():
        hint = (
            f"no live conductor is in conductor group {shown}: start one with "
            f"conductor.conductor_group={group!r}, or move the node to a group that has "
            "one (baremetal node set --conductor-group ...)"
        )
    else:
        hint = (
            f"no conductor of group {shown} runs hardware type {hardware_type!r}: start "
            "one that does, or give the node another driver"
        )
    return (
        f"No conductor service registered which supports driver {hardware_type} for "
        f"conductor group {shown}; {hint}."
    )
