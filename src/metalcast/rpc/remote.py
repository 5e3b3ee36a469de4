"""The conductor client of an API process (``metalcast api``): each request sent to
the conductor that owns its node (:mod:`.routing`), over sealed JSON-RPC
(:mod:`.wire`, answered by :mod:`.server`).

When the chosen conductor cannot take a request, the next candidate gets it:

- it refused the connection or is unreachable (it died, or restarts): nothing was
  sent, so the request goes to the next one and the live conductors are read again;
- it answered "shutting down" (503, a rolling restart): the same.

When a conductor took the request but the connection broke or timed out before the
answer, the request may have been carried out: it is not sent again, and the caller
gets a 503 that says to look at the node before retrying.

Errors: what the request's operation raises (:mod:`metalcast.calls`), rebuilt from
the conductor's answer (:func:`.codec.decode_error`), and ServiceUnavailable (503)
when no conductor could be reached or one went away mid-request.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, TypeVar, cast

import httpx

from metalcast.calls import Call
from metalcast.context import RequestContext
from metalcast.db.engine import Database
from metalcast.errors import MetalcastError, ServiceUnavailable
from metalcast.rpc import codec
from metalcast.rpc.client import ConductorClient
from metalcast.rpc.routing import Peer, Router
from metalcast.rpc.server import KEEPALIVE_EXPIRY, PATH
from metalcast.rpc.wire import REQUEST, RESPONSE, RpcRefused, Seal
from metalcast.secrecy import SecretBox

T = TypeVar("T")
_log = logging.getLogger(__name__)

#: what a stopping conductor answers (metalcast.conductor.workers)
SHUTTING_DOWN = "shutting down"


class RemoteConductorClient:
    """A :class:`ConductorClient` sending each request to its node's conductor."""

    def __init__(
        self,
        db: Database,
        secret_box: SecretBox,
        *,
        heartbeat_timeout: float,
        refresh: float = 1.0,
        timeout: float = 120.0,
    ) -> None:
        self.router = Router(db, timeout=heartbeat_timeout, refresh=refresh)
        self.seal = Seal(secret_box)
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=5.0),
            limits=httpx.Limits(
                max_connections=256,
                max_keepalive_connections=64,
                keepalive_expiry=KEEPALIVE_EXPIRY,
            ),
        )

    def close(self) -> None:
        self._http.close()

    def call(self, request: Call[T], *, context: RequestContext) -> T:
        tried: list[str] = []
        for peer in self.router.candidates(request):
            try:
                return cast(T, self._send(peer, request, context))
            except _Unreachable as exc:
                tried.append(f"{peer.hostname} ({exc})")
                self.router.forget()
        raise ServiceUnavailable(
            f"No conductor could take the request: {'; '.join(tried)}. Retry in a few "
            "seconds: another conductor takes the node over once these stop heartbeating."
        )

    def _send(self, peer: Peer, request: Call[Any], context: RequestContext) -> Any:
        rid = str(uuid.uuid4())
        message = {
            "jsonrpc": "2.0",
            "id": rid,
            "method": type(request).__name__,
            "params": {"request": codec.encode(request), "context": codec.encode(context)},
        }
        body = self.seal.seal(message, direction=REQUEST)
        try:
            response = self._http.post(
                peer.url + PATH,
                content=body,
                headers={"Content-Type": "application/octet-stream"},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _Unreachable(f"not reachable at {peer.url}: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(
                f"Conductor {peer.hostname} went away while executing "
                f"{type(request).__name__} ({type(exc).__name__}): it may or may not have "
                "been carried out; look at the node before retrying."
            ) from None
        if response.status_code == 401:
            raise ServiceUnavailable(
                f"Conductor {peer.hostname} refused this API's request: {response.text.strip()}"
            )
        if response.status_code != 200:
            raise ServiceUnavailable(
                f"Conductor {peer.hostname} answered HTTP {response.status_code}: "
                f"{response.text.strip()[:200]}"
            )
        try:
            reply = self.seal.open(response.content, direction=RESPONSE)
        except RpcRefused as exc:
            raise ServiceUnavailable(f"Conductor {peer.hostname}: {exc.message}") from None
        if reply.get("id") != rid:
            raise ServiceUnavailable(f"Conductor {peer.hostname} answered another request")
        if "error" in reply:
            error = codec.decode_error((reply["error"] or {}).get("data"))
            if isinstance(error, ServiceUnavailable) and SHUTTING_DOWN in error.message:
                raise _Unreachable("shutting down")
            raise error
        return codec.decode(reply.get("result"))


class _Unreachable(MetalcastError):
    """The conductor did not take the request: another may."""


#: mypy proves here that RemoteConductorClient satisfies the ConductorClient protocol
_check: type[ConductorClient] = RemoteConductorClient
