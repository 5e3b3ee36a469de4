"""Which conductor a request goes to: the hash ring's owner of its node.

A request about a node (or about a port, portgroup, volume connector or target, or
allocation of one) goes to the live conductor the ring (:mod:`metalcast.hashring`)
gives the node to, then, if that one cannot take it, to the other live conductors of
the node's conductor group and hardware type.  A request about a hardware type goes
to a conductor running it, a new node without a UUID to one serving its group and
hardware type, the rest (listing the hardware types) to any: these in random order,
spreading the load.  A node no
live conductor serves still gets one conductor to ask: it answers with the error its
own checks give (Ironic's "No valid host was found", 400), and updates and deletions,
which only touch the database, succeed there.

The live conductors and where they listen are read from the conductors table at most
every ``refresh`` seconds.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from metalcast import calls as c
from metalcast.db import repository as repo
from metalcast.db import tables as t
from metalcast.db.engine import Database
from metalcast.errors import NotFound, ServiceUnavailable
from metalcast.hashring import Member, Rings


@dataclass(frozen=True, slots=True)
class Peer:
    """A live conductor and where it takes requests."""

    member: Member
    url: str

    @property
    def hostname(self) -> str:
        return self.member.hostname


@dataclass(frozen=True, slots=True)
class Route:
    """What decides a request's conductor: a node (its UUID, group and hardware type),
    a hardware type alone, or nothing (any conductor)."""

    node_uuid: str | None = None
    group: str | None = None
    hardware_type: str | None = None


#: requests whose ``values`` name the node they create something for
_CHILD_CREATES = (c.CreatePort, c.CreatePortgroup, c.CreateVolumeConnector, c.CreateVolumeTarget)
#: request attribute naming a child row -> its table
_CHILDREN: dict[str, sa.Table] = {
    "port_id": t.ports,
    "portgroup_id": t.portgroups,
    "connector_id": t.volume_connectors,
    "target_id": t.volume_targets,
    "allocation_id": t.allocations,
}


class Router:
    """Picks the conductors for a request, in the order to try them."""

    def __init__(
        self,
        db: Database,
        *,
        timeout: float,
        refresh: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._timeout = timeout
        self._refresh = refresh
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._peers: dict[str, Peer] = {}
        self._rings = Rings([])
        self._loaded_at: float | None = None

    def candidates(self, request: c.Call[Any]) -> list[Peer]:
        """The live conductors to try for ``request``, best first.

        Raises:
            NotFound: the request names a node (or a row of one) that does not exist.
            ServiceUnavailable: no conductor is alive.
        """
        route = self.route(request)
        peers, rings = self._live()
        if not peers:
            raise ServiceUnavailable(
                "No conductor is alive: start one (`metalcast conductor`) on this "
                "database, or look at why the running ones stopped heartbeating "
                "(GET /v1/conductors)."
            )
        ordered = sorted(peers.values(), key=lambda p: p.hostname)
        if route.node_uuid is None:
            random.shuffle(ordered)  # no owner: spread the load
        if route.hardware_type is None:
            return ordered
        serving = [p for p in ordered if route.hardware_type in p.member.hardware_types]
        if route.group is not None:
            serving = [p for p in serving if p.member.conductor_group == route.group]
        if route.node_uuid is not None and route.group is not None:
            owner = rings.owner(
                route.node_uuid, group=route.group, hardware_type=route.hardware_type
            )
            serving.sort(key=lambda p: p.hostname != owner)
        # nobody serves it: one conductor answers with why (or does a database-only change)
        return serving or ordered[:1]

    def forget(self) -> None:
        """Read the live conductors again at the next request (one did not answer)."""
        with self._lock:
            self._loaded_at = None

    def route(self, request: c.Call[Any]) -> Route:
        """What decides where ``request`` goes.

        Raises:
            NotFound: the node (or row) it names does not exist.
        """
        node_id = getattr(request, "node_id", None)
        if isinstance(request, _CHILD_CREATES):
            node_id = request.values.get("node_id")
        if isinstance(request, c.CreateNode):
            return Route(
                node_uuid=request.values.get("uuid"),
                group=request.values.get("conductor_group") or "",
                hardware_type=request.values.get("driver"),
            )
        if node_id is None:
            for name, table in _CHILDREN.items():
                row_id = getattr(request, name, None)
                if row_id is not None:
                    node_id = self._node_of(table, row_id)
                    break
        if node_id is not None:
            return self._node_route(node_id)
        hardware_type = getattr(request, "hardware_type", None)
        return Route(hardware_type=hardware_type if isinstance(hardware_type, str) else None)

    def _node_of(self, table: sa.Table, row_id: int) -> int | None:
        with self._db.read() as conn:
            row = conn.execute(sa.select(table.c.node_id).where(table.c.id == row_id)).first()
        if row is None:
            raise NotFound(
                f"{table.name[:-1].replace('_', ' ').capitalize()} {row_id} could not be found."
            )
        return None if row[0] is None else int(row[0])

    def _node_route(self, node_id: int) -> Route:
        n = t.nodes.c
        query = sa.select(n.uuid, n.conductor_group, n.driver).where(n.id == node_id)
        with self._db.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"Node {node_id} could not be found.")
        return Route(node_uuid=row.uuid, group=row.conductor_group or "", hardware_type=row.driver)

    def _live(self) -> tuple[dict[str, Peer], Rings]:
        with self._lock:
            loaded = self._loaded_at
            if loaded is not None and self._monotonic() - loaded < self._refresh:
                return self._peers, self._rings
        with self._db.read() as conn:
            found = repo.list_conductors(conn)
        peers = {
            row.hostname: Peer(
                Member(row.hostname, row.conductor_group, tuple(row.hardware_types)), row.rpc_url
            )
            for row in found
            if row.rpc_url and repo.conductor_is_alive(row, timeout=self._timeout)
        }
        rings = Rings(p.member for p in peers.values())
        with self._lock:
            self._peers, self._rings, self._loaded_at = peers, rings, self._monotonic()
        return peers, rings
