"""``curl /metrics`` on a real server: the work done shows in the transition counters
and the node gauge, and the lab BMCs' sensors (read by the periodic collection over
real IPMI, through pyghmi, and real Redfish, through sushy) show as readings of their
nodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bmclab import PASSWORD, USERNAME, baremetal, bmc_of, enroll, machine_of, wait_for
from prometheus_client.parser import text_string_to_metric_families

from metalcast.lab.bmc.fleet import Fleet

SERVER_ENV = {
    "METALCAST_SENSORS__INTERVAL": "0.5",
    "METALCAST_CONDUCTOR__BMC_CALL_TIMEOUT": "5",
}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
#: the lab machine's sensor kinds -> the metric they are exported as
METRIC_OF = {
    "temperature": "metalcast_sensor_temperature_celsius",
    "fan": "metalcast_sensor_fan_rpm",
    "power": "metalcast_sensor_power_watts",
}


@pytest.fixture(scope="module")
def url(start_metalcast_server: Callable[..., Any]) -> Iterator[str]:
    with start_metalcast_server(env=SERVER_ENV) as server:
        yield server.url


def scrape(url: str) -> Samples:
    response = httpx.get(f"{url}/metrics", timeout=30)
    response.raise_for_status()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name`` over every series with ``labels`` among its labels."""
    wanted = set(labels.items())
    return sum(v for (n, series), v in samples.items() if n == name and wanted <= series)


def test_work_and_sensor_readings_show_in_the_metrics(url: str, fleet: Fleet) -> None:
    bmc, rf_bmc = bmc_of(fleet, "ipmi", 0), bmc_of(fleet, "redfish", 1)
    before = scrape(url)
    ipmi = enroll(
        url, "metered-ipmi", "ipmi", bmc.driver_info(username=USERNAME, password=PASSWORD)
    )
    fake = enroll(url, "metered-fake", "fake-hardware", {})
    redfish = enroll(
        url, "metered-rf", "redfish", rf_bmc.driver_info(username=USERNAME, password=PASSWORD)
    )
    for name in ("metered-ipmi", "metered-fake", "metered-rf"):
        baremetal(url, "node", "manage", name, "--wait", "60")
    baremetal(url, "node", "provide", "metered-fake", "--wait", "60")

    def readings(node: str) -> dict[str, float]:
        samples = scrape(url)
        return {
            dict(series)["sensor"]: v
            for (name, series), v in samples.items()
            if name.startswith("metalcast_sensor_") and ("node", node) in series
        }

    for node in (ipmi, redfish):
        assert wait_for(lambda: len(readings(node)) == 4, timeout=60), readings(node)  # noqa: B023
    after = scrape(url)

    transitions = "metalcast_provision_transitions_total"
    managed = 3
    manage = {"event": "manage", "from_state": "enroll", "to_state": "verifying"}
    verified = {"event": "done", "from_state": "verifying", "to_state": "manageable"}
    provide = {"event": "provide", "from_state": "manageable"}
    assert value(after, transitions, **manage) == value(before, transitions, **manage) + managed
    assert value(after, transitions, **verified) == value(before, transitions, **verified) + managed
    assert total(after, transitions, **provide) == total(before, transitions, **provide) + 1
    verbs = "metalcast_provision_verb_duration_seconds_count"
    for verb, count in (("manage", managed), ("provide", 1)):
        done = {"verb": verb, "result": "succeeded"}
        assert value(after, verbs, **done) == value(before, verbs, **done) + count

    nodes = "metalcast_nodes"
    assert total(after, nodes, provision_state="manageable") == 2
    assert total(after, nodes, provision_state="available") == 1
    assert total(after, nodes, provision_state="enroll") == 0

    calls = "metalcast_bmc_call_duration_seconds_count"
    assert total(after, calls, driver="ipmi", operation="get power state") >= 1
    assert total(after, calls, driver="ipmi", operation="get sensors") >= 1
    assert total(after, calls, driver="redfish", operation="get sensors") >= 1
    assert value(after, "metalcast_sensor_collections_total", result="ok") >= 1

    for node, served in ((ipmi, bmc), (redfish, rf_bmc)):
        machine = machine_of(served)
        expected = {s.name: (METRIC_OF[s.kind], s.value) for s in machine.sensors()}
        for sensor, (metric, reading) in expected.items():
            assert value(after, metric, node=node, sensor=sensor) == reading, (node, sensor)
    # the fake node's one sensor too; nothing names a node by its name
    assert value(after, "metalcast_sensor_temperature_celsius", node=fake, sensor="CPU1 Temp") == 40
    assert not any("metered" in v for _, series in after for _, v in series)


def test_api_requests_are_counted_by_route_template(url: str) -> None:
    httpx.get(f"{url}/v1/nodes/metered-nowhere")
    samples = scrape(url)
    count = "metalcast_api_request_duration_seconds_count"
    assert total(samples, count, route="/v1/nodes/{node}", status="404") >= 1
    assert not any("metered-nowhere" in v for _, series in samples for _, v in series)
