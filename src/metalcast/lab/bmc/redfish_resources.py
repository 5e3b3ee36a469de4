"""The Redfish documents of the virtual Redfish BMC, and the requests they accept.

Pure functions between :mod:`metalcast.lab.machine` and the JSON of the DMTF
Redfish schemas (ServiceRoot, ComputerSystem, Chassis with Thermal and Power, Bios,
Session): rendering a machine as a ComputerSystem in a Chassis of its own (named
like it) with its sensors, and reading a Boot patch or a ResetType back.

Errors::

    BadRequest    a request body the service cannot accept (rendered as 400)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metalcast.lab.bmc.redfish_inventory import system_fields
from metalcast.lab.machine import BootDevice, BootMode, BootOverride, Machine, Power, PowerAction

ROOT = "/redfish/v1"
SYSTEMS = f"{ROOT}/Systems"
SESSIONS = f"{ROOT}/SessionService/Sessions"
CHASSIS = f"{ROOT}/Chassis"

#: ResetType values and what they ask of the machine (None: depends on power)
RESET_ACTIONS: Mapping[str, PowerAction | None] = {
    "On": PowerAction.ON,
    "ForceOn": PowerAction.ON,
    "ForceOff": PowerAction.OFF,
    "GracefulShutdown": PowerAction.SHUTDOWN,
    "GracefulRestart": PowerAction.RESET,
    "ForceRestart": PowerAction.RESET,
    "PowerCycle": PowerAction.CYCLE,
    "Nmi": PowerAction.NMI,
    "PushPowerButton": None,
}
_TARGETS: Mapping[str, BootDevice | None] = {
    "None": None,
    "Pxe": BootDevice.PXE,
    "Hdd": BootDevice.DISK,
    "Cd": BootDevice.CDROM,
    "BiosSetup": BootDevice.BIOS,
}
_TARGET_OF = {device: name for name, device in _TARGETS.items() if device is not None}
_MODES: Mapping[str, BootMode] = {"UEFI": BootMode.UEFI, "Legacy": BootMode.LEGACY}
_MODE_OF = {mode: name for name, mode in _MODES.items()}
_ENABLED = ("Disabled", "Once", "Continuous")


class BadRequest(Exception):
    """The request body asks for something the service does not support."""


def service_root(uuid: str) -> dict[str, Any]:
    return {
        "@odata.id": f"{ROOT}/",
        "@odata.type": "#ServiceRoot.v1_5_0.ServiceRoot",
        "Id": "RootService",
        "Name": "metalcast lab Redfish service",
        "RedfishVersion": "1.11.0",
        "UUID": uuid,
        "Systems": {"@odata.id": SYSTEMS},
        "Chassis": {"@odata.id": CHASSIS},
        "SessionService": {"@odata.id": f"{ROOT}/SessionService"},
        "UpdateService": {"@odata.id": f"{ROOT}/UpdateService"},
        "Links": {"Sessions": {"@odata.id": SESSIONS}},
    }


def collection(path: str, kind: str, members: list[str]) -> dict[str, Any]:
    return {
        "@odata.id": path,
        "@odata.type": f"#{kind}Collection.{kind}Collection",
        "Name": f"{kind} Collection",
        "Members@odata.count": len(members),
        "Members": [{"@odata.id": m} for m in members],
    }


def session_service() -> dict[str, Any]:
    return {
        "@odata.id": f"{ROOT}/SessionService",
        "@odata.type": "#SessionService.v1_1_8.SessionService",
        "Id": "SessionService",
        "Name": "Session Service",
        "ServiceEnabled": True,
        "SessionTimeout": 1800,
        "Sessions": {"@odata.id": SESSIONS},
    }


def session(session_id: str, username: str) -> dict[str, Any]:
    return {
        "@odata.id": f"{SESSIONS}/{session_id}",
        "@odata.type": "#Session.v1_3_0.Session",
        "Id": session_id,
        "Name": "User Session",
        "UserName": username,
    }


#: the IndicatorLED values a client may set (Redfish's "Unknown" is only shown)
INDICATOR_LEDS = ("Lit", "Blinking", "Off")


def computer_system(machine: Machine, *, led: str = "Off") -> dict[str, Any]:
    """``machine`` as a ComputerSystem resource, its IndicatorLED ``led``."""
    path = f"{SYSTEMS}/{machine.name}"
    override = machine.boot_override()
    return {
        "@odata.id": path,
        "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
        "Id": machine.name,
        "Name": machine.name,
        "UUID": machine.uuid,
        **system_fields(path, machine.hardware),
        "SystemType": "Physical",
        "PowerState": "On" if machine.power() is Power.ON else "Off",
        "Status": {"State": "Enabled", "Health": "OK"},
        "IndicatorLED": led,
        "Boot": _boot(override),
        "Bios": {"@odata.id": f"{path}/Bios"},
        "VirtualMedia": {"@odata.id": f"{path}/VirtualMedia"},
        "Links": {"Chassis": [{"@odata.id": f"{CHASSIS}/{machine.name}"}]},
        "Actions": {
            "#ComputerSystem.Reset": {
                "target": f"{path}/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": list(RESET_ACTIONS),
            }
        },
    }


def chassis(machine: Machine, *, led: str = "Off") -> dict[str, Any]:
    """The Chassis ``machine`` is in: its own, with its Thermal and Power, its
    IndicatorLED ``led``."""
    path = f"{CHASSIS}/{machine.name}"
    return {
        "@odata.id": path,
        "@odata.type": "#Chassis.v1_10_0.Chassis",
        "Id": machine.name,
        "Name": f"{machine.name} chassis",
        "ChassisType": "RackMount",
        "PowerState": "On" if machine.power() is Power.ON else "Off",
        "IndicatorLED": led,
        "Status": {"State": "Enabled", "Health": "OK"},
        "Thermal": {"@odata.id": f"{path}/Thermal"},
        "Power": {"@odata.id": f"{path}/Power"},
        "Links": {"ComputerSystems": [{"@odata.id": f"{SYSTEMS}/{machine.name}"}]},
    }


_OK = {"State": "Enabled", "Health": "OK"}


def thermal(machine: Machine) -> dict[str, Any]:
    """The machine's temperatures and fans, as a Thermal resource."""
    sensors = machine.sensors()
    temperatures = [s for s in sensors if s.kind == "temperature"]
    fans = [s for s in sensors if s.kind == "fan"]
    return {
        "@odata.id": f"{CHASSIS}/{machine.name}/Thermal",
        "@odata.type": "#Thermal.v1_7_0.Thermal",
        "Id": "Thermal",
        "Name": "Thermal",
        "Temperatures": [
            {"MemberId": str(i), "Name": s.name, "ReadingCelsius": s.value, "Status": _OK}
            for i, s in enumerate(temperatures)
        ],
        "Fans": [
            {
                "MemberId": str(i),
                "Name": s.name,
                "Reading": round(s.value),
                "ReadingUnits": "RPM",
                "Status": _OK,
            }
            for i, s in enumerate(fans)
        ],
    }


