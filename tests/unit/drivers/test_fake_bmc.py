"""The fake BMC: state apart from the database, changed out of band by vendor passthru."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from metalcast.drivers.base import DriverContext, PowerInterface, VendorInterface
from metalcast.drivers.fake import FakeBmcState
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import InvalidInput
from metalcast.states import PowerState, PowerTarget

MakeCtx = Callable[..., DriverContext]


def power_and_vendor(registry: DriverRegistry) -> tuple[PowerInterface, VendorInterface]:
    power = registry.interface("fake-hardware", "power", "fake")
    vendor = registry.interface("fake-hardware", "vendor", "fake")
    assert isinstance(power, PowerInterface)
    assert isinstance(vendor, VendorInterface)
    return power, vendor


def test_power_button_changes_the_bmc_not_the_record(
    registry: DriverRegistry, make_ctx: MakeCtx
) -> None:
    power, vendor = power_and_vendor(registry)
    ctx = make_ctx(power_state="power on")
    assert power.get_power_state(ctx) is PowerState.ON

    reply = vendor.passthru(ctx, "set_power_state", {"power_state": "power off"})

    assert reply["power_state"] == "power off"
    assert power.get_power_state(ctx) is PowerState.OFF
    assert ctx.node.power_state == "power on"


def test_recorded_state_only_seeds_the_bmc(registry: DriverRegistry, make_ctx: MakeCtx) -> None:
    power, _ = power_and_vendor(registry)
    power.set_power_state(make_ctx(power_state="power off"), PowerTarget.ON, 30)

    # the database may lag behind; the BMC is the truth once it has a record
    assert power.get_power_state(make_ctx(power_state="power off")) is PowerState.ON


@pytest.mark.parametrize("bad", [None, "rebooting", "on", 1])
def test_power_button_rejects_other_states(
    registry: DriverRegistry, make_ctx: MakeCtx, bad: object
) -> None:
    _, vendor = power_and_vendor(registry)

    with pytest.raises(InvalidInput, match="power_state"):
        vendor.passthru(make_ctx(), "set_power_state", {"power_state": bad})


def test_forget_reseeds_from_the_record(bmc: FakeBmcState, make_ctx: MakeCtx) -> None:
    ctx = make_ctx(power_state="power off")
    bmc.set_power_state(ctx.node, PowerState.ON)

    bmc.forget(ctx.node.uuid)

    assert bmc.record(ctx.node).power_state is PowerState.OFF


def test_a_shared_bmc_is_seen_by_every_registry_using_it(
    bmc: FakeBmcState, make_ctx: MakeCtx
) -> None:
    from metalcast.drivers.registry import default_registry

    ctx = make_ctx()
    first, _ = power_and_vendor(default_registry(fake_bmc=bmc))
    second, _ = power_and_vendor(default_registry(fake_bmc=bmc))

    first.set_power_state(ctx, PowerTarget.ON, 30)

    assert second.get_power_state(ctx) is PowerState.ON


def test_concurrent_bios_updates_are_all_kept(bmc: FakeBmcState, make_ctx: MakeCtx) -> None:
    node = make_ctx().node
    barrier = threading.Barrier(16)

    def update(i: int) -> None:
        barrier.wait()
        bmc.set_bios_settings(node, {f"setting{i}": str(i)})

    threads = [threading.Thread(target=update, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    settings = bmc.record(node).bios_settings
    assert {f"setting{i}" for i in range(16)} <= set(settings)
