"""The conductor client interface: how the API asks a conductor for anything.

The API never imports the conductor; it builds a request of :mod:`metalcast.calls`
and hands it to a :class:`ConductorClient`.  In the all-in-one server that is
:class:`metalcast.rpc.local.LocalConductorClient`, which has the conductor execute it
in-process; in an API process (``metalcast api``),
:class:`metalcast.rpc.remote.RemoteConductorClient`, which sends it to the conductor
process that owns the node.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from metalcast.calls import Call
from metalcast.context import RequestContext

T = TypeVar("T")


class ConductorClient(Protocol):
    """The conductor, as the API layer sees it."""

    def call(self, request: Call[T], *, context: RequestContext) -> T:
        """Have a conductor execute ``request`` on behalf of ``context``; its result.

        Raises what the request's operation raises (see :mod:`metalcast.calls`).
        """
        ...
