"""The ASGI application: Ironic's v1 API over a database and a conductor client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from metalcast.api import auth, errors, metrics, openapi, policy
from metalcast.api.audit import AuditLog
from metalcast.api.auth.cache import CredentialCache
from metalcast.api.dashboard import routes as dashboard
from metalcast.api.dashboard.session import SessionCookie
from metalcast.api.endpoint import JSON, Deps
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
    """Unknown paths and wrong methods, in Ironic's error shape."""
    assert isinstance(exc, HTTPException)
    return Response(
        errors.from_http_status(exc.status_code, exc.detail),
        status_code=exc.status_code,
        headers=exc.headers,
        media_type=JSON,
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