def power(machine: Machine) -> dict[str, Any]:
    """The machine's power readings, as a Power resource (one supply per reading)."""
    supplies = [s for s in machine.sensors() if s.kind == "power"]
    return {
        "@odata.id": f"{CHASSIS}/{machine.name}/Power",
        "@odata.type": "#Power.v1_6_0.Power",
        "Id": "Power",
        "Name": "Power",
        "PowerSupplies": [
            {"MemberId": str(i), "Name": s.name, "LastPowerOutputWatts": s.value, "Status": _OK}
            for i, s in enumerate(supplies)
        ],
    }


def _boot(override: BootOverride) -> dict[str, Any]:
    enabled = "Disabled"
    if override.device is not None:
        enabled = "Continuous" if override.persistent else "Once"
    return {
        "BootSourceOverrideTarget": (
            "None" if override.device is None else _TARGET_OF[override.device]
        ),
        "BootSourceOverrideEnabled": enabled,
        "BootSourceOverrideMode": _MODE_OF[override.mode],
        "BootSourceOverrideTarget@Redfish.AllowableValues": list(_TARGETS),
        "BootSourceOverrideMode@Redfish.AllowableValues": list(_MODES),
    }


def patched_boot(current: BootOverride, patch: Mapping[str, Any]) -> BootOverride:
    """The override after applying a ComputerSystem PATCH's ``Boot`` object.

    Raises:
        BadRequest: an unknown target, enabled value or mode.
    """
    target = patch.get("BootSourceOverrideTarget")
    enabled = patch.get("BootSourceOverrideEnabled")
    mode = patch.get("BootSourceOverrideMode")
    _check(target, _TARGETS, "BootSourceOverrideTarget")
    _check(enabled, _ENABLED, "BootSourceOverrideEnabled")
    _check(mode, _MODES, "BootSourceOverrideMode")
    device = current.device if target is None else _TARGETS[target]
    persistent = current.persistent if enabled is None else enabled == "Continuous"
    if enabled == "Disabled":
        device = None
    new_mode = current.mode if mode is None else _MODES[mode]
    return BootOverride(device=device, persistent=persistent, mode=new_mode)


def _check(value: object, allowed: Mapping[str, object] | tuple[str, ...], name: str) -> None:
    if value is not None and value not in allowed:
        raise BadRequest(f"{name} {value!r} is not one of {', '.join(allowed)}")


def power_action(reset_type: object, power: Power) -> PowerAction:
    """What a ComputerSystem.Reset with ``reset_type`` asks of a machine in ``power``.

    Raises:
        BadRequest: not a ResetType this service offers.
    """
    if not isinstance(reset_type, str) or reset_type not in RESET_ACTIONS:
        raise BadRequest(f"ResetType {reset_type!r} is not one of {', '.join(RESET_ACTIONS)}")
    action = RESET_ACTIONS[reset_type]
    if action is None:  # PushPowerButton
        return PowerAction.SHUTDOWN if power is Power.ON else PowerAction.ON
    return action


def bios(machine: Machine) -> dict[str, Any]:
    path = f"{SYSTEMS}/{machine.name}/Bios"
    return {
        "@odata.id": path,
        "@odata.type": "#Bios.v1_1_0.Bios",
        "Id": "BIOS",
        "Name": "BIOS Configuration Current Settings",
        "AttributeRegistry": "BiosAttributeRegistry.v1_0_0",
        "Attributes": machine.bios_settings(),
        "@Redfish.Settings": {"SettingsObject": {"@odata.id": f"{path}/Settings"}},
    }


def bios_settings(machine: Machine, pending: Mapping[str, str]) -> dict[str, Any]:
    return {
        "@odata.id": f"{SYSTEMS}/{machine.name}/Bios/Settings",
        "@odata.type": "#Bios.v1_1_0.Bios",
        "Id": "Settings",
        "Name": "BIOS Configuration Pending Settings",
        "Attributes": dict(pending),
    }


def error(message: str, *, code: str = "Base.1.8.GeneralError") -> dict[str, Any]:
    """A Redfish error body."""
    return {"error": {"code": code, "message": message}}
