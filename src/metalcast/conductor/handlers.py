"""What the conductor does for each request of :mod:`metalcast.calls`: one handler
per request type, each a call into the conductor module that owns the operation.

:meth:`metalcast.conductor.service.ConductorService.execute` looks a request's type up
in :data:`HANDLERS`.  A handler gets the service, the request and who asks, and
returns the request's result; it raises what its operation raises.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from metalcast import calls as c
from metalcast.conductor import (
    agent,
    allocations,
    boot_mode,
    console,
    discovery,
    management,
    nodes,
    ports,
    power,
    provision,
    raid,
    volumes,
)
from metalcast.conductor.flows import ProvisionOptions
from metalcast.context import RequestContext
from metalcast.db.models import Allocation, Node, Port, Portgroup, VolumeConnector, VolumeTarget
from metalcast.errors import InvalidInput, NotFound
from metalcast_agent.protocol import HeartbeatReply

if TYPE_CHECKING:
    from metalcast.conductor.service import ConductorService

R = TypeVar("R", bound=c.Call[Any])
Handler = Callable[["ConductorService", R, RequestContext], Any]

#: request type -> its handler
HANDLERS: dict[type[c.Call[Any]], Handler[Any]] = {}


def handles(kind: type[R]) -> Callable[[Handler[R]], Handler[R]]:
    """Record the decorated function as the handler of requests of type ``kind``."""

    def record(handler: Handler[R]) -> Handler[R]:
        HANDLERS[kind] = handler
        return handler

    return record


# ---- nodes -------------------------------------------------------------------------


@handles(c.CreateNode)
def _create_node(s: ConductorService, r: c.CreateNode, ctx: RequestContext) -> Node:
    return nodes.create_node(s.rt, r.values, user=ctx.who, admin=ctx.is_admin)


@handles(c.UpdateNode)
def _update_node(s: ConductorService, r: c.UpdateNode, ctx: RequestContext) -> Node:
    return nodes.update_node(
        s.rt,
        r.node_id,
        values=r.values,
        user=ctx.who,
        reset_interfaces=r.reset_interfaces,
        admin=ctx.is_admin,
    )


@handles(c.DestroyNode)
def _destroy_node(s: ConductorService, r: c.DestroyNode, ctx: RequestContext) -> None:
    nodes.destroy_node(s.rt, r.node_id, user=ctx.who)


@handles(c.ChangeProvisionState)
def _change_provision_state(
    s: ConductorService, r: c.ChangeProvisionState, ctx: RequestContext
) -> None:
    asked = r.request
    options = ProvisionOptions(
        configdrive=asked.configdrive,
        clean_steps=asked.clean_steps,
        deploy_steps=asked.deploy_steps,
        service_steps=asked.service_steps,
        rescue_password=asked.rescue_password,
        disable_ramdisk=asked.disable_ramdisk,
        runbook=asked.runbook,
        admin=ctx.is_admin,
    )
    provision.change_provision_state(
        s.rt, r.node_id, verb=asked.verb, options=options, user=ctx.who
    )


@handles(c.ChangePowerState)
def _change_power_state(s: ConductorService, r: c.ChangePowerState, ctx: RequestContext) -> None:
    power.change_power_state(s.rt, r.node_id, target=r.target, timeout=r.timeout, user=ctx.who)


@handles(c.ChangeBootMode)
def _change_boot_mode(s: ConductorService, r: c.ChangeBootMode, ctx: RequestContext) -> None:
    boot_mode.change_boot_mode(s.rt, r.node_id, mode=r.mode, user=ctx.who)


@handles(c.ChangeSecureBoot)
def _change_secure_boot(s: ConductorService, r: c.ChangeSecureBoot, ctx: RequestContext) -> None:
    boot_mode.change_secure_boot(s.rt, r.node_id, enabled=r.enabled, user=ctx.who)


@handles(c.SetMaintenance)
def _set_maintenance(s: ConductorService, r: c.SetMaintenance, ctx: RequestContext) -> None:
    nodes.set_maintenance(s.rt, r.node_id, enabled=r.enabled, reason=r.reason, user=ctx.who)


@handles(c.Validate)
def _validate(
    s: ConductorService, r: c.Validate, ctx: RequestContext
) -> dict[str, c.InterfaceValidation]:
    results = management.validate(s.rt, r.node_id, user=ctx.who)
    return {
        name: c.InterfaceValidation(result=result, reason=reason)
        for name, (result, reason) in results.items()
    }


# ---- management --------------------------------------------------------------------


@handles(c.GetBootDevice)
def _get_boot_device(
    s: ConductorService, r: c.GetBootDevice, ctx: RequestContext
) -> dict[str, Any]:
    return management.get_boot_device(s.rt, r.node_id, user=ctx.who)


@handles(c.SetBootDevice)
def _set_boot_device(s: ConductorService, r: c.SetBootDevice, ctx: RequestContext) -> None:
    management.set_boot_device(
        s.rt, r.node_id, device=r.device, persistent=r.persistent, user=ctx.who
    )


@handles(c.GetSupportedBootDevices)
def _get_supported_boot_devices(
    s: ConductorService, r: c.GetSupportedBootDevices, ctx: RequestContext
) -> list[str]:
    return management.get_supported_boot_devices(s.rt, r.node_id, user=ctx.who)


@handles(c.InjectNmi)
def _inject_nmi(s: ConductorService, r: c.InjectNmi, ctx: RequestContext) -> None:
    management.inject_nmi(s.rt, r.node_id, user=ctx.who)


@handles(c.GetVirtualMedia)
def _get_virtual_media(
    s: ConductorService, r: c.GetVirtualMedia, ctx: RequestContext
) -> list[dict[str, Any]]:
    return management.get_virtual_media(s.rt, r.node_id, user=ctx.who)


@handles(c.AttachVirtualMedia)
def _attach_virtual_media(
    s: ConductorService, r: c.AttachVirtualMedia, ctx: RequestContext
) -> None:
    management.attach_virtual_media(
        s.rt, r.node_id, device_type=r.device_type, image_url=r.image_url, user=ctx.who
    )


@handles(c.DetachVirtualMedia)
def _detach_virtual_media(
    s: ConductorService, r: c.DetachVirtualMedia, ctx: RequestContext
) -> None:
    management.detach_virtual_media(s.rt, r.node_id, device_types=r.device_types, user=ctx.who)


@handles(c.ListIndicators)
def _list_indicators(
    s: ConductorService, r: c.ListIndicators, ctx: RequestContext
) -> dict[str, dict[str, Any]]:
    return management.list_indicators(s.rt, r.node_id, user=ctx.who)


@handles(c.GetIndicatorState)
def _get_indicator_state(s: ConductorService, r: c.GetIndicatorState, ctx: RequestContext) -> str:
    return management.get_indicator_state(
        s.rt, r.node_id, component=r.component, name=r.name, user=ctx.who
    )


@handles(c.SetIndicatorState)
def _set_indicator_state(s: ConductorService, r: c.SetIndicatorState, ctx: RequestContext) -> None:
    management.set_indicator_state(
        s.rt, r.node_id, component=r.component, name=r.name, state=r.state, user=ctx.who
    )


@handles(c.GetSensorsData)
def _get_sensors_data(
    s: ConductorService, r: c.GetSensorsData, ctx: RequestContext
) -> dict[str, Any]:
    return management.get_sensors_data(s.rt, r.node_id, user=ctx.who)


# ---- console, RAID -----------------------------------------------------------------


@handles(c.GetConsole)
def _get_console(s: ConductorService, r: c.GetConsole, ctx: RequestContext) -> c.ConsoleInfo:
    enabled, info = console.get_console(s.rt, r.node_id, user=ctx.who)
    return c.ConsoleInfo(enabled=enabled, info=info)


@handles(c.SetConsoleMode)
def _set_console_mode(s: ConductorService, r: c.SetConsoleMode, ctx: RequestContext) -> None:
    console.set_console_mode(s.rt, r.node_id, enabled=r.enabled, user=ctx.who)


@handles(c.ReadConsole)
def _read_console(s: ConductorService, r: c.ReadConsole, ctx: RequestContext) -> c.ConsoleChunk:
    out = console.read_output(s.rt, r.node_id, offset=r.offset, wait=r.wait, user=ctx.who)
    data = base64.b64encode(out.data).decode("ascii")
    return c.ConsoleChunk(data, out.offset, out.next_offset, out.missed, out.open)


@handles(c.CheckConsoleToken)
def _check_console_token(s: ConductorService, r: c.CheckConsoleToken, ctx: RequestContext) -> bool:
    return console.check_token(s.rt, r.node_id, r.token)


@handles(c.WriteConsole)
def _write_console(s: ConductorService, r: c.WriteConsole, ctx: RequestContext) -> None:
    try:
        data = base64.b64decode(r.data, validate=True)
    except binascii.Error as exc:
        raise InvalidInput("console input must be base64") from exc
    console.send_input(s.rt, r.node_id, data, user=ctx.who)


@handles(c.SetTargetRaidConfig)
def _set_target_raid_config(
    s: ConductorService, r: c.SetTargetRaidConfig, ctx: RequestContext
) -> None:
    raid.set_target_raid_config(s.rt, r.node_id, config=r.config, user=ctx.who)


# ---- traits, vifs, vendor ----------------------------------------------------------


@handles(c.SetTraits)
def _set_traits(s: ConductorService, r: c.SetTraits, ctx: RequestContext) -> None:
    nodes.set_traits(s.rt, r.node_id, traits=r.traits, replace=r.replace, user=ctx.who)


@handles(c.RemoveTraits)
def _remove_traits(s: ConductorService, r: c.RemoveTraits, ctx: RequestContext) -> None:
    nodes.remove_traits(s.rt, r.node_id, traits=r.traits, user=ctx.who)


@handles(c.VifList)
def _vif_list(s: ConductorService, r: c.VifList, ctx: RequestContext) -> list[dict[str, Any]]:
    return ports.vif_list(s.rt, r.node_id)


@handles(c.VifAttach)
def _vif_attach(s: ConductorService, r: c.VifAttach, ctx: RequestContext) -> None:
    ports.vif_attach(s.rt, r.node_id, vif=r.vif, user=ctx.who)


@handles(c.VifDetach)
def _vif_detach(s: ConductorService, r: c.VifDetach, ctx: RequestContext) -> None:
    ports.vif_detach(s.rt, r.node_id, vif_id=r.vif_id, user=ctx.who)


@handles(c.VendorMethods)
def _vendor_methods(s: ConductorService, r: c.VendorMethods, ctx: RequestContext) -> dict[str, Any]:
    return management.vendor_methods(s.rt, r.node_id, user=ctx.who)


@handles(c.VendorPassthru)
def _vendor_passthru(s: ConductorService, r: c.VendorPassthru, ctx: RequestContext) -> Any:
    return management.vendor_passthru(s.rt, r.node_id, method=r.method, args=r.args, user=ctx.who)


# ---- the ramdisk agent -------------------------------------------------------------


@handles(c.AgentLookup)
def _agent_lookup(s: ConductorService, r: c.AgentLookup, ctx: RequestContext) -> str:
    return agent.issue_token(s.rt, r.node_id, user=ctx.who)


@handles(c.AgentHeartbeat)
def _agent_heartbeat(
    s: ConductorService, r: c.AgentHeartbeat, ctx: RequestContext
) -> HeartbeatReply:
    return agent.heartbeat(s.rt, r.node_id, r.report, user=ctx.who)


@handles(c.DiscoverMachine)
def _discover_machine(s: ConductorService, r: c.DiscoverMachine, ctx: RequestContext) -> Node:
    if not s.settings.boot.discovery:
        raise NotFound(discovery.DISCOVERY_OFF)
    return discovery.discover(s.rt, s.settings.discovery, s.discovery_limit, r.report, user=ctx.who)


# ---- ports and portgroups ----------------------------------------------------------


@handles(c.CreatePort)
def _create_port(s: ConductorService, r: c.CreatePort, ctx: RequestContext) -> Port:
    return ports.create_port(s.rt, r.values, user=ctx.who)


@handles(c.UpdatePort)
def _update_port(s: ConductorService, r: c.UpdatePort, ctx: RequestContext) -> Port:
    return ports.update_port(s.rt, r.port_id, values=r.values, user=ctx.who)


@handles(c.DestroyPort)
def _destroy_port(s: ConductorService, r: c.DestroyPort, ctx: RequestContext) -> None:
    ports.destroy_port(s.rt, r.port_id, user=ctx.who)


@handles(c.CreatePortgroup)
def _create_portgroup(s: ConductorService, r: c.CreatePortgroup, ctx: RequestContext) -> Portgroup:
    return ports.create_portgroup(s.rt, r.values, user=ctx.who)


@handles(c.UpdatePortgroup)
def _update_portgroup(s: ConductorService, r: c.UpdatePortgroup, ctx: RequestContext) -> Portgroup:
    return ports.update_portgroup(s.rt, r.portgroup_id, values=r.values, user=ctx.who)


@handles(c.DestroyPortgroup)
def _destroy_portgroup(s: ConductorService, r: c.DestroyPortgroup, ctx: RequestContext) -> None:
    ports.destroy_portgroup(s.rt, r.portgroup_id, user=ctx.who)


# ---- volume connectors and targets -------------------------------------------------


@handles(c.CreateVolumeConnector)
def _create_volume_connector(
    s: ConductorService, r: c.CreateVolumeConnector, ctx: RequestContext
) -> VolumeConnector:
    return volumes.create_connector(s.rt, r.values, user=ctx.who)


@handles(c.UpdateVolumeConnector)
def _update_volume_connector(
    s: ConductorService, r: c.UpdateVolumeConnector, ctx: RequestContext
) -> VolumeConnector:
    return volumes.update_connector(s.rt, r.connector_id, values=r.values, user=ctx.who)


@handles(c.DestroyVolumeConnector)
def _destroy_volume_connector(
    s: ConductorService, r: c.DestroyVolumeConnector, ctx: RequestContext
) -> None:
    volumes.destroy_connector(s.rt, r.connector_id, user=ctx.who)


@handles(c.CreateVolumeTarget)
def _create_volume_target(
    s: ConductorService, r: c.CreateVolumeTarget, ctx: RequestContext
) -> VolumeTarget:
    return volumes.create_target(s.rt, r.values, user=ctx.who)


@handles(c.UpdateVolumeTarget)
def _update_volume_target(
    s: ConductorService, r: c.UpdateVolumeTarget, ctx: RequestContext
) -> VolumeTarget:
    return volumes.update_target(s.rt, r.target_id, values=r.values, user=ctx.who)


@handles(c.DestroyVolumeTarget)
def _destroy_volume_target(
    s: ConductorService, r: c.DestroyVolumeTarget, ctx: RequestContext
) -> None:
    volumes.destroy_target(s.rt, r.target_id, user=ctx.who)


# ---- allocations -------------------------------------------------------------------


@handles(c.CreateAllocation)
def _create_allocation(
    s: ConductorService, r: c.CreateAllocation, ctx: RequestContext
) -> Allocation:
    """Store an allocation and queue it (the answer says ``allocating``), or, with
    ``node_id``, backfill it with that deployed node at once."""
    if r.node_id is not None:
        return allocations.backfill(s.rt, r.values, node_id=r.node_id, user=ctx.who)
    allocation = allocations.create(s.rt, r.values, conductor_id=s.allocator.conductor_id)
    s.allocator.submit(allocation.id)
    return allocation


@handles(c.DestroyAllocation)
def _destroy_allocation(s: ConductorService, r: c.DestroyAllocation, ctx: RequestContext) -> None:
    allocations.destroy(s.rt, r.allocation_id, user=ctx.who)


# ---- drivers -----------------------------------------------------------------------


@handles(c.ListHardwareTypes)
def _list_hardware_types(
    s: ConductorService, r: c.ListHardwareTypes, ctx: RequestContext
) -> list[c.HardwareTypeInfo]:
    return management.list_hardware_types(s.rt)


@handles(c.DriverProperties)
def _driver_properties(
    s: ConductorService, r: c.DriverProperties, ctx: RequestContext
) -> dict[str, str]:
    return management.driver_properties(s.rt, r.hardware_type)


@handles(c.RaidLogicalDiskProperties)
def _raid_logical_disk_properties(
    s: ConductorService, r: c.RaidLogicalDiskProperties, ctx: RequestContext
) -> dict[str, str]:
    return raid.logical_disk_properties(s.rt, r.hardware_type)


@handles(c.DriverVendorMethods)
def _driver_vendor_methods(
    s: ConductorService, r: c.DriverVendorMethods, ctx: RequestContext
) -> dict[str, Any]:
    return management.driver_vendor_methods(s.rt, r.hardware_type)


@handles(c.DriverVendorPassthru)
def _driver_vendor_passthru(
    s: ConductorService, r: c.DriverVendorPassthru, ctx: RequestContext
) -> Any:
    return management.driver_vendor_passthru(
        s.rt, r.hardware_type, method=r.method, http_method=r.http_method, args=r.args
    )


# ---- the service -------------------------------------------------------------------


@handles(c.IsAcceptingWork)
def _is_accepting_work(s: ConductorService, r: c.IsAcceptingWork, ctx: RequestContext) -> bool:
    return s.is_accepting_work()
