"""The driver registry: hardware types, interface resolution, instances, properties, steps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import pytest
from pydantic import BaseModel, ConfigDict, Field

from metalcast.drivers import registry as registry_module
from metalcast.drivers.base import (
    DriverContext,
    HardwareType,
    Interface,
    PowerInterface,
    VendorInterface,
)
from metalcast.drivers.fake import FakeBmcState, FakePower
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.noop import NoopNetwork, NoRAID
from metalcast.drivers.registry import DriverRegistry, default_registry
from metalcast.errors import InvalidInput, MetalcastError
from metalcast.interfaces import INTERFACE_NAMES
from metalcast.states import PowerState, PowerTarget


class IpmiLikeInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ipmi_address: str = Field(description="IP address or hostname of the BMC.")
    ipmi_port: int = Field(default=623, description="Remote IPMI RMCP port.")
    ipmi_username: str | None = Field(default=None, description="BMC user name.")


class IpmiLikePower(PowerInterface):
    name = "ipmi-like"
    info_model = IpmiLikeInfo

    def get_power_state(self, ctx: DriverContext) -> PowerState:
        return PowerState.OFF

    def set_power_state(self, ctx: DriverContext, target: PowerTarget, timeout: float) -> None:
        return None


def other_hardware(name: str = "other", power: tuple[type[Interface], ...] = ()) -> HardwareType:
    supported = dict(FAKE_HARDWARE.supported)
    supported["power"] = power or (IpmiLikePower,)
    return HardwareType(name=name, description="test", supported=MappingProxyType(supported))


def test_default_registry_enables_fake_ipmi_and_redfish() -> None:
    names = [hw.name for hw in default_registry().hardware_types()]

    assert names == ["fake-hardware", "ipmi", "redfish"]


def test_unknown_hardware_type_lists_enabled_types(registry: DriverRegistry) -> None:
    with pytest.raises(InvalidInput) as err:
        registry.hardware_type("foo")

    assert err.value.message == (
        "Unknown hardware type 'foo'. Enabled hardware types: fake-hardware, ipmi, redfish"
    )
    assert err.value.status_code == 400


def test_resolve_interfaces_fills_every_interface_with_defaults(
    registry: DriverRegistry,
) -> None:
    resolved = registry.resolve_interfaces("fake-hardware", {})

    assert set(resolved) == set(INTERFACE_NAMES)
    assert resolved["power"] == "fake"
    assert resolved["network"] == "noop"
    assert resolved["storage"] == "noop"


def test_resolve_interfaces_keeps_requested_and_defaults_none(
    registry: DriverRegistry,
) -> None:
    resolved = registry.resolve_interfaces(
        "fake-hardware", {"inspect": "no-inspect", "network": "fake", "console": None}
    )

    assert resolved["inspect"] == "no-inspect"
    assert resolved["network"] == "fake"
    assert resolved["console"] == "fake"


def test_resolve_interfaces_rejects_unsupported_implementation(
    registry: DriverRegistry,
) -> None:
    with pytest.raises(InvalidInput) as err:
        registry.resolve_interfaces("fake-hardware", {"power": "foo"})

    assert err.value.message == (
        "Interface 'power' of hardware type 'fake-hardware' does not support "
        "implementation 'foo'. Supported: fake"
    )


def test_resolve_interfaces_rejects_unknown_interface(registry: DriverRegistry) -> None:
    with pytest.raises(InvalidInput, match="'telepathy'"):
        registry.resolve_interfaces("fake-hardware", {"telepathy": "fake"})


def test_resolve_interfaces_rejects_unknown_hardware_type(registry: DriverRegistry) -> None:
    with pytest.raises(InvalidInput, match="Unknown hardware type 'idrac'"):
        registry.resolve_interfaces("idrac", {})


def test_interface_instances_are_cached_per_registry() -> None:
    first, second = default_registry(), default_registry()

    power = first.interface("fake-hardware", "power", "fake")

    assert isinstance(power, FakePower)
    assert first.interface("fake-hardware", "power", "fake") is power
    assert second.interface("fake-hardware", "power", "fake") is not power


def test_interface_creation_is_thread_safe() -> None:
    registry = default_registry()
    barrier = threading.Barrier(8)
    seen: list[Interface] = []

    def fetch() -> None:
        barrier.wait()
        seen.append(registry.interface("fake-hardware", "deploy", "fake"))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen) == 8
    assert all(instance is seen[0] for instance in seen)


def test_interface_without_factory_is_built_by_its_class(registry: DriverRegistry) -> None:
    assert isinstance(registry.interface("fake-hardware", "network", "noop"), NoopNetwork)
    assert isinstance(registry.interface("fake-hardware", "raid", "no-raid"), NoRAID)


def test_interface_rejects_unsupported_implementation(registry: DriverRegistry) -> None:
    with pytest.raises(InvalidInput, match="Supported: fake, no-console"):
        registry.interface("fake-hardware", "console", "ipmitool-socat")


def test_fake_power_management_and_vendor_share_one_bmc(
    registry: DriverRegistry, bmc: FakeBmcState, make_ctx: Callable[..., DriverContext]
) -> None:
    ctx = make_ctx(power_state="power off")
    power = registry.interface("fake-hardware", "power", "fake")
    vendor = registry.interface("fake-hardware", "vendor", "fake")
    assert isinstance(power, PowerInterface)
    assert isinstance(vendor, VendorInterface)

    power.set_power_state(ctx, PowerTarget.ON, 10)

    assert vendor.passthru(ctx, "get_state", {})["power_state"] == "power on"
    assert bmc.record(ctx.node).power_state is PowerState.ON


def test_properties_of_fake_hardware_describe_the_injection_keys(
    registry: DriverRegistry,
) -> None:
    props = registry.properties("fake-hardware")

    assert set(props) >= {
        "fake_latency",
        "fake_fail",
        "fake_retryable_fail",
        "fake_wait",
        "fake_cpus",
        "fake_memory_mb",
        "fake_local_gb",
        "fake_cpu_arch",
    }
    assert props["fake_latency"].endswith("Optional; default 0.0.")
    assert props["fake_cpus"] == "CPUs fake inspection reports. Optional; default 4."
    assert props["fake_fail"].endswith("Optional.")
    assert not any(value.startswith("Required.") for value in props.values())


def test_properties_mark_required_keys_and_show_defaults() -> None:
    registry = DriverRegistry([other_hardware()])

    props = registry.properties("other")

    assert props["ipmi_address"] == "Required. IP address or hostname of the BMC."
    assert props["ipmi_port"] == "Remote IPMI RMCP port. Optional; default 623."
    assert props["ipmi_username"] == "BMC user name. Optional."


def test_properties_come_from_default_implementations_only() -> None:
    registry = DriverRegistry([other_hardware(power=(FakePower, IpmiLikePower))])

    assert "ipmi_address" not in registry.properties("other")


def test_clean_steps_are_sorted_by_priority_then_interface(registry: DriverRegistry) -> None:
    interfaces = registry.resolve_interfaces("fake-hardware", {})

    steps = registry.steps("fake-hardware", interfaces, "clean")

    assert [(s.interface, s.name, s.priority) for s in steps] == [
        ("deploy", "erase_devices_metadata", 10),
        ("management", "reset_bmc", 0),
        ("deploy", "erase_devices", 0),
        ("firmware", "update", 0),
        ("bios", "apply_configuration", 0),
        ("raid", "create_configuration", 0),
        ("raid", "delete_configuration", 0),
    ]
    erase = next(s for s in steps if s.name == "erase_devices")
    assert "erase_pattern" in erase.argsinfo


def test_service_steps_are_only_service_kind(registry: DriverRegistry) -> None:
    interfaces = registry.resolve_interfaces("fake-hardware", {})

    steps = registry.steps("fake-hardware", interfaces, "service")

    assert [(s.interface, s.name) for s in steps] == [("deploy", "fake_service")]


def test_steps_follow_the_nodes_implementations(registry: DriverRegistry) -> None:
    interfaces = registry.resolve_interfaces(
        "fake-hardware", {"raid": "no-raid", "bios": "no-bios"}
    )

    names = [s.name for s in registry.steps("fake-hardware", interfaces, "clean")]

    assert "create_configuration" not in names
    assert "apply_configuration" not in names
    assert "erase_devices_metadata" in names


def test_duplicate_hardware_type_names_are_rejected() -> None:
    with pytest.raises(MetalcastError, match="defined twice"):
        DriverRegistry([FAKE_HARDWARE, FAKE_HARDWARE])


def test_hardware_type_missing_an_interface_is_rejected() -> None:
    supported = {k: v for k, v in FAKE_HARDWARE.supported.items() if k != "rescue"}
    broken = HardwareType(name="broken", description="", supported=MappingProxyType(supported))

    with pytest.raises(MetalcastError, match="supports no rescue interface"):
        DriverRegistry([broken])


def test_hardware_type_with_wrong_interface_class_is_rejected() -> None:
    supported = dict(FAKE_HARDWARE.supported)
    supported["power"] = (NoopNetwork,)
    broken = HardwareType(name="broken", description="", supported=MappingProxyType(supported))

    with pytest.raises(MetalcastError, match="NoopNetwork is not a power interface"):
        DriverRegistry([broken])


@dataclass
class FakeEntryPoint:
    name: str
    value: object

    def load(self) -> object:
        return self.value


def test_default_registry_adds_entry_point_hardware_types(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def entry_points(*, group: str) -> list[FakeEntryPoint]:
        assert group == "metalcast.hardware_types"
        return [FakeEntryPoint("other", other_hardware())]

    monkeypatch.setattr(registry_module, "entry_points", entry_points)

    registry = default_registry()

    assert [hw.name for hw in registry.hardware_types()] == [
        "fake-hardware",
        "ipmi",
        "redfish",
        "other",
    ]
    assert registry.resolve_interfaces("other", {})["power"] == "ipmi-like"


def test_default_registry_rejects_entry_point_that_is_not_a_hardware_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        registry_module, "entry_points", lambda *, group: [FakeEntryPoint("junk", object())]
    )

    with pytest.raises(MetalcastError, match=r"'junk'.*not a HardwareType"):
        default_registry()
