"""Paths without the version element: ``/nodes/x`` is ``/v1/nodes/x``, as in Ironic.

Ironic routes a path whose first element is not a version to its default version
(v1); the ``bookmark`` links of every document (``http://host/nodes/<uuid>``) rely on
it, and so do clients that build such paths (tempest's ``show_node_allocation``).
The rewrite happens before anything else looks at the path, so authentication,
policy and logs all see the ``/v1`` path.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

#: paths served as they are: the root document, the API, the images the boot relay
#: serves, the dashboard
_AS_IS = ("/v1/", "/images/", "/dashboard/")
#: single paths served as they are: the root documents, the Prometheus metrics, the
#: dashboard
_EXACT = ("", "/", "/v1", "/metrics", "/dashboard")


def versioned(path: str) -> str:
    """``path`` with ``/v1`` in front unless it is ``/``, ``/v1``, ``/metrics``, the
    dashboard's or served as is."""
    if path in _EXACT or path.startswith(_AS_IS):
        return path
    return "/v1" + path


class UnversionedPaths:
    """ASGI middleware rewriting unversioned paths to ``/v1`` ones."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = versioned(scope["path"])
            if path != scope["path"]:
                scope = {**scope, "path": path}
                raw = scope.get("raw_path")
                if isinstance(raw, bytes):
                    scope["raw_path"] = b"/v1" + raw
        await self.app(scope, receive, send)
