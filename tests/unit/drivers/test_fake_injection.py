"""driver_info injects latency, fatal and retryable failures and waits into the fakes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

from metalcast.drivers.base import (
    DriverContext,
    Interface,
    MissingDriverInfo,
    StepResult,
)
from metalcast.drivers.fake import (
    FAKE_OPERATIONS,
    FAKE_WAIT_OPERATIONS,
    FakeBoot,
    FakeConsole,
    FakeDeploy,
    FakeInspect,
    FakeManagement,
    FakePower,
    FakeRescue,
    FakeVendor,
)
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import FatalDriverError, RetryableDriverError
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.states import PowerTarget

MakeCtx = Callable[..., DriverContext]
Call = Callable[[DriverRegistry, DriverContext], object]
I = TypeVar("I", bound=Interface)  # noqa: E741


def fake(registry: DriverRegistry, cls: type[I]) -> I:
    instance = registry.interface("fake-hardware", cls.interface_type, "fake")
    assert isinstance(instance, cls)
    return instance


#: one call per operation name that fake_fail accepts
OPERATIONS: dict[str, Call] = {
    "validate": lambda r, c: fake(r, FakePower).validate(c),
    "power": lambda r, c: fake(r, FakePower).set_power_state(c, PowerTarget.ON, 30),
    "boot_device": lambda r, c: fake(r, FakeManagement).set_boot_device(c, "pxe", persistent=False),
    "boot_mode": lambda r, c: fake(r, FakeManagement).set_boot_mode(c, "bios"),
    "secure_boot": lambda r, c: fake(r, FakeManagement).set_secure_boot_state(c, False),
    "deploy": lambda r, c: fake(r, FakeDeploy).deploy(c),
    "tear_down": lambda r, c: fake(r, FakeDeploy).tear_down(c),
    "clean": lambda r, c: fake(r, FakeDeploy).run_step(c, "erase_devices_metadata"),
    "inspect": lambda r, c: fake(r, FakeInspect).inspect_hardware(c),
    "rescue": lambda r, c: fake(r, FakeRescue).rescue(c),
    "unrescue": lambda r, c: fake(r, FakeRescue).unrescue(c),
    "adopt": lambda r, c: fake(r, FakeDeploy).take_over(c),
    "service": lambda r, c: fake(r, FakeDeploy).run_step(c, "fake_service"),
    "nmi": lambda r, c: fake(r, FakeManagement).inject_nmi(c),
    "vendor": lambda r, c: fake(r, FakeVendor).passthru(c, "get_state", {}),
    "console": lambda r, c: fake(r, FakeConsole).start_console(c),
    "sensors": lambda r, c: fake(r, FakeManagement).get_sensors_data(c),
    "indicator": lambda r, c: fake(r, FakeManagement).set_indicator_state(c, "system", "led", "on"),
    "vmedia": lambda r, c: fake(r, FakeManagement).attach_virtual_media(c, "cdrom", "http://a/b"),
}

#: the result each waitable operation returns when told to wait
WAITED: dict[str, object] = {
    "deploy": StepResult.WAIT,
    "clean": StepResult.WAIT,
    "inspect": (StepResult.WAIT, {}),
    "rescue": StepResult.WAIT,
    "service": StepResult.WAIT,
}


def test_every_operation_name_is_exercised() -> None:
    assert set(OPERATIONS) == FAKE_OPERATIONS
    assert set(WAITED) == FAKE_WAIT_OPERATIONS


@pytest.mark.parametrize("operation", sorted(FAKE_OPERATIONS))
def test_fake_fail_raises_fatal_error(
    registry: DriverRegistry, make_ctx: MakeCtx, operation: str
) -> None:
    ctx = make_ctx({"fake_fail": [operation]})

    with pytest.raises(FatalDriverError) as err:
        OPERATIONS[operation](registry, ctx)

    assert err.value.operation == operation
    assert err.value.message == f"fake-hardware: injected failure in {operation}"


@pytest.mark.parametrize("operation", sorted(FAKE_OPERATIONS))
def test_fake_retryable_fail_raises_retryable_error(
    registry: DriverRegistry, make_ctx: MakeCtx, operation: str
) -> None:
    ctx = make_ctx({"fake_retryable_fail": operation})

    with pytest.raises(RetryableDriverError) as err:
        OPERATIONS[operation](registry, ctx)

    assert err.value.operation == operation


@pytest.mark.parametrize("operation", sorted(FAKE_OPERATIONS))
def test_injected_failure_leaves_other_operations_alone(
    registry: DriverRegistry, make_ctx: MakeCtx, operation: str
) -> None:
    others = ",".join(sorted(FAKE_OPERATIONS - {operation}))
    ctx = make_ctx({"fake_fail": others})

    OPERATIONS[operation](registry, ctx)


@pytest.mark.parametrize("operation", sorted(FAKE_WAIT_OPERATIONS))
def test_fake_wait_makes_the_operation_wait(
    registry: DriverRegistry, make_ctx: MakeCtx, operation: str
) -> None:
    result = OPERATIONS[operation](registry, make_ctx({"fake_wait": [operation]}))

    assert result == WAITED[operation]


@pytest.mark.parametrize("operation", sorted(FAKE_WAIT_OPERATIONS))
def test_operations_do_not_wait_by_default(
    registry: DriverRegistry, make_ctx: MakeCtx, operation: str
) -> None:
    result = OPERATIONS[operation](registry, make_ctx())

    assert result != WAITED[operation]


def test_fail_wins_over_wait(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    ctx = make_ctx({"fake_fail": ["deploy"], "fake_wait": ["deploy"]})

    with pytest.raises(FatalDriverError):
        fake(registry, FakeDeploy).deploy(ctx)


def clean_and_service_steps(registry: DriverRegistry) -> list[tuple[str, str, str]]:
    interfaces = registry.resolve_interfaces("fake-hardware", {})
    found = []
    for kind in ("clean", "service"):
        for spec in registry.steps("fake-hardware", interfaces, kind):
            found.append((spec.interface, spec.name, kind))
    return found


@pytest.mark.parametrize("mode", ["fake_fail", "fake_wait"])
def test_every_step_honours_its_operation(
    registry: DriverRegistry, make_ctx: MakeCtx, mode: str
) -> None:
    bios_args: dict[str, Any] = {"settings": [{"name": "boot_mode", "value": "bios"}]}
    steps = clean_and_service_steps(registry)
    assert len(steps) == 8

    for interface, name, kind in steps:
        instance = registry.interface("fake-hardware", interface, "fake")
        ctx = make_ctx({mode: kind}, args=bios_args)
        if mode == "fake_fail":
            with pytest.raises(FatalDriverError, match=f"injected failure in {kind}"):
                instance.run_step(ctx, name)
        else:
            assert instance.run_step(ctx, name) is StepResult.WAIT, name


@pytest.mark.parametrize("operation", sorted(FAKE_OPERATIONS))
def test_latency_sleeps_before_every_operation(
    registry: DriverRegistry, make_ctx: MakeCtx, sleeps: list[float], operation: str
) -> None:
    OPERATIONS[operation](registry, make_ctx({"fake_latency": 2.5}))

    assert sleeps == [2.5]


def test_latency_applies_to_unnamed_operations(
    registry: DriverRegistry, make_ctx: MakeCtx, sleeps: list[float]
) -> None:
    fake(registry, FakeBoot).prepare_ramdisk(make_ctx({"fake_latency": "0.5"}))

    assert sleeps == [0.5]


def test_latency_comes_before_the_injected_failure(
    registry: DriverRegistry, make_ctx: MakeCtx, sleeps: list[float]
) -> None:
    ctx = make_ctx({"fake_latency": 1, "fake_fail": "deploy"})

    with pytest.raises(FatalDriverError):
        fake(registry, FakeDeploy).deploy(ctx)

    assert sleeps == [1.0]


def test_no_latency_no_sleep(
    registry: DriverRegistry, make_ctx: MakeCtx, sleeps: list[float]
) -> None:
    for operation in sorted(FAKE_OPERATIONS):
        OPERATIONS[operation](registry, make_ctx())

    assert sleeps == []


def test_comma_separated_names_tolerate_spaces(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    ctx = make_ctx({"fake_fail": " deploy , tear_down,"})

    for operation in ("deploy", "tear_down"):
        with pytest.raises(FatalDriverError):
            OPERATIONS[operation](registry, ctx)


@pytest.mark.parametrize(
    ("info", "problem"),
    [
        ({"fake_fail": "deploy,explode"}, "unknown operation(s) explode"),
        ({"fake_retryable_fail": ["melt"]}, "unknown operation(s) melt"),
        ({"fake_wait": "power"}, "unknown operation(s) power"),
        ({"fake_fail": 3}, "expected a list of operation names"),
        ({"fake_latency": -1}, "fake_latency"),
        ({"fake_cpus": "many"}, "fake_cpus"),
    ],
)
def test_invalid_settings_fail_validation(
    registry: DriverRegistry, make_ctx: MakeCtx, info: dict[str, Any], problem: str
) -> None:
    interfaces = registry.resolve_interfaces("fake-hardware", {})
    inspect = registry.interface("fake-hardware", "inspect", interfaces["inspect"])

    with pytest.raises(MissingDriverInfo) as err:
        inspect.validate(make_ctx(info))

    assert err.value.interface == "inspect"
    assert problem in err.value.message


def test_injected_validate_failure_hits_every_fake_interface(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    ctx = make_ctx({"fake_fail": ["validate"]})

    for name in INTERFACE_NAMES:
        with pytest.raises(FatalDriverError):
            registry.interface("fake-hardware", name, "fake").validate(ctx)
