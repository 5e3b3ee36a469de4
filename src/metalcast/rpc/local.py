"""The in-process conductor client of the all-in-one server: direct calls, no network.

It adapts :class:`metalcast.conductor.service.ConductorService` to the
:class:`metalcast.rpc.client.ConductorClient` protocol (the conductor does not import
``rpc``, so the wire types are built here).
"""

from __future__ import annotations

from typing import Any

from metalcast.conductor.flows import ProvisionOptions
from metalcast.conductor.service import ConductorService
from metalcast.context import RequestContext
from metalcast.db.models import (
    Allocation,
    JSONDict,
    Node,
    Port,
    Portgroup,
    VolumeConnector,
    VolumeTarget,
)
from metalcast.reports import AgentReport
from metalcast.rpc.client import (
    ConductorClient,
    ConsoleInfo,
    HardwareTypeInfo,
    InterfaceValidation,
    ProvisionRequest,
)


class LocalConductorClient:
    """A :class:`ConductorClient` calling one in-process :class:`ConductorService`."""

    def __init__(self, service: ConductorService) -> None:
        self.service = service

    # ---- nodes ---------------------------------------------------------------
    def create_node(self, values: JSONDict, *, context: RequestContext) -> Node:
        return self.service.create_node(values, context=context)

    def update_node(
        self,
        node_id: int,
        values: JSONDict,
        *,
        context: RequestContext,
        reset_interfaces: bool = False,
    ) -> Node:
        return self.service.update_node(
            node_id, values, context=context, reset_interfaces=reset_interfaces
        )

    def destroy_node(self, node_id: int, *, context: RequestContext) -> None:
        self.service.destroy_node(node_id, context=context)

    def change_provision_state(
        self, node_id: int, request: ProvisionRequest, *, context: RequestContext
    ) -> None:
        options = ProvisionOptions(
            configdrive=request.configdrive,
            clean_steps=request.clean_steps,
            deploy_steps=request.deploy_steps,
            service_steps=request.service_steps,
            rescue_password=request.rescue_password,
            disable_ramdisk=request.disable_ramdisk,
        )
        self.service.change_provision_state(node_id, request.verb, options, context=context)

    def change_power_state(
        self, node_id: int, target: str, *, timeout: float | None, context: RequestContext
    ) -> None:
        self.service.change_power_state(node_id, target, timeout=timeout, context=context)

    def set_maintenance(
        self, node_id: int, enabled: bool, *, reason: str | None, context: RequestContext
    ) -> None:
        self.service.set_maintenance(node_id, enabled, reason=reason, context=context)

    def validate(self, node_id: int, *, context: RequestContext) -> dict[str, InterfaceValidation]:
        results = self.service.validate(node_id, context=context)
        return {
            name: InterfaceValidation(result=result, reason=reason)
            for name, (result, reason) in results.items()
        }

    # ---- management -----------------------------------------------------------
    def get_boot_device(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        return self.service.get_boot_device(node_id, context=context)

    def set_boot_device(
        self, node_id: int, device: str, *, persistent: bool, context: RequestContext
    ) -> None:
        self.service.set_boot_device(node_id, device, persistent=persistent, context=context)

    def get_supported_boot_devices(self, node_id: int, *, context: RequestContext) -> list[str]:
        return self.service.get_supported_boot_devices(node_id, context=context)

    def inject_nmi(self, node_id: int, *, context: RequestContext) -> None:
        self.service.inject_nmi(node_id, context=context)

    def get_sensors_data(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        return self.service.get_sensors_data(node_id, context=context)

    # ---- console, RAID -------------------------------------------------------------
    def get_console(self, node_id: int, *, context: RequestContext) -> ConsoleInfo:
        enabled, info = self.service.get_console(node_id, context=context)
        return ConsoleInfo(enabled=enabled, info=info)

    def set_console_mode(self, node_id: int, enabled: bool, *, context: RequestContext) -> None:
        self.service.set_console_mode(node_id, enabled, context=context)

    def set_target_raid_config(
        self, node_id: int, config: JSONDict, *, context: RequestContext
    ) -> None:
        self.service.set_target_raid_config(node_id, config, context=context)

    # ---- traits, vifs, vendor ---------------------------------------------------
    def set_traits(
        self, node_id: int, traits: list[str], *, replace: bool, context: RequestContext
    ) -> None:
        self.service.set_traits(node_id, traits, replace=replace, context=context)

    def remove_traits(
        self, node_id: int, traits: list[str] | None, *, context: RequestContext
    ) -> None:
        self.service.remove_traits(node_id, traits, context=context)

    def vif_list(self, node_id: int, *, context: RequestContext) -> list[dict[str, Any]]:
        return self.service.vif_list(node_id, context=context)

    def vif_attach(self, node_id: int, vif: JSONDict, *, context: RequestContext) -> None:
        self.service.vif_attach(node_id, vif, context=context)

    def vif_detach(self, node_id: int, vif_id: str, *, context: RequestContext) -> None:
        self.service.vif_detach(node_id, vif_id, context=context)

    def vendor_methods(self, node_id: int, *, context: RequestContext) -> dict[str, Any]:
        return self.service.vendor_methods(node_id, context=context)

    def vendor_passthru(
        self, node_id: int, method: str, args: JSONDict, *, context: RequestContext
    ) -> Any:
        return self.service.vendor_passthru(node_id, method, args, context=context)

    # ---- the ramdisk agent ---------------------------------------------------------
    def agent_lookup(self, node_id: int, *, context: RequestContext) -> str:
        return self.service.agent_lookup(node_id, context=context)

    def agent_heartbeat(
        self, node_id: int, report: AgentReport, *, context: RequestContext
    ) -> dict[str, Any]:
        return self.service.agent_heartbeat(node_id, report, context=context)

    # ---- ports and portgroups ----------------------------------------------------
    def create_port(self, values: JSONDict, *, context: RequestContext) -> Port:
        return self.service.create_port(values, context=context)

    def update_port(self, port_id: int, values: JSONDict, *, context: RequestContext) -> Port:
        return self.service.update_port(port_id, values, context=context)

    def destroy_port(self, port_id: int, *, context: RequestContext) -> None:
        self.service.destroy_port(port_id, context=context)

    def create_portgroup(self, values: JSONDict, *, context: RequestContext) -> Portgroup:
        return self.service.create_portgroup(values, context=context)

    def update_portgroup(
        self, portgroup_id: int, values: JSONDict, *, context: RequestContext
    ) -> Portgroup:
        return self.service.update_portgroup(portgroup_id, values, context=context)

    def destroy_portgroup(self, portgroup_id: int, *, context: RequestContext) -> None:
        self.service.destroy_portgroup(portgroup_id, context=context)

    # ---- volume connectors and targets ------------------------------------------
    def create_volume_connector(
        self, values: JSONDict, *, context: RequestContext
    ) -> VolumeConnector:
        return self.service.create_volume_connector(values, context=context)

    def update_volume_connector(
        self, connector_id: int, values: JSONDict, *, context: RequestContext
    ) -> VolumeConnector:
        return self.service.update_volume_connector(connector_id, values, context=context)

    def destroy_volume_connector(self, connector_id: int, *, context: RequestContext) -> None:
        self.service.destroy_volume_connector(connector_id, context=context)

    def create_volume_target(self, values: JSONDict, *, context: RequestContext) -> VolumeTarget:
        return self.service.create_volume_target(values, context=context)

    def update_volume_target(
        self, target_id: int, values: JSONDict, *, context: RequestContext
    ) -> VolumeTarget:
        return self.service.update_volume_target(target_id, values, context=context)

    def destroy_volume_target(self, target_id: int, *, context: RequestContext) -> None:
        self.service.destroy_volume_target(target_id, context=context)

    # ---- allocations --------------------------------------------------------------
    def create_allocation(
        self, values: JSONDict, *, node_id: int | None, context: RequestContext
    ) -> Allocation:
        return self.service.create_allocation(values, node_id=node_id, context=context)

    def destroy_allocation(self, allocation_id: int, *, context: RequestContext) -> None:
        self.service.destroy_allocation(allocation_id, context=context)

    # ---- drivers ----------------------------------------------------------------
    def list_hardware_types(self) -> list[HardwareTypeInfo]:
        return [
            HardwareTypeInfo(name=hw.name, hosts=hw.hosts, interfaces=hw.interfaces)
            for hw in self.service.list_hardware_types()
        ]

    def driver_properties(self, hardware_type: str) -> dict[str, str]:
        return self.service.driver_properties(hardware_type)

    def raid_logical_disk_properties(self, hardware_type: str) -> dict[str, str]:
        return self.service.raid_logical_disk_properties(hardware_type)

    def driver_vendor_methods(self, hardware_type: str) -> dict[str, Any]:
        return self.service.driver_vendor_methods(hardware_type)

    def driver_vendor_passthru(
        self, hardware_type: str, method: str, *, args: JSONDict, http_method: str
    ) -> Any:
        return self.service.driver_vendor_passthru(
            hardware_type, method, args=args, http_method=http_method
        )

    # ---- the service ----------------------------------------------------------------
    def is_accepting_work(self) -> bool:
        return self.service.is_accepting_work()


#: mypy proves here that LocalConductorClient satisfies the ConductorClient protocol
_check: type[ConductorClient] = LocalConductorClient
