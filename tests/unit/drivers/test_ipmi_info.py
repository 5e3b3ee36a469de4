"""``ipmi_cipher_suite`` as Ironic's clients write it, validated before any packet is sent."""

from __future__ import annotations

from typing import Any

import pytest
from driver_ctx import MakeCtx

from metalcast.drivers.base import MissingDriverInfo
from metalcast.drivers.ipmi import IpmiInfo, IpmiTarget
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import InvalidInput

ADDRESS = {"ipmi_address": "192.0.2.10", "ipmi_username": "admin", "ipmi_password": "pw"}


@pytest.mark.parametrize(
    ("given", "suite"),
    [
        ("3", 3),  # baremetal node set --driver-info ipmi_cipher_suite=3
        (3, 3),
        ("17", 17),
        (" 17 ", 17),
        (17, 17),
        (None, None),
        ("", None),
    ],
)
def test_cipher_suites_metalcast_speaks_are_accepted(given: Any, suite: int | None) -> None:
    info = IpmiInfo.model_validate({**ADDRESS, "ipmi_cipher_suite": given})

    assert info.ipmi_cipher_suite == suite
    assert IpmiTarget.from_info(info).cipher_suite == suite


@pytest.mark.parametrize("given", [0, "1", 2, "12", 18, "255"])
def test_cipher_suites_metalcast_does_not_speak_are_refused_naming_the_supported(
    registry: DriverRegistry, make_ctx: MakeCtx, given: Any
) -> None:
    power = registry.interface("ipmi", "power", "ipmitool")

    with pytest.raises(MissingDriverInfo) as err:
        power.validate(make_ctx({**ADDRESS, "ipmi_cipher_suite": given}))

    assert isinstance(err.value, InvalidInput) and err.value.status_code == 400
    assert f"cipher suite {int(given)} is not supported" in err.value.message
    assert "supported cipher suites: 3, 17" in err.value.message
    assert "ipmi_cipher_suite" in err.value.message


@pytest.mark.parametrize("given", ["three", "3.0", 3.5, 17.0, True, "-3", "0x11", [3]])
def test_values_that_are_not_cipher_suite_numbers_are_refused(
    registry: DriverRegistry, make_ctx: MakeCtx, given: Any
) -> None:
    power = registry.interface("ipmi", "power", "ipmitool")

    with pytest.raises(MissingDriverInfo) as err:
        power.validate(make_ctx({**ADDRESS, "ipmi_cipher_suite": given}))

    assert "is not a cipher suite number" in err.value.message
    assert "supported cipher suites: 3, 17" in err.value.message
