"""The ASGI layer every request crosses: identity, microversion, limits, headers,
errors, log, audit.

For each HTTP request it authenticates the caller (:mod:`metalcast.api.auth`; a
request without valid credentials gets 401 unless its path is public), negotiates
the microversion, enforces the limits on input (:mod:`metalcast.api.limits`: control
characters in the path or query, 413 for a body over the limit, read no further),
stamps the version and request-id headers on the response, turns any exception the
app lets escape into Ironic's error body, writes one access-log line and, for writes,
one audit row (:mod:`metalcast.api.audit`) as soon as the status is known.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from metalcast import metrics
from metalcast.api import audit, errors, limits, versions
from metalcast.api.audit import AuditLog, AuditNote
from metalcast.api.auth import PUBLIC_PATHS, Authenticator, Credentials, anonymous
from metalcast.api.dashboard.session import is_dashboard
from metalcast.api.metrics import PATH as METRICS_PATH
from metalcast.api.openapi import PATH as OPENAPI_PATH
from metalcast.config import Settings
from metalcast.context import RequestContext
from metalcast.errors import MetalcastError, Unauthorized

log = structlog.get_logger("metalcast.api.access")

REQUEST_ID_HEADER = b"x-openstack-request-id"
#: the methods the metrics name; any other is "other" (the client chooses the method)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class ApiMiddleware:
    """Wraps the Starlette app; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticator: Authenticator,
        settings: Settings,
        audit_log: AuditLog,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.settings = settings
        self.audit_log = audit_log
        #: ``/metrics`` needs no credentials (``metrics.public``)
        self.public_metrics = settings.metrics.public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _strip_trailing_slash(scope)
        headers = Headers(scope=scope)
        request_id = f"req-{uuid.uuid4()}"
        context = anonymous(request_id)
        note = AuditNote()
        exchange = _Exchange(send, request_id)
        exchange.on_start = lambda status: self._audit(scope, context, note, status)
        started = time.perf_counter()
        try:
            context = await self._identify(scope, headers, request_id)
            exchange.version = _negotiate(scope["path"], headers)
            _strip_json_suffix(scope, headers, exchange.version)
            limit = self._check_limits(scope, headers)
            scope.setdefault("state", {}).update(
                context=context, version=exchange.version, audit=note
            )
            await self.app(scope, limits.limited(receive, limit), exchange.send)
        except Exception as exc:  # the boundary: every error becomes a response
            await exchange.fail(exc)
        finally:
            if not exchange.started:  # no response at all: the client went away
                self._audit(scope, context, note, exchange.status)
            seconds = time.perf_counter() - started
            metrics.API_REQUESTS.labels(
                _method_of(scope), route_of(scope), str(exchange.status)
            ).observe(seconds)
            log.info(
                "request",
                request_id=request_id,
                user=context.user,
                project=context.project,
                method=scope["method"],
                path=scope["path"],
                status=exchange.status,
                duration_ms=round(seconds * 1000, 2),
            )

    def _check_limits(self, scope: Scope, headers: Headers) -> int:
        """The request's body limit, once its target and declared length pass.

        Raises:
            InvalidInput: control characters in the path or query string.
            RequestTooLarge: ``Content-Length`` is over the limit.
        """
        raw_path = scope.get("raw_path") or scope["path"].encode()
        limits.check_target(raw_path, scope.get("query_string", b""))
        limit = limits.body_limit(self.settings, method=scope["method"], path=scope["path"])
        limits.check_declared_length(headers, limit)
        return limit

    def _audit(self, scope: Scope, context: RequestContext, note: AuditNote, status: int) -> None:
        method, path = scope["method"], scope["path"]
        if audit.audited(method, path, status):
            row = audit.event(context, note, method=method, path=path, status=status)
            self.audit_log.record(row)

    async def _identify(self, scope: Scope, headers: Headers, request_id: str) -> RequestContext:
        """The caller's context; anonymous on public paths only.

        Raises:
            Unauthorized: no valid credentials for a path that needs them.
        """
        client = scope.get("client")
        credentials = Credentials(
            headers=headers,
            client=client[0] if client else None,
            request_id=request_id,
            method=scope["method"],
            path=scope["path"],
        )
        path = scope["path"]
        # the dashboard's pages decide themselves: a caller without valid credentials
        # gets the login page, not a 401 document (metalcast.api.dashboard)
        public = (
            PUBLIC_PATHS.match(path) is not None
            or (self.public_metrics and path == METRICS_PATH)
            or is_dashboard(path)
        )
        try:
            context = await self.authenticator.authenticate(credentials)
        except Unauthorized:
            if not public:
                raise
            context = None
        if context is not None:
            return context
        if not public:
            raise Unauthorized("Authentication required: this request carries no credentials.")
        return anonymous(request_id)


def route_of(scope: Scope) -> str:
    """The route template that served the request (``/v1/nodes/{node}``), never the
    path itself: metrics labels stay a bounded set.  "unmatched" when none did (an
    unknown path, or a request refused before routing)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _method_of(scope: Scope) -> str:
    method: str = scope["method"]
    return method if method in _METHODS else "other"


class _Exchange:
    """The response side of one request: adds headers, remembers the status."""

    def __init__(self, send: Send, request_id: str) -> None:
        self._send = send
        self.request_id = request_id
        self.version: versions.Version | None = None
        self.status = 500
        self.started = False
        #: called with the status as the response starts (before the client has it)
        self.on_start: Callable[[int], None] = lambda status: None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
            self.status = message["status"]
            self.on_start(self.status)
            extra = versions.response_headers(self.version)
            extra.append((REQUEST_ID_HEADER, self.request_id.encode()))
            message = {**message, "headers": [*message.get("headers", ()), *extra]}
        await self._send(message)

    async def fail(self, exc: Exception) -> None:
        status, body = errors.from_exception(exc, request_id=self.request_id)
        if self.started:
            # too late for an error response; the client sees a cut-off body
            return
        start = _start(status, len(body))
        if isinstance(exc, Unauthorized):
            start["headers"].append((b"www-authenticate", exc.challenge.encode("latin-1")))
        await self.send(start)
        await self.send({"type": "http.response.body", "body": body})


def _start(status: int, length: int) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
    }


def _negotiate(path: str, headers: Headers) -> versions.Version | None:
    """The request's microversion; the root document ignores a bad header."""
    try:
        return versions.negotiate(headers)
    except MetalcastError:
        if path == "/":
            return None
        raise


def _strip_trailing_slash(scope: Scope) -> None:
    """``/v1/nodes/`` is ``/v1/nodes``, as in Ironic (no redirect)."""
    path: str = scope["path"]
    if len(path) > 1 and path.endswith("/"):
        scope["path"] = path.rstrip("/") or "/"


def _strip_json_suffix(scope: Scope, headers: Headers, version: versions.Version | None) -> None:
    """Below 1.91 Ironic drops a ``.json`` at the end of a path (``/v1/nodes/<uuid>.json``
    is the node), when the request names its version; from 1.91 it is part of the name."""
    path: str = scope["path"]
    if (
        path.endswith(".json")
        and path.startswith("/v1/")
        and path != OPENAPI_PATH
        and version is not None
        and not versions.allows("json_suffix_plain", version)
        and headers.get(versions.HEADER.lower())
    ):
        scope["path"] = path[: -len(".json")]
