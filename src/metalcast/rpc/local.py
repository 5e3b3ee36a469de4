"""The in-process conductor client of the all-in-one server: direct calls, no network."""

from __future__ import annotations

from typing import TypeVar

from metalcast.calls import Call
from metalcast.conductor.service import ConductorService
from metalcast.context import RequestContext
from metalcast.rpc.client import ConductorClient

T = TypeVar("T")


class LocalConductorClient:
    """A :class:`ConductorClient` handing requests to one in-process
    :class:`ConductorService`."""

    def __init__(self, service: ConductorService) -> None:
        self.service = service

    def call(self, request: Call[T], *, context: RequestContext) -> T:
        return self.service.execute(request, context=context)


#: mypy proves here that LocalConductorClient satisfies the ConductorClient protocol
_check: type[ConductorClient] = LocalConductorClient
