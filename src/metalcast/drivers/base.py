"""Driver interfaces: small abstract classes, and the immutable context drivers get.

A driver never sees the database or the node lock.  The conductor builds a
:class:`DriverContext` (a snapshot of the node, its parsed and decrypted
``driver_info``, a logger), calls one interface method, and applies what it returns:
drivers return or raise, only the conductor saves and changes state.

Errors (from :mod:`metalcast.errors`)::

    DriverError
    ├── RetryableDriverError   transient; the conductor may retry the call
    └── FatalDriverError       retrying will not help; the node's operation fails
    MissingDriverInfo          (InvalidInput, 400) validate(): settings missing/invalid
"""

from __future__ import annotations

import abc
import enum
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from metalcast.drivers import raid
from metalcast.drivers.console_log import ConsoleOutput
from metalcast.errors import FatalDriverError, InvalidInput
from metalcast.states import PowerState, PowerTarget


class MissingDriverInfo(InvalidInput):
    """``driver_info`` lacks a required setting or holds an invalid one."""

    def __init__(self, interface: str, problems: list[str]) -> None:
        super().__init__(f"{interface}: " + "; ".join(problems))
        self.interface = interface
        self.problems = problems


class NoDriverInfo(BaseModel):
    """The settings model of an implementation that needs no settings."""

    model_config = ConfigDict(extra="ignore", frozen=True)


@dataclass(frozen=True, slots=True)
class NodeSnapshot:
    """What a driver may know of a node: read-only copies of its fields."""

    uuid: str
    name: str | None
    driver: str
    provision_state: str
    power_state: str | None
    properties: Mapping[str, Any]
    instance_info: Mapping[str, Any]
    driver_internal_info: Mapping[str, Any]
    mac_addresses: tuple[str, ...] = ()
    #: the RAID configuration the operator asked for (``{}``: none)
    target_raid_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: the RAID configuration last applied (``{}``: none known)
    raid_config: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: the node's ``network_data`` (Ironic's network_data.json shape; ``{}``: none)
    network_data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class StepProgress:
    """How far a long step carried out by the BMC has come (a firmware update)."""

    #: ``<interface>.<step>``
    step: str
    #: what the step works on now (a firmware component)
    target: str
    #: 0 to 100; None: the BMC does not say
    percent: int | None
    #: the BMC's own word for the state ("Running"; None: not said)
    state: str | None


ProgressSink = Callable[[StepProgress], None]


def _ignore_progress(progress: StepProgress) -> None:
    """The progress sink of calls that are not steps: nobody records it."""


@dataclass(frozen=True, slots=True)
class DriverContext:
    """Everything one interface call may use.  Built by the conductor per call.

    ``driver_info`` is decrypted (secrets in clear): never log it whole.
    """

    node: NodeSnapshot
    driver_info: Mapping[str, Any]
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger]
    #: arguments of the operation (clean step args, deploy options, …)
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: where a long step reports its progress; the conductor records it on the node
    progress: ProgressSink = _ignore_progress

    def info(self, model: type[M]) -> M:
        """``driver_info`` parsed by ``model``.

        Raises:
            MissingDriverInfo: a setting is missing or invalid.
        """
        return parse_info(model, self.driver_info, interface=model.__name__)


M = TypeVar("M", bound=BaseModel)


def parse_info(model: type[M], info: Mapping[str, Any], *, interface: str) -> M:
    """Validate ``info`` against ``model``, turning errors into MissingDriverInfo."""
    try:
        return model.model_validate(dict(info))
    except ValidationError as exc:
        problems = [
            f"driver_info/{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors()
        ]
        raise MissingDriverInfo(interface, problems) from exc


class StepResult(enum.StrEnum):
    """How a long operation ended: done now, or waiting for a callback (agent)."""

    DONE = "done"
    WAIT = "wait"


