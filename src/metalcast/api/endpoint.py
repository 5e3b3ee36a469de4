"""How a route becomes an endpoint: policy, body parsing, the threadpool, JSON out.

A handler is a plain function ``(call: Call) -> object`` that runs in a worker thread
(database reads and conductor calls block).  It returns the JSON document of a 200
response, a :class:`Reply` for anything else, or a Starlette ``Response`` for what is
not JSON (the event stream).  :func:`endpoint` wraps it: names
the policy rule that guards the route (and notes it for the audit log), checks it at
once when it looks at the caller alone (:class:`~metalcast.api.policy.rules.Subject`),
parses the JSON body (refusing documents nested too deep or holding NUL characters,
:mod:`metalcast.api.limits`), runs the handler as the caller
(:func:`metalcast.context.acting_for`), encodes the result with orjson.  Rules about
an object (a node, an allocation, a token) and listings are checked by the handler
through :meth:`Call.enforce` / :meth:`Call.list_scope` once it knows the object; a
handler that returns without any check is a bug and answers 500 rather than let the
request through unchecked.

Links in responses start at ``api.public_url`` when it is set; else at the address
the client connected to.  ``X-Forwarded-Host`` and ``X-Forwarded-Proto`` are believed
only from a peer in ``api.trusted_proxies`` (a reverse proxy in front of the API);
from anyone else they are ignored, so nobody can make the API hand out links to a
host of their choosing.

``doc`` declares what the endpoint takes and answers (:class:`~metalcast.api.operations.
Operation`); :func:`declaration` finds it again, with the rule, for the OpenAPI
description (:mod:`metalcast.api.openapi`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from metalcast.api import limits, policy
from metalcast.api.audit import AuditLog, AuditNote
from metalcast.api.auth import parse_networks
from metalcast.api.auth.cache import CredentialCache
from metalcast.api.operations import Operation
from metalcast.api.policy.rules import BY_NAME, Rule, Subject
from metalcast.api.stream import EventHub
from metalcast.api.versions import MIN_VERSION, Version
from metalcast.config import Settings
from metalcast.context import RequestContext, acting_for
from metalcast.db.engine import Database
from metalcast.errors import InvalidInput
from metalcast.rpc.client import ConductorClient

JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Deps:
    """What every handler may use: settings, the database, the conductor, the policy,
    the cache of verified credentials (which the identity API drops revoked ones
    from), and the audit log."""

    settings: Settings
    db: Database
    conductor: ConductorClient
    policy: policy.Policy
    credentials: CredentialCache
    audit: AuditLog | None = None
    #: the OpenAPI description of the application's routes, built once
    #: (:class:`metalcast.api.openapi.DocumentCache`)
    openapi: Callable[[], Mapping[str, Any]] | None = None
    #: this process's tail of the node event log (GET /v1/events)
    events: EventHub | None = None


@dataclass(frozen=True, slots=True)
class Call:
    """One request, as a handler sees it."""

    deps: Deps
    context: RequestContext
    version: Version
    method: str
    #: the request path, e.g. ``/v1/nodes/detail``
    path: str
    #: the path parameters, e.g. ``{"node": "node-1"}``
    args: Mapping[str, str]
    query: QueryParams
    body: Any
    #: scheme://host[:port] of the API as the client reached it (or public_url)
    base_url: str
    #: the policy rules checked so far for this request
    checked: list[str] = field(default_factory=list)
    #: what the audit log records of this request beside its path and status
    audit: AuditNote = field(default_factory=AuditNote)
    #: the request's headers (lower-case names)
    headers: Mapping[str, str] = field(default_factory=dict)

    def url(self, *parts: str) -> str:
        """An absolute URL below the API's root: ``url("v1", "nodes", uuid)``."""
        return "/".join((self.base_url, *parts))

    def enforce(
        self, rule: str, target: policy.Target | None = None, *, hide: str | None = None
    ) -> None:
        """Let the caller through policy ``rule`` (on ``target``) or raise.

        Raises:
            NotFound: refused, and ``hide`` (the message) given.
            Forbidden: refused.
        """
        self.checked.append(rule)
        self.deps.policy.enforce(self.context, rule, target, hide=hide)

    def allows(self, rule: str, target: policy.Target | None = None) -> bool:
        """Whether policy ``rule`` lets the caller in (for what a response shows)."""
        return self.deps.policy.allows(self.context, rule, target)

    def list_scope(self, kind: str) -> str | None:
        """The project a listing of ``kind`` is limited to, None for all of them.

        Raises:
            Forbidden: the caller may not list them at all.
        """
        self.checked.append(f"baremetal:{kind}:list")
        return self.deps.policy.list_scope(self.context, kind)


