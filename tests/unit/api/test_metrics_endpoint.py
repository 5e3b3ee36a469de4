"""``GET /metrics``: who may read it, the fleet's nodes counted from the database, the
API's requests labelled by route template, and the conductor's transitions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import Api, Client, build, make_settings
from prometheus_client.parser import text_string_to_metric_families

from metalcast.api.app import create_app
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import MetricsSettings
from metalcast.db.engine import Database
from metalcast.drivers.registry import default_registry
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import SecretBox

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(api: Api) -> Samples:
    """``/metrics`` parsed by prometheus_client's own parser."""
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_nodes_are_counted_by_state_from_the_database(api: Api) -> None:
    api.node(name="a")
    api.node(name="b")
    samples = scrape(api)
    enrolled = {"provision_state": "enroll", "power_state": "None", "maintenance": "false"}
    assert value(samples, "metalcast_nodes", **enrolled) == 2


def test_a_manage_shows_in_the_transitions_and_the_state_gauge(api: Api) -> None:
    api.node(name="m")
    before = scrape(api)
    assert api.put("/v1/nodes/m/states/provision", {"target": "manage"}).status_code == 202
    assert api.service.rt.workers.wait_idle(10)
    after = scrape(api)
    verifying = {"event": "manage", "from_state": "enroll", "to_state": "verifying"}
    done = {"event": "done", "from_state": "verifying", "to_state": "manageable"}
    for labels in (verifying, done):
        name = "metalcast_provision_transitions_total"
        assert value(after, name, **labels) == value(before, name, **labels) + 1
    verbs = "metalcast_provision_verb_duration_seconds_count"
    managed = {"verb": "manage", "result": "succeeded"}
    assert value(after, verbs, **managed) == value(before, verbs, **managed) + 1
    phases = "metalcast_provision_state_duration_seconds_count"
    assert value(after, phases, state="verifying") == value(before, phases, state="verifying") + 1
    rest = {"provision_state": "manageable", "maintenance": "false"}
    assert value(after, "metalcast_nodes", power_state="power off", **rest) == 1
    assert value(after, "metalcast_workers_busy") == 0


def test_requests_are_labelled_by_route_template_never_by_path(api: Api) -> None:
    node = api.node(name="r")
    assert api.get(f"/v1/nodes/{node['uuid']}").status_code == 200
    assert api.request("BREW", "/v1/nodes").status_code == 405
    assert api.get("/v1/no/such/thing").status_code == 404
    text = api.get("/metrics").text
    assert node["uuid"] not in text
    assert "no/such" not in text
    samples = scrape(api)
    count = "metalcast_api_request_duration_seconds_count"
    shown = {"method": "GET", "route": "/v1/nodes/{node}", "status": "200"}
    assert value(samples, count, **shown) >= 1
    assert value(samples, count, method="other", route="/v1/nodes", status="405") >= 1
    assert value(samples, count, method="GET", route="unmatched", status="404") >= 1


def test_with_authentication_only_system_readers_read_the_metrics(secured: Api) -> None:
    anonymous = secured.get("/metrics")
    assert anonymous.status_code == 401
    assert secured.as_("member", "p1").get("/metrics").status_code == 403
    assert secured.as_("admin", "p1").get("/metrics").status_code == 403
    assert secured.as_("reader").get("/metrics").status_code == 200


@pytest.fixture
def public(tmp_path: Path) -> Iterator[Api]:
    """Header authentication, and ``metrics.public`` on."""
    settings = make_settings(tmp_path, auth="header").model_copy(
        update={"metrics": MetricsSettings(public=True)}
    )
    db = Database(settings.database_url)
    db.migrate()
    service = ConductorService(
        settings,
        db,
        registry=default_registry(),
        secret_box=SecretBox.from_file(tmp_path / "secret.key"),
        intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0, sensors=0),
    )
    service.start()
    app = create_app(settings, db, LocalConductorClient(service))
    yield Api(Client(app), db, service)
    app.state.audit.close()
    service.stop(5)
    db.dispose()


def test_metrics_public_serves_anyone_and_opens_nothing_else(public: Api) -> None:
    assert public.get("/metrics").status_code == 200
    assert public.as_("member", "p1").get("/metrics").status_code == 200
    assert public.get("/v1/nodes").status_code == 401
    assert public.get("/v1/metrics").status_code == 401  # only the exact path is public


def test_the_metrics_are_not_under_v1(api: Api) -> None:
    assert api.get("/v1/metrics").status_code == 404


def test_build_is_unchanged_by_the_metrics_route(tmp_path: Path) -> None:
    for built in build(tmp_path, "noauth"):
        assert built.get("/v1/openapi.json").status_code == 200