class AgentPhase(enum.StrEnum):
    """What the node's ramdisk agent is booted for: what the conductor continues once
    the agent has run every command it was handed."""

    DEPLOY = "deploy"
    CLEAN = "clean"
    INSPECT = "inspect"
    RESCUE = "rescue"


@dataclass(frozen=True, slots=True)
class AgentCommand:
    """A command of ``docs/agent-protocol.md`` for the node's agent."""

    name: str
    args: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class AgentWork:
    """Work an interface hands to the node's ramdisk agent: the one way a driver asks
    for the agent.  The conductor boots the deploy ramdisk for ``phase`` unless the
    agent is already up for it, queues ``commands`` and waits for their results; for
    ``write_instance`` it adds the commands that write the instance (it owns the
    image cache and the config drive)."""

    phase: AgentPhase
    commands: tuple[AgentCommand, ...] = ()
    #: the conductor fetches the image into its cache and builds the config drive now
    #: (before the ramdisk boots: a bad image fails the deploy at once); the commands
    #: that write them wait for ``write_instance``
    prepare_instance: bool = False
    #: the conductor queues the commands that write the instance (the image and the
    #: config drive) before ``commands``: it owns the image cache and the config drive
    write_instance: bool = False


class InstanceAction(enum.StrEnum):
    """What a deploy step asks the conductor to do with the node's other interfaces
    (a driver never calls another interface): the end of an agent-driven deploy, as
    Ironic's deploy steps of the same names do it."""

    #: boot from the disk from now on; the boot interface prepares the instance boot
    PREPARE_INSTANCE_BOOT = "prepare_instance_boot"
    #: no more ramdisk boot, power off, the agent forgotten
    TEAR_DOWN_AGENT = "tear_down_agent"
    #: the network interface moves the node to its tenant networks
    SWITCH_TO_TENANT_NETWORK = "switch_to_tenant_network"
    #: power the node on into its instance
    BOOT_INSTANCE = "boot_instance"


@dataclass(frozen=True, slots=True)
class FirmwareComponent:
    """A firmware component of a node and its version (Ironic's firmware components)."""

    #: "bios", "bmc", or the BMC's own name for another component
    component: str
    current_version: str | None
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None


@dataclass(frozen=True, slots=True)
class FirmwareChange:
    """What a firmware update step did: the node's components read before and after,
    and the components it updated."""

    before: tuple[FirmwareComponent, ...]
    after: tuple[FirmwareComponent, ...]
    updated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What a step may return instead of a bare :class:`StepResult`: the result, and
    what the step changed on the node, for the conductor to record (drivers never
    save).  ``None`` means unchanged."""

    result: StepResult = StepResult.DONE
    #: the RAID configuration now on the node (``{}``: none)
    raid_config: Mapping[str, Any] | None = None
    #: work for the node's agent; the operation waits (``result`` WAIT) until the
    #: agent reports back
    agent: AgentWork | None = None
    #: an inventory in Ironic's format found out of band (an inspect interface that
    #: reads the BMC): the conductor checks, stores and acts on it as on an agent's
    inventory: Mapping[str, Any] | None = None
    #: work on the node's other interfaces for the conductor (a deploy step)
    instance: InstanceAction | None = None
    #: the firmware components before and after an update (the conductor stores
    #: ``after`` and records the versions in the node's history)
    firmware: FirmwareChange | None = None

    @classmethod
    def of(cls, value: StepResult | StepOutcome) -> StepOutcome:
        """``value`` as an outcome (a bare result changed nothing)."""
        return value if isinstance(value, StepOutcome) else cls(value)

    @classmethod
    def for_agent(cls, phase: AgentPhase, *commands: AgentCommand) -> StepOutcome:
        """Wait for the agent booted for ``phase`` to run ``commands``."""
        return cls(StepResult.WAIT, agent=AgentWork(phase, commands))


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A clean, deploy or service step an interface offers."""

    name: str
    interface: str
    priority: int
    abortable: bool = False
    argsinfo: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: which kinds of step this is: "clean", "deploy", "service"
    kinds: frozenset[str] = frozenset({"clean"})
    #: whether the step runs in the ramdisk agent (Ironic's ``requires_ramdisk``):
    #: such a step cannot run in a cleaning asked with ``disable_ramdisk``
    requires_ramdisk: bool = False


