"""The ASGI application: Ironic's v1 API over a database and a conductor client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route

from metalcast.api import auth, errors, metrics, openapi, policy, versions
from metalcast.api.audit import AuditLog
from metalcast.api.auth.cache import CredentialCache
from metalcast.api.dashboard import routes as dashboard
from metalcast.api.dashboard.session import SessionCookie
from metalcast.api.endpoint import JSON, Deps, declaration
from metalcast.api.middleware import ApiMiddleware
from metalcast.api.routes import (
    allocations,
    audit,
    chassis,
    conductors,
    deploy_templates,
    drivers,
    events,
    identity,
    indicators,
    inspection_rules,
    node_children,
    node_console,
    node_events,
    node_extras,
    node_firmware,
    node_states,
    node_vmedia,
    nodes,
    portgroups,
    ports,
    ramdisk,
    root,
    runbook_traits,
    runbooks,
    shards,
    tokens,
    volume,
    webhooks,
)
from metalcast.api.stream import EventHub
from metalcast.api.unversioned import UnversionedPaths
from metalcast.config import Settings
from metalcast.db.engine import Database
from metalcast.rpc.client import ConductorClient


def routes() -> list[BaseRoute]:
    """Every route, most specific first (``/v1/nodes/detail`` before ``{node}``)."""
    return [
        *root.ROUTES,
        *nodes.ROUTES,
        *node_children.ROUTES,
        *shards.ROUTES,
        *node_states.ROUTES,
        *node_vmedia.ROUTES,
        *indicators.ROUTES,
        *node_console.ROUTES,
        *node_extras.ROUTES,
        *node_firmware.ROUTES,
        *ports.ROUTES,
        *portgroups.ROUTES,
        *volume.ROUTES,
        *chassis.ROUTES,
        *drivers.ROUTES,
        *conductors.ROUTES,
        *allocations.ROUTES,
        *deploy_templates.ROUTES,
        *runbooks.ROUTES,
        *runbook_traits.ROUTES,
        *inspection_rules.ROUTES,
        *events.ROUTES,
        *node_events.ROUTES,
        *webhooks.ROUTES,
        *ramdisk.ROUTES,
        *identity.ROUTES,
        *tokens.ROUTES,
        *audit.ROUTES,
        *openapi.ROUTES,
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in Ironic's error shape.  A wrong method on
    an endpoint that the request's microversion does not have yet is a 404, as
    Ironic answers any method on a sub-resource newer than the request (a ``PUT`` of
    ``/v1/nodes/{node}/vmedia`` at 1.79)."""
    assert isinstance(exc, HTTPException)
    status, detail, headers = exc.status_code, exc.detail, exc.headers
    if status == 405 and _newer_than_request(request):
        status, detail, headers = 404, "The resource could not be found.", None
    return Response(
        errors.from_http_status(status, detail),
        status_code=status,
        headers=headers,
        media_type=JSON,
    )


def _newer_than_request(request: Request) -> bool:
    """Whether every endpoint at the request's path belongs to a microversion
    feature newer than the request's version."""
    version = request.scope.get("state", {}).get("version")
    if version is None:
        return False
    features = []
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL:
            declared = declaration(route.endpoint)
            operation = declared.operation if declared else None
            features.append(operation.feature if operation else None)
    return bool(features) and all(
        feature is not None and not versions.allows(feature, version) for feature in features
    )


def create_app(settings: Settings, db: Database, conductor: ConductorClient) -> Starlette:
    """Build the API application.

    Raises:
        UnsafeAuthStrategy: the authentication settings would expose the API
            (:func:`metalcast.api.auth.check_startup`).
        PolicyFileError: ``api.policy_file`` is missing or wrong.
    """
    strategy = auth.check_startup(settings)
    rules = policy.load(settings.api.policy_file)
    cache = CredentialCache(settings.api.auth_cache_seconds)
    authenticator = auth.build_authenticator(settings, strategy, db=db, cache=cache)
    audit_log = AuditLog(db)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        audit_log.close()  # what is queued gets written before the process goes

    middleware = Middleware(
        ApiMiddleware, authenticator=authenticator, settings=settings, audit_log=audit_log
    )
    api_routes = routes()
    app = Starlette(
        routes=[
            *api_routes,
            *node_console.WEBSOCKET_ROUTES,
            metrics.route(metrics.registry_for(db)),
            *dashboard.ROUTES,
        ],
        middleware=[Middleware(SessionCookie), Middleware(UnversionedPaths), middleware],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.deps = Deps(
        settings=settings,
        db=db,
        conductor=conductor,
        policy=rules,
        credentials=cache,
        audit=audit_log,
        openapi=openapi.DocumentCache(api_routes).document,
        events=EventHub(db, settings.events),
    )
    app.state.audit = audit_log
    return app