@dataclass(slots=True)
class Reply:
    """A response other than "200 with this JSON document"."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], object]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Declaration:
    """What :func:`endpoint` knows of one endpoint."""

    rule: Rule
    #: whether the endpoint reads a JSON request body
    body: bool
    #: what it takes and answers (None: not described yet)
    operation: Operation | None


#: endpoint -> its declaration, filled as route modules are imported (the routes
#: are built at import time too: both are fixed for the life of the process)
_DECLARED: dict[Callable[..., object], Declaration] = {}


def declaration(route_endpoint: Callable[..., object]) -> Declaration | None:
    """The declaration of an endpoint :func:`endpoint` made (None for any other)."""
    return _DECLARED.get(route_endpoint)


def endpoint(
    action: str,
    *,
    body: bool = False,
    checks_itself: bool = False,
    doc: Operation | None = None,
) -> Callable[[Handler], Endpoint]:
    """Turn ``handler`` into a Starlette endpoint guarded by policy rule ``action``.

    With ``body`` the request body is parsed as JSON (empty body: ``None``).  With
    ``checks_itself`` the handler checks even a rule about the caller alone (when
    the rule to check depends on the request, e.g. creating a node for one's own
    project).  ``doc`` describes it (:mod:`metalcast.api.openapi`).

    Raises:
        UnknownRule: ``action`` is not a policy rule (when the module is imported).
    """
    rule = BY_NAME.get(action)
    if rule is None:
        raise policy.UnknownRule(f"policy rule '{action}' is not defined")
    upfront = rule.subject is Subject.CALLER and not checks_itself

    def wrap(handler: Handler) -> Endpoint:
        async def run(request: Request) -> Response:
            state = request.scope.get("state", {})
            context: RequestContext = state["context"]
            deps: Deps = request.app.state.deps
            note: AuditNote = state.get("audit") or AuditNote()
            note.action = action
            checked = [action] if upfront else []
            if upfront:
                deps.policy.enforce(context, action)
            payload = parse_json(await request.body()) if body else None
            call = Call(
                deps=deps,
                context=context,
                version=state.get("version") or MIN_VERSION,
                method=request.method,
                path=request.scope.get("root_path", "") + request.scope["path"],
                args=request.path_params,
                query=request.query_params,
                body=payload,
                base_url=_base_url(request),
                checked=checked,
                audit=note,
                headers=request.headers,
            )
            return await run_in_threadpool(_respond, handler, call)

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        _DECLARED[run] = Declaration(rule=rule, body=body, operation=doc)
        return run

    return wrap


def parse_json(raw: bytes) -> Any:
    """The JSON document in a request body; ``None`` for an empty body.

    Raises:
        InvalidInput: the body is not JSON (UTF-8), is nested deeper than
            :data:`~metalcast.api.limits.MAX_DEPTH` or holds a NUL character.
    """
    if not raw.strip():
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"The request body is not valid JSON: {exc}") from None
    limits.check_document(document)
    return document


def json_response(document: object, *, status: int = 200) -> Response:
    return Response(orjson.dumps(document), status_code=status, media_type=JSON)


def _respond(handler: Handler, call: Call) -> Response:
    with acting_for(call.context):
        result = handler(call)
    if not call.checked:
        # every request passes a policy check; a handler that forgot its own must
        # not answer as if it had
        raise RuntimeError(f"{handler.__name__} returned without checking any policy rule")
    if isinstance(result, Response):  # one that is not JSON: a stream of events
        return result
    if not isinstance(result, Reply):
        return json_response(result)
    if result.status == 201:
        call.audit.created(result.body)
    if result.body is None:
        return Response(status_code=result.status, headers=result.headers)
    response = json_response(result.body, status=result.status)
    response.headers.update(result.headers)
    return response


def _base_url(request: Request) -> str:
    """Where links point: ``api.public_url``, else where the client connected (as a
    trusted proxy says, when the peer is one; see the module docstring)."""
    settings = request.app.state.deps.settings.api
    if settings.public_url:
        return str(settings.public_url).rstrip("/")
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded and _from_trusted_proxy(request, settings.trusted_proxies):
        # a proxy in front of several hops lists them all; the first is the client's
        host = forwarded.split(",")[0].strip()
        proto = request.headers.get("x-forwarded-proto", "http").split(",")[0].strip().lower()
        if _FORWARDED_HOST.fullmatch(host) and proto in ("http", "https"):
            return f"{proto}://{host}"
    return _own_base_url(request.scope, request.headers.get("host"))


def _own_base_url(scope: Scope, host: str | None) -> str:
    """The URL the client connected to, as Starlette's ``request.base_url`` makes it
    (the Host header, else the server's address), without parsing a URL object on
    every request."""
    scheme: str = scope.get("scheme", "http")
    root: str = scope.get("root_path", "").rstrip("/")
    if not host:
        server = scope.get("server")
        if server is None:
            return root
        name, port = server
        default = _DEFAULT_PORTS.get(scheme)
        host = name if port == default else f"{name}:{port}"
    return f"{scheme}://{host}{root}"


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


#: a host[:port] as a Host header may give it (names, IPv4, [IPv6])
_FORWARDED_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?")


def _from_trusted_proxy(request: Request, trusted: tuple[str, ...]) -> bool:
    """Whether the peer is in ``api.trusted_proxies`` (loopback is not implied)."""
    client = request.client
    if client is None or not trusted:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    return any(address in network for network in parse_networks(trusted))
