"""Indicators (Ironic 1.63) of a ``redfish`` node end to end: the API and conductor →
sushy → the lab's Redfish BMC, whose ComputerSystem and Chassis each have an
IndicatorLED that a PATCH sets.  Named as Ironic names them (the resource's UUID,
else its Id); a state the LED cannot take, or an indicator the node does not have,
is a 400 that leaves the LEDs as they were."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bmclab import PASSWORD, USERNAME, bmc_of, enroll

from metalcast.lab.bmc.fleet import Fleet, ServedBmc

pytestmark = pytest.mark.integration

INDICATORS = "/v1/nodes/{}/management/indicators"


@pytest.fixture(scope="module")
def url(start_metalcast_server: Callable[..., Any]) -> Iterator[str]:
    with start_metalcast_server() as server:
        yield server.url


def _on_bmc(bmc: ServedBmc, path: str) -> dict[str, Any]:
    """A resource as the BMC itself serves it."""
    answer = httpx.get(f"http://{bmc.address}:{bmc.port}{path}", auth=(USERNAME, PASSWORD))
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def test_the_system_and_chassis_leds_are_listed_read_and_set(url: str, fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 0)
    machine = bmc.machine
    enroll(url, "led-0", "redfish", bmc.driver_info(username=USERNAME, password=PASSWORD))

    listed = httpx.get(url + INDICATORS.format("led-0"))
    assert listed.status_code == 200, listed.text
    found = {(i["component"], i["name"]): i for i in listed.json()["indicators"]}
    system = ("system", f"{machine.uuid}@system")
    chassis = ("chassis", f"{machine.name}@chassis")  # the lab's chassis have no UUID
    assert set(found) == {system, chassis}
    assert found[system]["readonly"] is False
    assert found[system]["states"] == ["blinking", "off", "on"]

    one = url + INDICATORS.format("led-0") + "/" + system[1]
    assert httpx.get(one).json() == {"state": "off"}
    assert httpx.put(one, json={"state": "blinking"}).status_code == 204
    assert httpx.get(one).json() == {"state": "blinking"}
    assert _on_bmc(bmc, str(bmc.system_id))["IndicatorLED"] == "Blinking"

    box = url + INDICATORS.format("led-0") + "/" + chassis[1]
    assert httpx.put(box, json={"state": "on"}).status_code == 204
    assert httpx.get(box).json() == {"state": "on"}
    assert _on_bmc(bmc, f"/redfish/v1/Chassis/{machine.name}")["IndicatorLED"] == "Lit"

    # refusals: nothing changes on the BMC
    for indicator, body, status, message in (
        (system[1], {"state": "unknown"}, 400, "cannot be 'unknown'"),
        (f"{machine.name}@disk", {"state": "on"}, 400, "has no indicator"),
        ("someone-else@system", {"state": "off"}, 400, "has no indicator"),
    ):
        answer = httpx.put(url + INDICATORS.format("led-0") + "/" + indicator, json=body)
        assert answer.status_code == status, answer.text
        assert message in answer.text
    assert _on_bmc(bmc, str(bmc.system_id))["IndicatorLED"] == "Blinking"
    assert httpx.put(one, json={"state": "off"}).status_code == 204
