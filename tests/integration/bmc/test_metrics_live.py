"""``curl /metrics`` on a real server: the work done shows in the transition counters
and the node gauge, and a lab BMC's sensors (read over real IPMI by the periodic
collection) show as readings of its node."""

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
    bmc = bmc_of(fleet, "ipmi", 0)
    before = scrape(url)
    ipmi = enroll(
        url, "metered-ipmi", "ipmi", bmc.driver_info(username=USERNAME, password=PASSWORD)
    )
    fake = enroll(url, "metered-fake", "fake-hardware", {})
    for name in ("metered-ipmi", "metered-fake"):
        baremetal(url, "node", "manage", name, "--wait", "60")
    baremetal(url, "node", "provide", "metered-fake", "--wait", "60")

    def readings() -> dict[str, float]:
        samples = scrape(url)
        return {
            dict(series)["sensor"]: v
            for (name, series), v in samples.items()
            if name.startswith("metalcast_sensor_") and ("node", ipmi) in series
        }

    assert wait_for(lambda: len(readings()) == 4, timeout=60), readings()
    after = scrape(url)

    transitions = "metalcast_provision_transitions_total"
    manage = {"event": "manage", "from_state": "enroll", "to_state": "verifying"}
    verified = {"event": "done", "from_state": "verifying", "to_state": "manageable"}
    provide = {"event": "provide", "from_state": "manageable"}
    assert value(after, transitions, **manage) == value(before, transitions, **manage) + 2
    assert value(after, transitions, **verified) == value(before, transitions, **verified) + 2
    assert total(after, transitions, **provide) == total(before, transitions, **provide) + 1
    verbs = "metalcast_provision_verb_duration_seconds_count"
    for verb, count in (("manage", 2), ("provide", 1)):
        done = {"verb": verb, "result": "succeeded"}
        assert value(after, verbs, **done) == value(before, verbs, **done) + count

    nodes = "metalcast_nodes"
    assert total(after, nodes, provision_state="manageable") == 1
    assert total(after, nodes, provision_state="available") == 1
    assert total(after, nodes, provision_state="enroll") == 0

    calls = "metalcast_bmc_call_duration_seconds_count"
    assert total(after, calls, driver="ipmi", operation="get power state") >= 1
    assert total(after, calls, driver="ipmi", operation="get sensors") >= 1
    assert value(after, "metalcast_sensor_collections_total", result="ok") >= 1

    machine = machine_of(bmc)
    expected = {s.name: (METRIC_OF[s.kind], s.value) for s in machine.sensors()}
    for sensor, (metric, reading) in expected.items():
        assert value(after, metric, node=ipmi, sensor=sensor) == reading
    # the fake node's one sensor too; nothing names a node by its name
    assert value(after, "metalcast_sensor_temperature_celsius", node=fake, sensor="CPU1 Temp") == 40
    assert not any("metered" in v for _, series in after for _, v in series)


def test_api_requests_are_counted_by_route_template(url: str) -> None:
    httpx.get(f"{url}/v1/nodes/metered-nowhere")
    samples = scrape(url)
    count = "metalcast_api_request_duration_seconds_count"
    assert total(samples, count, route="/v1/nodes/{node}", status="404") >= 1
    assert not any("metered-nowhere" in v for _, series in samples for _, v in series)
