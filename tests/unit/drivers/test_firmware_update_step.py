"""The ``firmware.update`` step's settings, the fake firmware interface's update, and
which FirmwareInventory members are a node's components."""

from __future__ import annotations

import pytest
from driver_ctx import MakeCtx

from metalcast.drivers.base import FirmwareInterface
from metalcast.drivers.fake import FakeBmcState, FakeFirmware
from metalcast.drivers.firmware import FirmwareSetting, parse_settings
from metalcast.drivers.redfish.client import FirmwareItem
from metalcast.drivers.redfish.firmware import components_of
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import FatalDriverError, InvalidInput

SYSTEM = "/redfish/v1/Systems/n1"


def _fake(registry: DriverRegistry) -> FakeFirmware:
    found = registry.interface("fake-hardware", "firmware", "fake")
    assert isinstance(found, FakeFirmware)
    return found


def test_settings_keep_order_and_wait() -> None:
    settings = parse_settings(
        {
            "settings": [
                {"component": "bmc", "url": "https://fw/bmc.bin", "wait": 30},
                {"component": " bios ", "url": "http://u:p@fw/bios.bin"},
            ]
        }
    )
    assert settings == [
        FirmwareSetting("bmc", "https://fw/bmc.bin", 30),
        FirmwareSetting("bios", "http://u:p@fw/bios.bin", None),
    ]


@pytest.mark.parametrize(
    "item",
    [
        {"component": "bios", "url": "http:///no-host"},
        {"component": "bios", "url": "swift://container/x"},
        {"component": "bios", "url": "http://[::1/broken"},
        {"component": "bios", "url": "http://h/x", "wait": 0},
        {"component": "bios", "url": "http://h/x", "wait": True},
        {"component": "", "url": "http://h/x"},
        "bios",
    ],
)
def test_bad_settings_are_refused(item: object) -> None:
    with pytest.raises(InvalidInput, match=r"firmware\.update setting 1"):
        parse_settings({"settings": [item]})


def test_components_are_sorted_out_per_system() -> None:
    items = [
        FirmwareItem("/fw/BMC", "BMC", "BMC", "1", None, ("/redfish/v1/Managers/1",)),
        FirmwareItem("/fw/B1", "B1", "BIOS", "2", None, (SYSTEM,)),
        FirmwareItem("/fw/B2", "B2", "BIOS", "3", None, ("/redfish/v1/Systems/n2",)),
        FirmwareItem("/fw/N1", "N1", "NIC", "4", None, (f"{SYSTEM}/EthernetInterfaces/1",)),
        FirmwareItem("/fw/CPLD", "CPLD", "CPLD", "5", None, ()),
    ]
    assert {k: v.identity for k, v in components_of(items, SYSTEM).items()} == {
        "bmc": "BMC",
        "bios": "B1",
        "N1": "N1",
        "CPLD": "CPLD",
    }
    # the only system of a service: any system's member is its BIOS
    assert components_of(items[:2], None)["bios"].identity == "B1"


def test_fake_update_installs_the_version_the_file_name_ends_with(
    registry: DriverRegistry, bmc: FakeBmcState, make_ctx: MakeCtx
) -> None:
    firmware = _fake(registry)
    args = {
        "settings": [
            {"component": "bios", "url": "https://u:p@fw/v9/bios-2.4.0.bin"},
            {"component": "bmc", "url": "https://fw/bmc-latest.bin"},
        ]
    }
    ctx = make_ctx(args=args)
    outcome = firmware.perform_step(ctx, "update")
    assert outcome.firmware is not None
    assert [(c.component, c.current_version) for c in outcome.firmware.after] == [
        ("bios", "2.4.0"),
        ("bmc", "1.0.0"),
    ]
    assert outcome.firmware.updated == ("bios", "bmc")
    assert {c.component: c.current_version for c in firmware.get_components(ctx)} == {
        "bios": "2.4.0",
        "bmc": "1.0.0",
    }


def test_fake_update_refuses_unknown_components_and_honours_injection(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    firmware = _fake(registry)
    unknown = {"settings": [{"component": "nic", "url": "https://fw/nic-2.0.bin"}]}
    with pytest.raises(InvalidInput, match=r"no firmware component\(s\) nic; its components"):
        firmware.perform_step(make_ctx(args=unknown), "update")
    known = {"settings": [{"component": "bmc", "url": "https://fw/bmc-2.0.bin"}]}
    with pytest.raises(FatalDriverError):
        firmware.perform_step(make_ctx(driver_info={"fake_fail": "clean"}, args=known), "update")


def test_every_firmware_update_step_checks_its_arguments_up_front(
    registry: DriverRegistry,
) -> None:
    kinds = {"fake": {"clean"}, "redfish": {"clean", "service"}}
    for hw, impl in (("fake-hardware", "fake"), ("redfish", "redfish")):
        firmware = registry.interface(hw, "firmware", impl)
        assert isinstance(firmware, FirmwareInterface)
        assert {s.name: s.kinds for s in firmware.steps()} == {"update": kinds[impl]}
        with pytest.raises(InvalidInput, match="'url' must be an http or https URL"):
            firmware.check_step_args("update", {"settings": [{"component": "bios"}]})