#: the kinds of a deploy step, and of a step that is a clean step and a deploy step
DEPLOY_STEP = frozenset({"deploy"})
CLEAN_OR_DEPLOY_STEP = frozenset({"clean", "deploy"})

#: the core deploy step every deploy interface has: :meth:`DeployInterface.deploy`
CORE_DEPLOY_STEP = StepSpec(name="deploy", interface="deploy", priority=100, kinds=DEPLOY_STEP)

_STEP_ATTR = "_metalcast_step"


@functools.cache
def _declared_steps(cls: type, interface_type: str) -> tuple[StepSpec, ...]:
    """The steps ``cls`` declares with :func:`step` (looked for once per class: a
    class's methods do not change, and every step listing of a cleaning asks)."""
    out = []
    for attr in dir(cls):
        marker = getattr(getattr(cls, attr, None), _STEP_ATTR, None)
        if marker is not None:
            out.append(StepSpec(name=attr, interface=interface_type, **marker))
    return tuple(out)


F = TypeVar("F", bound=Callable[..., Any])


def step(
    *,
    priority: int,
    kinds: frozenset[str] = frozenset({"clean"}),
    abortable: bool = False,
    argsinfo: Mapping[str, str] | None = None,
    requires_ramdisk: bool = False,
) -> Callable[[F], F]:
    """Declare an interface method as a step.  Priority 0: manual only;
    ``requires_ramdisk``: the step is run by the ramdisk agent."""

    def mark(func: F) -> F:
        setattr(
            func,
            _STEP_ATTR,
            {
                "priority": priority,
                "kinds": kinds,
                "abortable": abortable,
                "argsinfo": MappingProxyType(dict(argsinfo or {})),
                "requires_ramdisk": requires_ramdisk,
            },
        )
        return func

    return mark


class Interface(abc.ABC):
    """Common to every interface implementation."""

    #: the interface this class implements ("power", "deploy", …)
    interface_type: ClassVar[str]
    #: the implementation's name, as nodes spell it ("fake", "ipmitool", …)
    name: ClassVar[str]
    #: the ``driver_info`` settings it needs
    info_model: ClassVar[type[BaseModel]] = NoDriverInfo
    #: False for the "no-*" implementations: the node lacks the feature, so requests
    #: for it (enable the console, set a RAID configuration) are refused up front
    implemented: ClassVar[bool] = True

    def validate(self, ctx: DriverContext) -> None:
        """Check the node has what this implementation needs.

        Raises:
            MissingDriverInfo: a setting is missing or invalid.
        """
        self.check_info(ctx)

    def check_info(self, ctx: DriverContext) -> None:
        """Check only that the node's ``driver_info`` holds the settings this
        implementation reads: no BMC, no fake latency or injected failure; what a
        request checks before it is accepted.

        Raises:
            MissingDriverInfo: a setting is missing or invalid.
        """
        parse_info(self.info_model, ctx.driver_info, interface=self.interface_type)

    def steps(self) -> list[StepSpec]:
        """Every step this implementation declares with :func:`step`."""
        return list(_declared_steps(type(self), self.interface_type))

    def perform_step(self, ctx: DriverContext, name: str) -> StepOutcome:
        """Run the declared step ``name`` with ``ctx.args``; what it returned (a
        :class:`StepOutcome`, or a :class:`StepResult`), as a StepOutcome.

        Raises:
            InvalidInput: no such step.
            DriverError: the step failed.
        """
        if name not in {s.name for s in self.steps()}:
            raise InvalidInput(f"{self.interface_type} interface has no step {name!r}")
        result = getattr(self, name)(ctx)
        if isinstance(result, StepOutcome):
            return result
        return StepOutcome(StepResult.WAIT if result == StepResult.WAIT else StepResult.DONE)

    def check_step_args(self, name: str, args: Mapping[str, Any]) -> None:
        """Check the arguments of step ``name`` when the step is asked for, before
        anything runs (what needs no BMC: their shape).  By default nothing.

        Raises:
            InvalidInput: the arguments are malformed; the message says what to fix.
        """
        return None

    def run_step(self, ctx: DriverContext, name: str) -> StepResult:
        """Run the declared step ``name``; only whether it is done or waits.

        Raises:
            InvalidInput: no such step.
            DriverError: the step failed.
        """
        return self.perform_step(ctx, name).result


