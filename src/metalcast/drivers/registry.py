"""The driver registry: which hardware types are enabled, and their interface instances.

A registry is built from an explicit list of hardware types; nothing is instantiated
at import time.  Interface implementations are created on first use, one instance per
implementation class per registry; an implementation that shares state with others
(the fakes share one fake BMC) is built by a factory handed to the registry.

Errors::

    InvalidInput       unknown hardware type, interface or implementation (400)
    MetalcastError     a hardware type is malformed or defined twice (a bug, 500)
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from importlib.metadata import entry_points

from pydantic.fields import FieldInfo

from metalcast.config import CleaningSettings
from metalcast.drivers import fake
from metalcast.drivers.base import (
    INTERFACE_CLASSES,
    HardwareType,
    Interface,
    StepSpec,
)
from metalcast.drivers.bmc_call import CallPolicy
from metalcast.drivers.console_log import DEFAULT_LIMIT
from metalcast.drivers.direct import DirectDeploy
from metalcast.drivers.fake.injection import Sleep
from metalcast.drivers.hardware import BUILTIN_HARDWARE_TYPES
from metalcast.drivers.ipmi.client import IpmiSessions
from metalcast.drivers.ipmi.hardware import IPMI_HARDWARE, ipmi_factories
from metalcast.drivers.ipmi.sol import SolConsoles
from metalcast.drivers.netboot import BootFiles, IPXEBoot, PXEBoot
from metalcast.drivers.redfish.client import RedfishSessions
from metalcast.drivers.redfish.hardware import REDFISH_HARDWARE, redfish_factories
from metalcast.drivers.redfish.vmedia import VirtualMediaFiles
from metalcast.errors import InvalidInput, MetalcastError
from metalcast.interfaces import INTERFACE_NAMES

#: the entry-point group out-of-tree packages list their HardwareType objects in
ENTRY_POINT_GROUP = "metalcast.hardware_types"

InterfaceFactory = Callable[[], Interface]

#: when two steps share a priority, the one whose interface comes first runs first
#: (Ironic's order: vendor, power, management, deploy, firmware, bios, raid)
_TIE_BREAK_FIRST = ("vendor", "power", "management", "deploy", "firmware", "bios", "raid")
STEP_INTERFACE_ORDER: tuple[str, ...] = _TIE_BREAK_FIRST + tuple(
    name for name in INTERFACE_NAMES if name not in _TIE_BREAK_FIRST
)


def _check_hardware_type(hw: HardwareType) -> None:
    for iface in INTERFACE_NAMES:
        impls = hw.supported.get(iface, ())
        if not impls:
            raise MetalcastError(f"Hardware type {hw.name!r} supports no {iface} interface")
        for impl in impls:
            if not issubclass(impl, INTERFACE_CLASSES[iface]):
                raise MetalcastError(
                    f"Hardware type {hw.name!r}: {impl.__name__} is not a {iface} interface"
                )


class DriverRegistry:
    """The enabled hardware types and the interface instances they hand out."""

    def __init__(
        self,
        hardware_types: Iterable[HardwareType],
        *,
        factories: Mapping[type[Interface], InterfaceFactory] | None = None,
    ) -> None:
        """Enable ``hardware_types``; ``factories`` build the classes that need arguments.

        Raises:
            MetalcastError: two types share a name, or a type lacks an interface.
        """
        self._types: dict[str, HardwareType] = {}
        for hw in hardware_types:
            if hw.name in self._types:
                raise MetalcastError(f"Hardware type {hw.name!r} is defined twice")
            _check_hardware_type(hw)
            self._types[hw.name] = hw
        self._factories = dict(factories or {})
        self._instances: dict[type[Interface], Interface] = {}
        self._lock = threading.Lock()

    def hardware_types(self) -> list[HardwareType]:
        """The enabled hardware types, in the order they were given."""
        return list(self._types.values())

    def hardware_type(self, name: str) -> HardwareType:
        """The enabled hardware type ``name``.

        Raises:
            InvalidInput: no such hardware type is enabled.
        """
        try:
            return self._types[name]
        except KeyError:
            raise InvalidInput(
                f"Unknown hardware type {name!r}. Enabled hardware types: " + ", ".join(self._types)
            ) from None

    def resolve_interfaces(
        self, hw_name: str, requested: Mapping[str, str | None]
    ) -> dict[str, str]:
        """Every interface's implementation: the requested one, else the type's default.

        ``requested`` maps interface names ("power") to implementation names; None
        (or a missing key) means the default.

        Raises:
            InvalidInput: unknown hardware type or interface, or an implementation the
                hardware type does not support.
        """
        self.hardware_type(hw_name)
        unknown = sorted(set(requested) - set(INTERFACE_NAMES))
        if unknown:
            raise InvalidInput(
                f"Unknown interface(s) {', '.join(map(repr, unknown))}. "
                f"Interfaces: {', '.join(INTERFACE_NAMES)}"
            )
        resolved: dict[str, str] = {}
        for iface in INTERFACE_NAMES:
            wanted = requested.get(iface)
            resolved[iface] = self.implementation(hw_name, iface, wanted).name
        return resolved

    def implementation(
        self, hw_name: str, interface: str, impl_name: str | None = None
    ) -> type[Interface]:
        """The class implementing ``interface`` as ``impl_name`` (None: the default).

        Raises:
            InvalidInput: unknown hardware type or interface, or unsupported
                implementation.
        """
        hw = self.hardware_type(hw_name)
        if interface not in INTERFACE_NAMES:
            raise InvalidInput(
                f"Unknown interface {interface!r}. Interfaces: {', '.join(INTERFACE_NAMES)}"
            )
        impls = hw.supported[interface]
        if impl_name is None:
            return impls[0]
        for impl in impls:
            if impl.name == impl_name:
                return impl
        raise InvalidInput(
            f"Interface {interface!r} of hardware type {hw.name!r} does not support "
            f"implementation {impl_name!r}. Supported: {', '.join(hw.names(interface))}"
        )

    def interface(self, hw_name: str, interface: str, impl_name: str) -> Interface:
        """The shared instance of ``impl_name`` for ``interface``, created on first use.

        Raises:
            InvalidInput: as :meth:`implementation`.
        """
        cls = self.implementation(hw_name, interface, impl_name)
        with self._lock:
            instance = self._instances.get(cls)
            if instance is None:
                instance = self._factories.get(cls, cls)()
                self._instances[cls] = instance
            return instance

    def properties(self, hw_name: str) -> dict[str, str]:
        """The ``driver_info`` keys of the type's default implementations, described.

        As Ironic's GET /v1/drivers/{name}/properties: required keys are described
        "Required. …", optional ones with their default.

        Raises:
            InvalidInput: unknown hardware type.
        """
        hw = self.hardware_type(hw_name)
        described: dict[str, str] = {}
        for iface in INTERFACE_NAMES:
            model = hw.supported[iface][0].info_model
            for key, info in model.model_fields.items():
                described.setdefault(info.alias or key, _describe(info))
        return described

    def steps(self, hw_name: str, interfaces: Mapping[str, str], kind: str) -> list[StepSpec]:
        """The ``kind`` steps ("clean", "deploy", "service") of a node's interfaces.

        ``interfaces`` maps interface names to implementation names (as
        :meth:`resolve_interfaces` returns).  Highest priority first; ties go by
        interface (vendor, power, management, deploy, firmware, bios, raid), then name.

        Raises:
            InvalidInput: as :meth:`implementation`.
        """
        found: list[StepSpec] = []
        for iface, impl_name in interfaces.items():
            instance = self.interface(hw_name, iface, impl_name)
            found.extend(s for s in instance.steps() if kind in s.kinds)
        return sorted(
            found,
            key=lambda s: (-s.priority, STEP_INTERFACE_ORDER.index(s.interface), s.name),
        )


def _describe(info: FieldInfo) -> str:
    description = (info.description or "").strip()
    if info.is_required():
        return f"Required. {description}".strip()
    default = info.get_default(call_default_factory=True)
    empty = default is None or (isinstance(default, Collection) and not default)
    suffix = "Optional." if empty else f"Optional; default {default}."
    return f"{description} {suffix}".strip()


def default_registry(
    *,
    fake_bmc: fake.FakeBmcState | None = None,
    sleep: Sleep = time.sleep,
    bmc_policy: CallPolicy | None = None,
    boot_files: BootFiles | None = None,
    vmedia_files: VirtualMediaFiles | None = None,
    cleaning: CleaningSettings | None = None,
    console_log_bytes: int = DEFAULT_LIMIT,
) -> DriverRegistry:
    """The built-in hardware types plus those of the ``metalcast.hardware_types`` group.

    ``fake_bmc`` (a new one by default) backs the fake interfaces; pass your own to
    look at or change it from a test.  ``sleep`` is what ``fake_latency`` sleeps with.
    ``bmc_policy`` bounds every IPMI and Redfish call (deadline, retries).
    ``boot_files`` is where the ``ipxe`` and ``pxe`` boot interfaces write node boot
    files (the boot services); without it they fail with a clear error.
    ``vmedia_files`` builds and serves the ``redfish-virtual-media`` boot's ISOs (the
    boot services too).
    ``cleaning`` sets the ``direct`` deploy's erase steps (their priorities, how the
    agent erases).
    ``console_log_bytes`` bounds each node's console log.

    Raises:
        MetalcastError: an entry point is not a HardwareType or reuses a name.
    """
    types = [*BUILTIN_HARDWARE_TYPES, IPMI_HARDWARE, REDFISH_HARDWARE]
    for point in entry_points(group=ENTRY_POINT_GROUP):
        loaded = point.load()
        if not isinstance(loaded, HardwareType):
            raise MetalcastError(
                f"Entry point {point.name!r} in {ENTRY_POINT_GROUP} is not a HardwareType"
            )
        types.append(loaded)
    factories: dict[type[Interface], InterfaceFactory] = {
        **fake.fake_factories(fake_bmc or fake.FakeBmcState(), sleep=sleep),
        **ipmi_factories(IpmiSessions(policy=bmc_policy), SolConsoles(log_bytes=console_log_bytes)),
        **redfish_factories(RedfishSessions(policy=bmc_policy), vmedia_files),
        IPXEBoot: functools.partial(IPXEBoot, boot_files),
        PXEBoot: functools.partial(PXEBoot, boot_files),
        DirectDeploy: functools.partial(DirectDeploy, cleaning),
    }
    return DriverRegistry(types, factories=factories)
