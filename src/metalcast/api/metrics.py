"""``GET /metrics``: the Prometheus metrics of this process, and the fleet's nodes by
state from the database.

What the process did (its API requests and, in the all-in-one server, its
conductor's work: :mod:`metalcast.metrics`) comes from prometheus_client's registry;
``metalcast_nodes`` is counted at each scrape by one grouped query
(:class:`NodeStates`), so every API process reports the whole fleet.  Nothing is
read from the database while serving any other request.

Who may read it: anyone when ``metrics.public`` is on or authentication is off
(``noauth``), else callers the policy rule ``metrics:get`` lets in (system readers
by default).  The middleware (:mod:`.middleware`) lets ``/metrics`` through without
credentials only when ``metrics.public`` is on.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from metalcast.api.endpoint import Deps
from metalcast.context import RequestContext
from metalcast.db import repository as repo
from metalcast.db.engine import Database

PATH = "/metrics"
RULE = "metrics:get"
NODES = "metalcast_nodes"


class NodeStates(Collector):
    """``metalcast_nodes{provision_state, power_state, maintenance}``: the nodes in the
    database, one grouped query per scrape."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            NODES,
            "Nodes by provision state, power state and maintenance (the whole fleet)",
            labels=("provision_state", "power_state", "maintenance"),
        )
        with self.db.read() as conn:
            counts = repo.count_nodes_by_state(conn)
        for provision, power, maintenance, count in counts:
            labels = (provision, power or "None", "true" if maintenance else "false")
            family.add_metric(labels, count)
        yield family


class _ThisProcess(Collector):
    """Everything in prometheus_client's process-wide registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def registry_for(db: Database) -> CollectorRegistry:
    """What one application's ``/metrics`` serves."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_ThisProcess())
    registry.register(NodeStates(db))
    return registry


def route(registry: CollectorRegistry) -> Route:
    """The ``GET /metrics`` route serving ``registry``."""

    async def get_metrics(request: Request) -> Response:
        deps: Deps = request.app.state.deps
        context: RequestContext = request.scope["state"]["context"]
        if not deps.settings.metrics.public:
            deps.policy.enforce(context, RULE)
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route(PATH, get_metrics, methods=["GET"])