class PowerInterface(Interface):
    interface_type = "power"

    @abc.abstractmethod
    def get_power_state(self, ctx: DriverContext) -> PowerState:
        """The power state the BMC reports.  Raises DriverError."""

    @abc.abstractmethod
    def set_power_state(self, ctx: DriverContext, target: PowerTarget, timeout: float) -> None:
        """Carry out ``target`` and confirm it within ``timeout`` seconds.

        Raises:
            DriverError: the BMC refused, failed or did not reach the state in time.
        """

    def get_supported_power_states(self, ctx: DriverContext) -> list[PowerTarget]:
        return [PowerTarget.ON, PowerTarget.OFF, PowerTarget.REBOOT]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator a management interface offers (Ironic 1.63)."""

    readonly: bool
    #: the states it can be set to (or shows)
    states: tuple[str, ...]


class ManagementInterface(Interface):
    interface_type = "management"

    @abc.abstractmethod
    def get_supported_boot_devices(self, ctx: DriverContext) -> list[str]:
        """Boot devices this node can be set to ("pxe", "disk", "cdrom", "bios", …)."""

    @abc.abstractmethod
    def set_boot_device(self, ctx: DriverContext, device: str, *, persistent: bool) -> None:
        """Make the node boot from ``device`` (next boot only unless ``persistent``).

        Raises:
            InvalidInput: unsupported device.  DriverError: the BMC failed.
        """

    @abc.abstractmethod
    def get_boot_device(self, ctx: DriverContext) -> tuple[str | None, bool | None]:
        """The current boot device and whether it is persistent (None: unknown)."""

    def inject_nmi(self, ctx: DriverContext) -> None:
        """Send a non-maskable interrupt.  Raises FatalDriverError if unsupported."""
        raise FatalDriverError(f"{self.name} management cannot inject NMI", operation="inject nmi")

    #: whether :meth:`get_boot_mode` and :meth:`set_boot_mode` reach the BMC
    supports_boot_mode: ClassVar[bool] = False
    #: whether :meth:`get_secure_boot_state` and :meth:`set_secure_boot_state` do
    supports_secure_boot: ClassVar[bool] = False

    def get_boot_mode(self, ctx: DriverContext) -> str | None:
        """The boot mode the node boots in ("uefi", "bios"; None: the BMC does not
        say).  Raises FatalDriverError if unsupported, DriverError."""
        raise FatalDriverError(
            f"{self.name} management cannot read the boot mode", operation="get boot mode"
        )

    def set_boot_mode(self, ctx: DriverContext, mode: str) -> None:
        """Boot in ``mode`` ("uefi" or "bios") from now on.

        Raises:
            InvalidInput: an unknown mode.
            FatalDriverError: unsupported.  DriverError: the BMC failed.
        """
        raise FatalDriverError(
            f"{self.name} management cannot change the boot mode", operation="set boot mode"
        )

    def get_secure_boot_state(self, ctx: DriverContext) -> bool | None:
        """Whether UEFI secure boot is on (None: the BMC does not say).  Raises
        FatalDriverError if unsupported, DriverError."""
        raise FatalDriverError(
            f"{self.name} management cannot read the secure boot state",
            operation="get secure boot state",
        )

    def set_secure_boot_state(self, ctx: DriverContext, enabled: bool) -> None:
        """Turn UEFI secure boot on or off.  Raises FatalDriverError if unsupported,
        DriverError."""
        raise FatalDriverError(
            f"{self.name} management cannot change the secure boot state",
            operation="set secure boot state",
        )

    def get_sensors_data(self, ctx: DriverContext) -> dict[str, Any]:
        return {}

    def get_supported_indicators(self, ctx: DriverContext) -> dict[str, dict[str, Indicator]]:
        """The node's indicators (LEDs) by component (``system``, ``chassis``,
        ``disk``, ``power``, ``nic``), then name (Ironic 1.63).

        Raises:
            InvalidInput: the interface has none (Ironic's ipmi has none either).
        """
        raise InvalidInput(f"{self.name} management has no indicators.")

    def get_indicator_state(self, ctx: DriverContext, component: str, name: str) -> str:
        """The state of one indicator, one of ``states.INDICATOR_STATES``.  Raises
        InvalidInput (no such indicator), DriverError."""
        raise InvalidInput(f"{self.name} management has no indicators.")

    def set_indicator_state(
        self, ctx: DriverContext, component: str, name: str, state: str
    ) -> None:
        """Set one indicator (the conductor checked it exists, is writable and takes
        ``state``).  Raises DriverError."""
        raise InvalidInput(f"{self.name} management has no indicators.")

    def get_virtual_media(self, ctx: DriverContext) -> list[dict[str, Any]]:
        """The BMC's virtual CDs and DVDs (Ironic 1.93): ``media_types``,
        ``inserted``, ``image`` each.

        Raises:
            InvalidInput: the interface has no virtual media.
            DriverError: the BMC failed.
        """
        raise InvalidInput(f"{self.name} management has no virtual media.")

    def attach_virtual_media(self, ctx: DriverContext, device_type: str, image_url: str) -> None:
        """Insert ``image_url`` (http or https) into the virtual ``device_type``
        (``cdrom``; Ironic 1.89).  Raises InvalidInput (no such device), DriverError."""
        raise InvalidInput(f"{self.name} management has no virtual media.")

    def detach_virtual_media(self, ctx: DriverContext, device_types: Sequence[str]) -> None:
        """Eject the virtual ``device_types`` (empty: all).  Raises InvalidInput,
        DriverError."""
        raise InvalidInput(f"{self.name} management has no virtual media.")


class BootInterface(Interface):
    interface_type = "boot"
    #: the boot device the conductor sets (once) to boot what prepare_ramdisk prepared
    ramdisk_boot_device: ClassVar[str] = "pxe"

    @abc.abstractmethod
    def prepare_ramdisk(self, ctx: DriverContext) -> None:
        """Make the node network-boot into the deploy ramdisk."""

    @abc.abstractmethod
    def clean_up_ramdisk(self, ctx: DriverContext) -> None:
        """Remove what prepare_ramdisk set up."""

    @abc.abstractmethod
    def prepare_instance(self, ctx: DriverContext) -> None:
        """Make the node boot its deployed instance."""

    @abc.abstractmethod
    def clean_up_instance(self, ctx: DriverContext) -> None:
        """Remove what prepare_instance set up."""


class DeployInterface(Interface):
    interface_type = "deploy"

    def steps(self) -> list[StepSpec]:
        """The declared steps and the core deploy step, :meth:`deploy`."""
        declared = super().steps()
        if any(s.name == CORE_DEPLOY_STEP.name for s in declared):
            return declared
        return [CORE_DEPLOY_STEP, *declared]

    @abc.abstractmethod
    def deploy(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """The core deploy step (``deploy.deploy``, priority 100, every deploy
        interface's): write the instance, or start what writes it; WAIT when an agent
        will call back later (a :class:`StepOutcome` with :class:`AgentWork` when the
        agent must boot)."""

    @abc.abstractmethod
    def tear_down(self, ctx: DriverContext) -> None:
        """Undo a deployment (power off, forget the instance)."""

    def prepare_cleaning(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Get ready to run clean steps; a :class:`StepOutcome` with
        :class:`AgentWork` when the clean steps need the agent booted first."""
        return StepResult.DONE

    def tear_down_cleaning(self, ctx: DriverContext) -> None:
        """Undo prepare_cleaning."""

    def take_over(self, ctx: DriverContext) -> None:
        """Adopt responsibility for an already-deployed node (conductor failover)."""

    def heartbeat(self, ctx: DriverContext) -> None:
        """A ramdisk agent heartbeated: where an agent-driven deploy interface continues
        its work (the next deploy, clean, rescue or service step).

        Called under the node's lock once the conductor has recorded ``agent_url``,
        ``agent_version`` and ``agent_last_heartbeat`` in
        ``ctx.node.driver_internal_info``; not called while the node is in
        maintenance.  The default does nothing: no deploy continues from a heartbeat.
        """


class InspectInterface(Interface):
    interface_type = "inspect"

    @abc.abstractmethod
    def inspect_hardware(
        self, ctx: DriverContext
    ) -> tuple[StepResult, dict[str, Any]] | StepOutcome:
        """Discover the hardware; returns properties to merge into the node's, or a
        :class:`StepOutcome` with :class:`AgentWork` when the agent reports it."""


class ConsoleInterface(Interface):
    interface_type = "console"

    @abc.abstractmethod
    def start_console(self, ctx: DriverContext) -> None: ...

    @abc.abstractmethod
    def stop_console(self, ctx: DriverContext) -> None: ...

    @abc.abstractmethod
    def get_console(self, ctx: DriverContext) -> dict[str, Any]:
        """How to reach the console: ``{"type": ..., "url": ...}`` (``{}``: nothing
        to reach, as a fake console).  ``{"type": "websocket"}``: through metalcast's
        own websocket proxy, which then reads :meth:`console_output` and writes
        :meth:`console_input`; the API fills in its URL."""

    def console_output(
        self, ctx: DriverContext, *, offset: int | None, wait: float
    ) -> ConsoleOutput:
        """The console's output from ``offset`` on (None: all the log keeps), waiting
        up to ``wait`` seconds for some.  By default there is none."""
        return ConsoleOutput(data=b"", offset=0, next_offset=0, open=False)

    def console_input(self, ctx: DriverContext, data: bytes) -> None:
        """Type ``data`` at the console.

        Raises:
            InvalidInput: this console takes no input, or it is not open.
            DriverError: the BMC did not take it.
        """
        raise InvalidInput(f"the {self.name} console takes no input")

    def console_alive(self, ctx: DriverContext) -> bool:
        """Whether an enabled console is still connected here (False: the conductor
        opens it again, after a restart or a takeover).  By default always."""
        return True


class RAIDInterface(Interface):
    interface_type = "raid"

    @abc.abstractmethod
    def create_configuration(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Apply ``ctx.node.target_raid_config``; a StepOutcome carries the applied
        configuration."""

    @abc.abstractmethod
    def delete_configuration(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Remove every logical disk; a StepOutcome carries ``raid_config={}``."""

    def validate_raid_config(self, config: Mapping[str, Any]) -> None:
        """Check a target RAID configuration before it is stored (Ironic's schema
        by default).

        Raises:
            InvalidInput: the configuration is malformed; the message says where.
        """
        raid.validate(config)

    def logical_disk_properties(self) -> dict[str, str]:
        """What a logical disk of a target RAID configuration may say, described."""
        return raid.logical_disk_properties()


class BIOSInterface(Interface):
    interface_type = "bios"

    @abc.abstractmethod
    def get_settings(self, ctx: DriverContext) -> dict[str, str]:
        """Current BIOS settings by name."""

    @abc.abstractmethod
    def apply_configuration(self, ctx: DriverContext) -> StepResult: ...


class FirmwareInterface(Interface):
    interface_type = "firmware"

    @abc.abstractmethod
    def get_components(self, ctx: DriverContext) -> list[FirmwareComponent]:
        """The node's firmware components and their versions, as the hardware
        reports them now.  Raises DriverError."""


class NetworkInterface(Interface):
    interface_type = "network"

    #: whether a VIF attached to the node is recorded on one of its free ports (as by
    #: Ironic's flat and neutron interfaces: no free port, no attachment); False:
    #: attaching and detaching change nothing and no VIF is listed (Ironic's noop)
    records_vifs: ClassVar[bool] = True

    @abc.abstractmethod
    def add_provisioning_network(self, ctx: DriverContext) -> None: ...

    @abc.abstractmethod
    def remove_provisioning_network(self, ctx: DriverContext) -> None: ...

    @abc.abstractmethod
    def configure_tenant_networks(self, ctx: DriverContext) -> None: ...

    @abc.abstractmethod
    def unconfigure_tenant_networks(self, ctx: DriverContext) -> None: ...


class StorageInterface(Interface):
    interface_type = "storage"

    @abc.abstractmethod
    def attach_volumes(self, ctx: DriverContext) -> None: ...

    @abc.abstractmethod
    def detach_volumes(self, ctx: DriverContext) -> None: ...


class RescueInterface(Interface):
    interface_type = "rescue"

    @abc.abstractmethod
    def rescue(self, ctx: DriverContext) -> StepResult | StepOutcome:
        """Boot the node into a rescue system; WAIT (or a :class:`StepOutcome` with
        work for the agent, booted for :attr:`AgentPhase.RESCUE`) when an agent must
        call back.  The hash of the tenant's rescue password is in the node's
        ``instance_info`` (``hashed_rescue_password``); the plain password is never
        kept."""

    @abc.abstractmethod
    def unrescue(self, ctx: DriverContext) -> None:
        """Undo what :meth:`rescue` set up on the node's side; the conductor then
        boots the node back into its instance (power off, boot from disk, power on)."""


@dataclass(frozen=True, slots=True)
class VendorMethod:
    """A driver-level vendor passthru method: what it does, how it is called."""

    description: str
    http_methods: tuple[str, ...] = ("POST",)


class VendorInterface(Interface):
    interface_type = "vendor"

    def methods(self) -> dict[str, str]:
        """Passthru methods on one node by name, with a description of each."""
        return {}

    def driver_methods(self) -> dict[str, VendorMethod]:
        """Passthru methods of the hardware type itself (no node), by name.  Served
        by the type's default vendor implementation."""
        return {}

    def driver_passthru(self, method: str, args: Mapping[str, Any]) -> Any:
        """Call driver-level vendor method ``method``.

        Raises:
            InvalidInput: no such method, or bad arguments.
            DriverError: the method failed.
        """
        raise InvalidInput(f"Unsupported driver vendor passthru method {method!r}")

    def passthru(self, ctx: DriverContext, method: str, args: Mapping[str, Any]) -> Any:
        """Call vendor method ``method``.

        Raises:
            InvalidInput: no such method.
        """
        raise InvalidInput(f"Unsupported vendor passthru method {method!r}")


INTERFACE_CLASSES: Mapping[str, type[Interface]] = MappingProxyType(
    {
        "bios": BIOSInterface,
        "boot": BootInterface,
        "console": ConsoleInterface,
        "deploy": DeployInterface,
        "firmware": FirmwareInterface,
        "inspect": InspectInterface,
        "management": ManagementInterface,
        "network": NetworkInterface,
        "power": PowerInterface,
        "raid": RAIDInterface,
        "rescue": RescueInterface,
        "storage": StorageInterface,
        "vendor": VendorInterface,
    }
)


@dataclass(frozen=True, slots=True)
class HardwareType:
    """A kind of hardware: for each interface, the implementations it supports.

    The first implementation in each tuple is the default.
    """

    name: str
    description: str
    supported: Mapping[str, tuple[type[Interface], ...]]

    def default(self, interface: str) -> str:
        return self.supported[interface][0].name

    def names(self, interface: str) -> list[str]:
        return [impl.name for impl in self.supported[interface]]
