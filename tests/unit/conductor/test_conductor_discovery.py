"""Discovery's pure parts: the throttle, and the driver_info a discovered node gets
(its BMC address from the inventory unless loopback, credentials from settings)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from metalcast.conductor import discovery
from metalcast.conductor import inventory as inv
from metalcast.config import DiscoverySettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_throttle_takes_at_most_the_limit_per_minute() -> None:
    clock = Clock()
    limit = discovery.RateLimit(2, monotonic=clock)
    limit.take()
    limit.take()
    with pytest.raises(discovery.DiscoveryThrottled) as refused:
        limit.take()
    assert refused.value.status_code == 503
    assert "More than 2 machines" in refused.value.message

    clock.now += discovery.WINDOW
    limit.take()  # the first two are a minute old


def inventory(bmc: object) -> inv.Inventory:
    found: dict[str, Any] = {
        "cpu": {}, "memory": {}, "disks": [],
        "interfaces": [{"mac_address": "52:54:00:00:00:01"}], "bmc_address": bmc,
    }  # fmt: skip
    return inv.check(found)


@pytest.mark.parametrize(
    ("driver", "bmc", "expected"),
    [
        ("ipmi", "10.0.0.5", {"ipmi_address": "10.0.0.5"}),
        ("ipmi", "127.0.0.1", {}),
        ("ipmi", "::1", {}),
        ("ipmi", "0.0.0.0", {}),
        ("ipmi", "bmc.example", {}),
        ("ipmi", None, {}),
        ("redfish", "10.0.0.5", {"redfish_address": "10.0.0.5"}),
        ("fake-hardware", "10.0.0.5", {}),
    ],
)
def test_the_bmc_address_comes_from_the_inventory_unless_loopback(
    driver: str, bmc: object, expected: dict[str, str]
) -> None:
    settings = DiscoverySettings(driver=driver)
    assert discovery.driver_info(settings, inventory(bmc)) == expected


def test_the_credentials_come_from_the_settings() -> None:
    settings = DiscoverySettings(bmc_username="root", bmc_password=SecretStr("pw"))

    assert discovery.driver_info(settings, inventory("10.1.1.1")) == {
        "ipmi_address": "10.1.1.1", "ipmi_username": "root", "ipmi_password": "pw",
    }  # fmt: skip
    assert "pw" not in repr(settings)


def test_the_settings_refuse_a_final_state_other_than_enroll_or_manageable() -> None:
    with pytest.raises(ValueError, match="state"):
        DiscoverySettings(state="active")
