"""The fake implementations behave like fast, well-behaved hardware by default."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from metalcast.drivers.base import (
    DriverContext,
    Interface,
    StepResult,
)
from metalcast.drivers.fake import (
    FakeBIOS,
    FakeBoot,
    FakeConsole,
    FakeDeploy,
    FakeFirmware,
    FakeInspect,
    FakeManagement,
    FakeNetwork,
    FakePower,
    FakeRAID,
    FakeRescue,
    FakeStorage,
    FakeVendor,
)
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import InvalidInput
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.states import PowerState, PowerTarget

MakeCtx = Callable[..., DriverContext]
I = TypeVar("I", bound=Interface)  # noqa: E741


def fake(registry: DriverRegistry, cls: type[I]) -> I:
    instance = registry.interface("fake-hardware", cls.interface_type, "fake")
    assert isinstance(instance, cls)
    return instance


def test_every_interface_has_a_fake(registry: DriverRegistry) -> None:
    for name in INTERFACE_NAMES:
        assert registry.interface("fake-hardware", name, "fake").interface_type == name


def test_every_fake_validates_an_empty_driver_info(
    registry: DriverRegistry, make_ctx: MakeCtx, sleeps: list[float]
) -> None:
    for name in INTERFACE_NAMES:
        registry.interface("fake-hardware", name, "fake").validate(make_ctx())

    assert sleeps == []


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [(None, PowerState.OFF), ("power off", PowerState.OFF), ("power on", PowerState.ON)],
)
def test_power_starts_from_the_recorded_power_state(
    registry: DriverRegistry, make_ctx: MakeCtx, recorded: str | None, expected: PowerState
) -> None:
    power = fake(registry, FakePower)

    assert power.get_power_state(make_ctx(power_state=recorded)) is expected


@pytest.mark.parametrize(
    ("start", "target", "expected"),
    [
        ("power off", PowerTarget.ON, PowerState.ON),
        ("power on", PowerTarget.OFF, PowerState.OFF),
        ("power off", PowerTarget.REBOOT, PowerState.ON),
        ("power on", PowerTarget.SOFT_OFF, PowerState.OFF),
        ("power off", PowerTarget.SOFT_REBOOT, PowerState.ON),
    ],
)
def test_set_power_state_reaches_the_target(
    registry: DriverRegistry,
    make_ctx: MakeCtx,
    start: str,
    target: PowerTarget,
    expected: PowerState,
) -> None:
    power = fake(registry, FakePower)
    ctx = make_ctx(power_state=start)

    power.set_power_state(ctx, target, 30)

    assert power.get_power_state(ctx) is expected


def test_power_is_tracked_per_node(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    power = fake(registry, FakePower)
    first, second = make_ctx(uuid="node-a"), make_ctx(uuid="node-b")

    power.set_power_state(first, PowerTarget.ON, 30)

    assert power.get_power_state(first) is PowerState.ON
    assert power.get_power_state(second) is PowerState.OFF


def test_fake_power_supports_soft_power_targets(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    supported = fake(registry, FakePower).get_supported_power_states(make_ctx())

    assert set(supported) == set(PowerTarget)


def test_boot_device_round_trips(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    management = fake(registry, FakeManagement)
    ctx = make_ctx()
    assert management.get_boot_device(ctx) == ("pxe", False)  # as Ironic's fake

    management.set_boot_device(ctx, "disk", persistent=True)

    assert management.get_boot_device(ctx) == ("disk", True)


def test_supported_boot_devices(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    devices = fake(registry, FakeManagement).get_supported_boot_devices(make_ctx())

    assert devices == ["pxe", "disk", "cdrom", "bios", "safe"]


def test_unsupported_boot_device_is_invalid_input(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    management = fake(registry, FakeManagement)

    with pytest.raises(InvalidInput, match="'floppy'"):
        management.set_boot_device(make_ctx(), "floppy", persistent=False)


def test_reset_bmc_clean_step_resets_the_boot_device(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    management = fake(registry, FakeManagement)
    ctx = make_ctx()
    management.set_boot_device(ctx, "disk", persistent=True)

    assert management.run_step(ctx, "reset_bmc") is StepResult.DONE
    assert management.get_boot_device(ctx) == ("pxe", False)


def test_nmi_and_sensors_work(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    management = fake(registry, FakeManagement)

    management.inject_nmi(make_ctx())

    assert management.get_sensors_data(make_ctx())


def test_boot_methods_succeed(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    boot = fake(registry, FakeBoot)
    ctx = make_ctx()

    boot.prepare_ramdisk(ctx)
    boot.clean_up_ramdisk(ctx)
    boot.prepare_instance(ctx)
    boot.clean_up_instance(ctx)


def test_deploy_finishes_at_once(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    deploy = fake(registry, FakeDeploy)
    ctx = make_ctx()

    assert deploy.deploy(ctx) is StepResult.DONE
    assert deploy.prepare_cleaning(ctx) is StepResult.DONE
    deploy.tear_down_cleaning(ctx)
    deploy.tear_down(ctx)
    deploy.take_over(ctx)


@pytest.mark.parametrize("name", ["erase_devices_metadata", "erase_devices", "fake_service"])
def test_deploy_steps_finish_at_once(
    registry: DriverRegistry, make_ctx: MakeCtx, name: str
) -> None:
    assert fake(registry, FakeDeploy).run_step(make_ctx(), name) is StepResult.DONE


def test_unknown_step_is_invalid_input(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    with pytest.raises(InvalidInput, match="no step 'format_c'"):
        fake(registry, FakeDeploy).run_step(make_ctx(), "format_c")


def test_inspect_reports_default_hardware(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    result, props = fake(registry, FakeInspect).inspect_hardware(make_ctx())

    assert result is StepResult.DONE
    assert props == {"cpus": 4, "memory_mb": 8192, "local_gb": 100, "cpu_arch": "x86_64"}


def test_inspect_reports_configured_hardware(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    info = {"fake_cpus": 64, "fake_memory_mb": "262144", "fake_local_gb": 960}
    info["fake_cpu_arch"] = "aarch64"

    _, props = fake(registry, FakeInspect).inspect_hardware(make_ctx(info))

    assert props == {"cpus": 64, "memory_mb": 262144, "local_gb": 960, "cpu_arch": "aarch64"}


def test_console_has_nothing_to_connect_to(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    console = fake(registry, FakeConsole)
    ctx = make_ctx()

    console.start_console(ctx)
    info = console.get_console(ctx)
    console.stop_console(ctx)

    assert info == {}  # as Ironic's fake console


@pytest.mark.parametrize("name", ["create_configuration", "delete_configuration"])
def test_raid_steps_are_manual_clean_steps(
    registry: DriverRegistry, make_ctx: MakeCtx, name: str
) -> None:
    raid = fake(registry, FakeRAID)

    spec = next(s for s in raid.steps() if s.name == name)

    assert spec.priority == 0 and "clean" in spec.kinds  # delete is a deploy step too
    ctx = make_ctx()
    target = {"logical_disks": [{"size_gb": 10, "raid_level": "1"}]}
    ctx = dataclasses.replace(ctx, node=dataclasses.replace(ctx.node, target_raid_config=target))
    assert raid.run_step(ctx, name) is StepResult.DONE


def test_bios_apply_configuration_changes_settings(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    bios = fake(registry, FakeBIOS)
    args: dict[str, Any] = {"settings": [{"name": "hyperthreading", "value": "disabled"}]}

    assert bios.run_step(make_ctx(args=args), "apply_configuration") is StepResult.DONE

    settings = bios.get_settings(make_ctx())
    assert settings["hyperthreading"] == "disabled"
    assert settings["boot_mode"] == "uefi"


def test_bios_apply_configuration_rejects_malformed_settings(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    bios = fake(registry, FakeBIOS)

    with pytest.raises(InvalidInput, match="settings"):
        bios.run_step(make_ctx(args={"settings": {"a": "b"}}), "apply_configuration")


def test_firmware_lists_components(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    components = fake(registry, FakeFirmware).get_components(make_ctx())

    assert {c.component for c in components} == {"bios", "bmc"}


def test_network_and_storage_succeed(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    network, storage = fake(registry, FakeNetwork), fake(registry, FakeStorage)
    ctx = make_ctx()

    network.add_provisioning_network(ctx)
    network.remove_provisioning_network(ctx)
    network.configure_tenant_networks(ctx)
    network.unconfigure_tenant_networks(ctx)
    storage.attach_volumes(ctx)
    storage.detach_volumes(ctx)


def test_rescue_and_unrescue_succeed(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    rescue = fake(registry, FakeRescue)

    assert rescue.rescue(make_ctx()) is StepResult.DONE
    rescue.unrescue(make_ctx())


def test_vendor_lists_its_passthru_methods(registry: DriverRegistry) -> None:
    assert set(fake(registry, FakeVendor).methods()) == {"set_power_state", "get_state"}


def test_vendor_get_state_shows_the_bmc(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    fake(registry, FakeManagement).set_boot_device(make_ctx(), "pxe", persistent=False)

    state = fake(registry, FakeVendor).passthru(make_ctx(), "get_state", {})

    assert state == {"power_state": "power off", "boot_device": "pxe", "persistent": False}


def test_vendor_rejects_unknown_method(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    with pytest.raises(InvalidInput, match="'reformat'"):
        fake(registry, FakeVendor).passthru(make_ctx(), "reformat", {})
