"""This conductor's view of the hash ring (:mod:`metalcast.hashring`): which live
conductor serves a node, and a clear error when it is not this one.

The live conductors are read from the conductors table at most every ``refresh``
seconds (Ironic's ``hash_ring_reset_interval``) and whenever :meth:`reload` is called;
this conductor counts itself alive while it runs, whatever its last heartbeat says.

A node whose conductor group and hardware type no live conductor serves cannot be
worked on: every action that reaches the hardware or the state machine is refused
with :class:`NoValidHost` (400, as Ironic answers), which names the group and hardware
type and says what to do.  Updating and deleting such a node still work (they only
touch the database), so that it can be moved to a group that has a conductor.

Errors::

    InvalidInput
    └── NoValidHost          no live conductor serves the node's group and hardware type
    ServiceUnavailable (503)  another live conductor serves the node
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.models import Conductor, Node
from metalcast.errors import InvalidInput, ServiceUnavailable
from metalcast.hashring import Member, Rings, no_conductor_reason


class NoValidHost(InvalidInput):
    """No live conductor serves the node's conductor group and hardware type."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"No valid host was found. Reason: {reason}")


class ConductorRing:
    """The rings as this conductor sees them, cached for ``refresh`` seconds."""

    def __init__(
        self,
        db: Database,
        *,
        me: Member,
        timeout: float,
        refresh: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self.me = me
        self._timeout = timeout
        self._refresh = refresh
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._rings: Rings | None = None
        self._loaded_at = 0.0

    def rings(self) -> Rings:
        """The current rings (read again when older than ``refresh`` seconds)."""
        with self._lock:
            rings = self._rings
            if rings is not None and self._monotonic() - self._loaded_at < self._refresh:
                return rings
        return self.reload()

    def reload(self) -> Rings:
        """Read the live conductors now."""
        return self.survey()[0]

    def survey(self) -> tuple[Rings, list[Conductor]]:
        """Read the conductors now: the rings of the live ones (this one always among
        them), and the other conductors, dead ones: offline, or silent for longer
        than ``timeout``."""
        with self._db.read() as conn:
            conductors = repo.list_conductors(conn)
        live: list[Member] = [self.me]
        dead: list[Conductor] = []
        for c in conductors:
            if c.hostname == self.me.hostname:
                continue
            if repo.conductor_is_alive(c, timeout=self._timeout):
                live.append(Member(c.hostname, c.conductor_group, tuple(c.hardware_types)))
            else:
                dead.append(c)
        rings = Rings(live)
        with self._lock:
            self._rings, self._loaded_at = rings, self._monotonic()
        return rings, dead

    def owns(self, node: Node, *, rings: Rings | None = None) -> bool:
        """Whether the ring gives ``node`` to this conductor (``rings``: the current
        ones by default)."""
        owner = (rings or self.rings()).owner(
            node.uuid, group=node.conductor_group, hardware_type=node.driver
        )
        return owner == self.me.hostname

    def check_served(self, *, group: str, hardware_type: str) -> None:
        """Raise :class:`NoValidHost` unless some live conductor serves nodes of
        ``group`` and ``hardware_type`` (a node created or moved there must be
        reachable).

        Raises:
            NoValidHost: with what to do about it.
        """
        if self.rings().serves(group=group, hardware_type=hardware_type):
            return
        rings = self.reload()
        if not rings.serves(group=group, hardware_type=hardware_type):
            raise NoValidHost(
                no_conductor_reason(group=group, hardware_type=hardware_type, rings=rings)
            )

    def check(self, node_uuid: str, *, group: str, hardware_type: str) -> None:
        """Return if this conductor is on the node's ring (its conductor group, a
        hardware type it runs); raise otherwise.

        Another live conductor of the same group may be the ring's owner of the node:
        the work is done here all the same, by a peer on the same provisioning network
        (API processes send a request here when its owner refused it or is stopping,
        :mod:`metalcast.rpc.remote`).

        Raises:
            NoValidHost: no live conductor serves the node, with what to do about it.
            ServiceUnavailable: only conductors of another group or hardware type than
                this one's serve it.
        """
        if group == self.me.conductor_group and hardware_type in self.me.hardware_types:
            return
        rings = self.reload()  # a conductor may have joined or died since the last read
        owner = rings.owner(node_uuid, group=group, hardware_type=hardware_type)
        if owner is None:
            raise NoValidHost(
                no_conductor_reason(group=group, hardware_type=hardware_type, rings=rings)
            )
        shown = f'"{self.me.conductor_group}"' if self.me.conductor_group else "'' (the default)"
        raise ServiceUnavailable(
            f"Node {node_uuid} is served by conductor {owner}, not by this one "
            f"({self.me.hostname}, conductor group {shown}); the conductors changed while "
            "the request was on its way: retry it."
        )
