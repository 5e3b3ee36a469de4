"""RAID configurations (Ironic's schema), the fake RAID steps that apply them, the
no-* implementations' ``implemented`` flag and the fake's driver-level vendor method."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from driver_ctx import MakeCtx, node

from metalcast.drivers import noop, raid
from metalcast.drivers.base import (
    INTERFACE_CLASSES,
    DriverContext,
    StepOutcome,
    StepResult,
    VendorInterface,
)
from metalcast.drivers.fake import FakeBmcState, FakeRAID, FakeVendor
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import FatalDriverError, InvalidInput
from metalcast.states import PowerState

ROOT = {"size_gb": 100, "raid_level": "1", "is_root_volume": True}
DATA = {"size_gb": "MAX", "raid_level": "5", "volume_name": "data", "disk_type": "ssd"}


def with_target(ctx: DriverContext, target: Mapping[str, Any]) -> DriverContext:
    return dataclasses.replace(ctx, node=dataclasses.replace(ctx.node, target_raid_config=target))


# ------------------------------------------------------------------- the schema


def test_a_full_configuration_is_valid() -> None:
    disk = {
        **DATA,
        "share_physical_disks": True,
        "interface_type": "sas",
        "number_of_physical_disks": 3,
        "controller": "RAID.Integrated.1-1",
        "physical_disks": ["Disk.Bay.0", "Disk.Bay.1", "Disk.Bay.2"],
    }
    config = raid.validate({"logical_disks": [ROOT, disk]})
    assert [d.raid_level for d in config.logical_disks] == ["1", "5"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, "logical_disks: Field required"),
        ({"logical_disks": []}, "at least 1 item"),
        ({"logical_disks": [{"raid_level": "1"}]}, "logical_disks.0.size_gb: Field required"),
        ({"logical_disks": [{"size_gb": 1}]}, "logical_disks.0.raid_level: Field required"),
        ({"logical_disks": [{**ROOT, "raid_level": 1}]}, "logical_disks.0.raid_level"),
        ({"logical_disks": [{**ROOT, "raid_level": "7"}]}, "'1+0'"),
        ({"logical_disks": [{**ROOT, "size_gb": 0}]}, "positive integer (GiB) or 'MAX'"),
        ({"logical_disks": [{**ROOT, "size_gb": "max"}]}, "positive integer (GiB) or 'MAX'"),
        ({"logical_disks": [{**ROOT, "size_gb": True}]}, "positive integer (GiB) or 'MAX'"),
        ({"logical_disks": [{**ROOT, "is_root_volume": "yes"}]}, "is_root_volume"),
        ({"logical_disks": [{**ROOT, "disk_type": "nvme"}]}, "'hdd' or 'ssd'"),
        ({"logical_disks": [{**ROOT, "number_of_physical_disks": 0}]}, "greater than 0"),
        ({"logical_disks": [{**ROOT, "physical_disks": ["a"]}]}, "needs 'controller'"),
        ({"logical_disks": [{**ROOT, "colour": "red"}]}, "logical_disks.0.colour: Extra"),
        ({"logical_disks": [ROOT], "spare": 1}, "spare: Extra inputs"),
        ({"logical_disks": [ROOT, ROOT]}, "at most one logical disk may be the root volume"),
        ({"logical_disks": [DATA, DATA]}, "volume_name values must be unique"),
    ],
)
def test_invalid_configurations_say_what_is_wrong(config: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid RAID configuration") as info:
        raid.validate(config)
    assert expected in info.value.message


def test_logical_disk_properties_describe_every_key() -> None:
    properties = raid.logical_disk_properties()
    assert set(properties) == {
        "raid_level",
        "size_gb",
        "volume_name",
        "is_root_volume",
        "share_physical_disks",
        "disk_type",
        "interface_type",
        "number_of_physical_disks",
        "controller",
        "physical_disks",
    }
    assert properties["size_gb"].startswith("Size in GiB")
    assert properties["size_gb"].endswith("Required.")
    assert properties["controller"].endswith("Optional.")


def test_select_disks_skips_what_the_arguments_say() -> None:
    config = {"logical_disks": [ROOT, DATA]}
    assert raid.select_disks(config) == [ROOT, DATA]
    assert raid.select_disks(config, root=False) == [DATA]
    assert raid.select_disks(config, nonroot=False) == [ROOT]
    with pytest.raises(InvalidInput, match="after skipping the non-root volumes"):
        raid.select_disks({"logical_disks": [DATA]}, nonroot=False)
    assert raid.root_volume(config) == ROOT
    assert raid.root_volume({"logical_disks": [DATA]}) is None


# ------------------------------------------------------------------- the fake steps


def test_create_configuration_reports_the_target_applied(make_ctx: MakeCtx) -> None:
    fake = FakeRAID(sleep=lambda _: None)
    ctx = with_target(make_ctx(), {"logical_disks": [ROOT, DATA]})

    outcome = fake.perform_step(ctx, "create_configuration")

    assert outcome == StepOutcome(StepResult.DONE, raid_config={"logical_disks": [ROOT, DATA]})
    only_root = dataclasses.replace(ctx, args={"create_nonroot_volumes": False})
    assert fake.perform_step(only_root, "create_configuration").raid_config == {
        "logical_disks": [ROOT]
    }
    assert fake.run_step(ctx, "create_configuration") is StepResult.DONE


def test_create_configuration_needs_a_target(make_ctx: MakeCtx) -> None:
    with pytest.raises(InvalidInput, match="has no target RAID configuration"):
        FakeRAID().perform_step(make_ctx(), "create_configuration")
    bad = dataclasses.replace(
        with_target(make_ctx(), {"logical_disks": [ROOT]}), args={"delete_existing": "yes"}
    )
    with pytest.raises(InvalidInput, match="must be true or false"):
        FakeRAID().perform_step(bad, "create_configuration")


def test_delete_configuration_reports_none_left(make_ctx: MakeCtx) -> None:
    outcome = FakeRAID().perform_step(make_ctx(), "delete_configuration")
    assert outcome == StepOutcome(StepResult.DONE, raid_config={})


def test_waiting_steps_report_nothing_applied(make_ctx: MakeCtx) -> None:
    ctx = with_target(make_ctx({"fake_wait": "clean"}), {"logical_disks": [ROOT]})
    outcome = FakeRAID().perform_step(ctx, "create_configuration")
    assert outcome == StepOutcome(StepResult.WAIT)


# ------------------------------------------------------------------- no-* and vendor


def test_only_the_no_implementations_are_not_implemented() -> None:
    for name in INTERFACE_CLASSES:
        for impl in FAKE_HARDWARE.supported[name]:
            assert impl.implemented is not impl.name.startswith("no-"), impl.name


def test_no_raid_refuses_configurations() -> None:
    with pytest.raises(FatalDriverError, match="set raid_interface"):
        noop.NoRAID().validate_raid_config({"logical_disks": [ROOT]})
    assert noop.NoRAID().logical_disk_properties() == {}


def test_fake_vendor_lists_the_bmcs_it_holds() -> None:
    bmc = FakeBmcState()
    bmc.set_power_state(node(uuid="n-2"), PowerState.ON)
    bmc.set_boot_device(node(uuid="n-1"), "pxe", persistent=True)
    vendor = FakeVendor(bmc)

    assert vendor.driver_methods()["list_bmcs"].http_methods == ("GET", "POST")
    assert vendor.driver_passthru("list_bmcs", {}) == {
        "n-1": {"power_state": "power off", "boot_device": "pxe", "persistent": True},
        "n-2": {"power_state": "power on", "boot_device": "pxe", "persistent": False},
    }
    with pytest.raises(InvalidInput, match="supported: list_bmcs"):
        vendor.driver_passthru("nope", {})
    with pytest.raises(InvalidInput, match="takes no arguments"):
        vendor.driver_passthru("list_bmcs", {"x": 1})


def test_vendor_interfaces_have_no_driver_methods_by_default() -> None:
    registry = DriverRegistry([FAKE_HARDWARE])
    no_vendor = registry.interface("fake-hardware", "vendor", "no-vendor")
    assert isinstance(no_vendor, VendorInterface)
    assert no_vendor.driver_methods() == {}
    with pytest.raises(InvalidInput, match="Unsupported driver vendor passthru"):
        no_vendor.driver_passthru("x", {})
