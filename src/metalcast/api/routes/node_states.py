"""/v1/nodes/{node}/states (power, provision, console, RAID), maintenance, validate and
management: acting on a node."""

from __future__ import annotations

import dataclasses
import string
from typing import Any

from starlette.routing import Route

from metalcast.api import image_sources, lookup, step_sets
from metalcast.api.endpoint import Call, Reply, endpoint
from metalcast.api.operations import (
    DATE_TIME,
    Named,
    Operation,
    Param,
    accepted,
    array,
    body,
    boolean,
    no_content,
    nullable,
    obj,
    since,
)
from metalcast.api.operations import string as text
from metalcast.api.params import parse_bool
from metalcast.api.routes import node_console, runbooks
from metalcast.api.schema import Field, check_choice, describe, validate_body
from metalcast.api.versions import FEATURES, Version, allows, shows
from metalcast.api.views.common import iso
from metalcast.api.views.nodes import provision_state
from metalcast.calls import (
    ChangeBootMode,
    ChangePowerState,
    ChangeProvisionState,
    ChangeSecureBoot,
    GetBootDevice,
    GetConsole,
    GetSupportedBootDevices,
    InjectNmi,
    ProvisionRequest,
    SetBootDevice,
    SetConsoleMode,
    SetMaintenance,
    SetTargetRaidConfig,
    Validate,
)
from metalcast.db.models import Node, NodeBrief
from metalcast.errors import InvalidInput, NotAcceptable, NotFound
from metalcast.secrecy import mask, scrub_text
from metalcast.states import VERBS, PowerTarget, ProvisionState, advance

#: verb -> the feature that introduced it
_VERB_FEATURES: dict[str, str] = {
    "manage": "manageable",
    "provide": "manageable",
    "inspect": "inspect",
    "abort": "abort",
    "clean": "manual_clean",
    "adopt": "adopt",
    "rescue": "rescue",
    "unrescue": "rescue",
    "service": "service",
    "unhold": "unhold",
    "deploy": "deploy_verbs",
    "undeploy": "deploy_verbs",
}
_SOFT = frozenset({PowerTarget.SOFT_OFF, PowerTarget.SOFT_REBOOT})


def _load(call: Call, action: str) -> Node:
    with call.deps.db.read() as conn:
        return lookup.node(conn, call, ident=call.args["node"], action=action)


def _accepted(call: Call, node: Node | NodeBrief) -> Reply:
    return Reply(202, headers={"Location": call.url("v1", "nodes", node.uuid, "states")})


#: the columns GET .../states shows
_STATES = (
    "console_enabled",
    "last_error",
    "power_state",
    "provision_state",
    "provision_updated_at",
    "target_power_state",
    "target_provision_state",
    "raid_config",
    "target_raid_config",
    "boot_mode",
    "secure_boot",
)
_STATE = nullable(text())
STATES = Named(
    "NodeStates",
    obj(
        {
            "console_enabled": boolean(),
            "last_error": nullable(text()),
            "power_state": _STATE,
            "provision_state": _STATE,
            "provision_updated_at": nullable(DATE_TIME),
            "target_power_state": _STATE,
            "target_provision_state": _STATE,
            "raid_config": since(nullable(obj()), "raid_config"),
            "target_raid_config": since(nullable(obj()), "raid_config"),
            "boot_mode": since(nullable(text()), "boot_mode"),
            "secure_boot": since(nullable(boolean()), "boot_mode"),
        },
        required=(
            "console_enabled",
            "last_error",
            "power_state",
            "provision_state",
            "provision_updated_at",
            "target_power_state",
            "target_provision_state",
        ),
    ),
)


@endpoint(
    "baremetal:node:get_states",
    doc=Operation("Show a node's power and provision states", answers={200: STATES}),
)
def get_states(call: Call) -> object:
    with call.deps.db.read() as conn:
        node = lookup.node_columns(
            conn, call, ident=call.args["node"], action="baremetal:node:get_states", columns=_STATES
        )
    doc: dict[str, Any] = {
        "console_enabled": node["console_enabled"],
        "last_error": scrub_text(node["last_error"]) if node["last_error"] else None,
        "power_state": node["power_state"],
        "provision_state": provision_state(node["provision_state"], call.version),
        "provision_updated_at": iso(node["provision_updated_at"]),
        "target_power_state": node["target_power_state"],
        "target_provision_state": node["target_provision_state"],
    }
    if shows("raid_config", call.version):
        doc["raid_config"] = mask(node["raid_config"])
        doc["target_raid_config"] = mask(node["target_raid_config"])
    if shows("boot_mode", call.version):
        doc["boot_mode"] = node["boot_mode"]
        doc["secure_boot"] = node["secure_boot"]
    return doc


# ----------------------------------------------------------------------------- power

#: the longest a power action may be given to complete, in seconds
MAX_POWER_TIMEOUT = 3600
_POWER_BODY = {
    "target": Field(nullable=False),
    "timeout": Field("integer", feature="soft_power", minimum=1, maximum=MAX_POWER_TIMEOUT),
}
#: the targets :func:`_power_target` takes
_POWER_DOC = body(
    {**_POWER_BODY, "target": Field(nullable=False, check=check_choice(list(PowerTarget)))},
    required=("target",),
    name="PowerRequest",
)


@endpoint(
    "baremetal:node:set_power_state",
    body=True,
    doc=accepted(
        "Power a node on, off or reboot it",
        body=_POWER_DOC,
        examples=({"target": "power on"}, {"target": "power off", "timeout": 60}),
        description="Soft targets need 1.27 (406 before). Location: the node's states.",
    ),
)
def set_power_state(call: Call) -> object:
    body = validate_body(
        call.body,
        _POWER_BODY,
        what="power state request",
        version=call.version,
        required=("target",),
    )
    target = _power_target(body["target"], call.version)
    timeout = body.get("timeout")  # 1 to MAX_POWER_TIMEOUT seconds (its Field says)
    node = _load(call, "baremetal:node:set_power_state")
    call.deps.conductor.call(
        ChangePowerState(node.id, target, timeout=timeout), context=call.context
    )
    return _accepted(call, node)


def _power_target(value: str, version: Version) -> str:
    try:
        target = PowerTarget(value)
    except ValueError:
        raise InvalidInput(
            f"Invalid power state target '{value}'. Acceptable values are: "
            f"{', '.join(t.value for t in PowerTarget)}."
        ) from None
    if target in _SOFT and not allows("soft_power", version):
        raise NotAcceptable(f"Power target '{value}' requires API version 1.27 or later.")
    return target.value


# ------------------------------------------------------------ boot mode, secure boot

_BOOT_MODE_DOC = body(
    {"target": Field(nullable=False, check=check_choice(["uefi", "bios"]))},
    required=("target",),
    name="BootModeRequest",
)
_SECURE_BOOT_DOC = body(
    {"target": Field("boolean", nullable=False)},
    required=("target",),
    name="SecureBootRequest",
)


def _require_boot_mode_endpoints(call: Call) -> None:
    """Below 1.76 the two endpoints do not exist: 404, as in Ironic."""
    if not allows("change_boot_mode", call.version):
        raise NotFound("This endpoint is supported starting with the API version 1.76.")


@endpoint(
    "baremetal:node:set_boot_mode",
    body=True,
    doc=accepted(
        "Set a node's boot mode through its BMC",
        body=_BOOT_MODE_DOC,
        examples=({"target": "uefi"},),
        description="409 while the node is being worked on. Location: the node's "
        "states, whose boot_mode shows the outcome (or last_error).",
        feature="change_boot_mode",
    ),
)
def set_boot_mode(call: Call) -> object:
    _require_boot_mode_endpoints(call)
    body = validate_body(
        call.body,
        {"target": Field(nullable=False)},
        what="boot mode request",
        version=call.version,
        required=("target",),
    )
    node = _load(call, "baremetal:node:set_boot_mode")
    call.deps.conductor.call(ChangeBootMode(node.id, body["target"]), context=call.context)
    return _accepted(call, node)


@endpoint(
    "baremetal:node:set_secure_boot",
    body=True,
    doc=accepted(
        "Turn a node's UEFI secure boot on or off through its BMC",
        body=_SECURE_BOOT_DOC,
        examples=({"target": True},),
        description="409 while the node is being worked on. Location: the node's "
        "states, whose secure_boot shows the outcome (or last_error).",
        feature="change_boot_mode",
    ),
)
def set_secure_boot(call: Call) -> object:
    _require_boot_mode_endpoints(call)
    body = validate_body(
        call.body,
        {"target": Field("any", nullable=False)},
        what="secure boot request",
        version=call.version,
        required=("target",),
    )
    target = body["target"]
    if isinstance(target, str):
        target = parse_bool("target", target)
    if not isinstance(target, bool):
        raise InvalidInput(
            f"Invalid secure_boot {target!r} requested for node. Allowed secure_boot "
            "states are: true, false."
        )
    node = _load(call, "baremetal:node:set_secure_boot")
    call.deps.conductor.call(ChangeSecureBoot(node.id, target), context=call.context)
    return _accepted(call, node)


# ------------------------------------------------------------------------- provision

_STEPS = Field("list", max_length=None)
_PROVISION_BODY = {
    "target": Field(nullable=False),
    "configdrive": Field("any", max_length=None),
    "clean_steps": _STEPS,
    "deploy_steps": Field("list", max_length=None, feature="deploy_steps"),
    "service_steps": Field("list", max_length=None, feature="service"),
    "rescue_password": Field(feature="rescue"),
    "disable_ramdisk": Field("boolean", feature="disable_ramdisk"),
    "runbook": Field(feature="runbooks"),
}
#: argument -> the verbs it goes with
_ARGUMENT_VERBS: dict[str, frozenset[str]] = {
    "configdrive": frozenset({"active", "deploy", "rebuild"}),
    "deploy_steps": frozenset({"active", "deploy", "rebuild"}),
    "clean_steps": frozenset({"clean"}),
    "service_steps": frozenset({"service"}),
    "rescue_password": frozenset({"rescue"}),
    # servicing without the ramdisk: from 1.108 (_check_service_ramdisk)
    "disable_ramdisk": frozenset({"clean", "service"}),
    "runbook": frozenset({"clean", "service"}),
}
#: the step lists a runbook gives instead
_RUNBOOK_STEPS = frozenset({"clean_steps", "service_steps"})
_REQUIRED_ARGUMENT = {
    "clean": "clean_steps",
    "service": "service_steps",
    "rescue": "rescue_password",
}


_PROVISION_DOC = body(
    {**_PROVISION_BODY, "target": Field(nullable=False, check=check_choice(VERBS))},
    required=("target",),
    name="ProvisionRequest",
)


@endpoint(
    "baremetal:node:set_provision_state",
    body=True,
    doc=accepted(
        "Move a node through its provision states (deploy, clean, manage, ...)",
        body=_PROVISION_DOC,
        examples=({"target": "provide"}, {"target": "manage"}, {"target": "inspect"}),
        description="Verbs newer than the requested version are 406; an argument the "
        "verb does not take, or a transition the state table refuses, is 400.",
    ),
)
def set_provision_state(call: Call) -> object:
    request = provision_request(call.body, call.version)
    with call.deps.db.read() as conn:
        node = lookup.node_brief(
            conn, call, ident=call.args["node"], action="baremetal:node:set_provision_state"
        )
    if request.runbook is not None:
        request = _with_runbook(call, node, request)
    # running steps of one's own choosing is a right of its own (Ironic); a runbook's
    # are checked by baremetal:runbook:use instead
    for steps, rule in (
        (request.clean_steps, "baremetal:node:set_provision_state:clean_steps"),
        (request.service_steps, "baremetal:node:set_provision_state:service_steps"),
    ):
        if steps and request.runbook is None:
            call.enforce(rule, lookup.target(node))
    image_sources.check_configdrive(call.context, call.deps.settings, request.configdrive)
    state = ProvisionState(node.provision_state)
    _check_abort_inspect(request.verb, state, call.version)
    # refuse an impossible transition before anything is written
    advance(state, VERBS[request.verb])
    call.deps.conductor.call(ChangeProvisionState(node.id, request), context=call.context)
    return _accepted(call, node)


def _with_runbook(
    call: Call, node: Node | NodeBrief, request: ProvisionRequest
) -> ProvisionRequest:
    """``request`` with the runbook's steps as its clean or service steps (and its
    ``disable_ramdisk``).  Raises as :func:`runbooks.steps_for_node`."""
    assert request.runbook is not None
    runbook, steps = runbooks.steps_for_node(call, node, request.runbook)
    clean = request.verb == "clean"
    return dataclasses.replace(
        request,
        clean_steps=steps if clean else None,
        service_steps=None if clean else steps,
        disable_ramdisk=runbook.disable_ramdisk,
        runbook=f"{runbook.name} ({runbook.uuid})",
    )


#: wait state -> the feature from which an abort may end it, and what it aborts
_ABORT_FEATURES = {
    ProvisionState.INSPECTWAIT: ("abort_inspect", "inspection"),
    ProvisionState.DEPLOYWAIT: ("deploy_wait_abort", "a deployment waiting for its agent"),
}


def _check_abort_inspect(verb: str, state: ProvisionState, version: Version) -> None:
    """An abort of ``inspect wait`` before 1.41 or of ``wait call-back`` before 1.110
    is 406, as in Ironic."""
    if verb != "abort" or state not in _ABORT_FEATURES:
        return
    feature, what = _ABORT_FEATURES[state]
    if not allows(feature, version):
        raise NotAcceptable(
            f"Aborting {what} requires API version {FEATURES[feature]} or later; this "
            f"request asked for {version}."
        )


def provision_request(body: object, version: Version) -> ProvisionRequest:
    """Validate the body of PUT .../states/provision.

    Raises:
        InvalidInput: unknown verb, an argument the verb does not take, a missing one.
        NotAcceptable: a verb or argument newer than ``version``.
    """
    values = validate_body(
        body,
        _PROVISION_BODY,
        what="provision state request",
        version=version,
        required=("target",),
    )
    verb = values["target"]
    if verb not in VERBS:
        raise InvalidInput(
            f'The requested action "{verb}" could not be understood. Acceptable values are: '
            f"{', '.join(sorted(VERBS))}."
        )
    feature = _VERB_FEATURES.get(verb)
    if feature is not None and not allows(feature, version):
        raise NotAcceptable(f'The action "{verb}" is not supported in API version {version}.')
    _check_arguments(verb, values)
    if (
        verb == "service"
        and values.get("disable_ramdisk") is not None
        and not allows("service_disable_ramdisk", version)
    ):
        raise NotAcceptable("disable_ramdisk is not acceptable in this API version")
    if values.get("deploy_steps"):
        # their shape here (Ironic's schema); the conductor checks them against the
        # node's interfaces
        step_sets.DEPLOY_STEPS.check_steps(values["deploy_steps"])
    _check_rebuild_configdrive(verb, values, version)
    if values.get("configdrive"):
        check_configdrive(values["configdrive"], version)
    return ProvisionRequest(
        verb=verb,
        configdrive=values.get("configdrive"),
        clean_steps=values.get("clean_steps"),
        deploy_steps=values.get("deploy_steps"),
        service_steps=values.get("service_steps"),
        rescue_password=values.get("rescue_password"),
        disable_ramdisk=values.get("disable_ramdisk"),
        runbook=values.get("runbook"),
    )


def _check_rebuild_configdrive(verb: str, values: dict[str, Any], version: Version) -> None:
    if (
        verb == "rebuild"
        and values.get("configdrive")
        and not allows("rebuild_configdrive", version)
    ):
        raise InvalidInput(
            "Adding a config drive when rebuilding requires API version 1.35 or later; "
            f"this request asked for {version}."
        )


#: Ironic's config drive object: its keys and the JSON types each may have
_CONFIGDRIVE_KEYS: dict[str, tuple[type, ...]] = {
    "meta_data": (dict,),
    "network_data": (dict,),
    "vendor_data": (dict,),
    "user_data": (dict, list, str, type(None)),
}
#: base64's alphabet, with the whitespace encoders put between lines
_B64 = frozenset(string.ascii_letters + string.digits + "+/=\n\r\t ")


def check_configdrive(configdrive: object, version: Version) -> None:
    """Ironic's checks of a config drive: an object (1.56; ``vendor_data`` 1.59) of
    known keys and types, a URL, or base64 text.  Raises InvalidInput."""
    if isinstance(configdrive, dict):
        if not allows("configdrive_dict", version):
            raise InvalidInput(
                "Providing a JSON object for configdrive is only supported starting with API "
                "version 1.56"
            )
        if "vendor_data" in configdrive and not allows("configdrive_vendor_data", version):
            raise InvalidInput(
                "Providing vendor_data in configdrive is only supported starting with API "
                "version 1.59"
            )
        for key, value in configdrive.items():
            kinds = _CONFIGDRIVE_KEYS.get(key)
            if kinds is None or not isinstance(value, kinds):
                # the key and the type only: a config drive's contents may be secret
                raise InvalidInput(
                    f"Invalid configdrive format: {key[:40]!r} as {_json_type(value)} is not "
                    "allowed; the object may hold meta_data, network_data and vendor_data "
                    "(objects) and user_data (an object, a list or a string)."
                )
        return
    if isinstance(configdrive, str) and "://" not in configdrive and set(configdrive) - _B64:
        raise InvalidInput(
            "Invalid configdrive format: it is neither a JSON, nor a URL, nor a base64 string"
        )


def _json_type(value: object) -> str:
    """How JSON calls the type of ``value`` (an error names it, not the value)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _check_arguments(verb: str, values: dict[str, Any]) -> None:
    for name, verbs in _ARGUMENT_VERBS.items():
        if values.get(name) is not None and verb not in verbs:
            raise InvalidInput(
                f'"{name}" is only valid when setting target provision state to '
                f"{' or '.join(sorted(verbs))}, not {verb}."
            )
    required = _REQUIRED_ARGUMENT.get(verb)
    if values.get("runbook") is not None and required in _RUNBOOK_STEPS:
        if values.get(required):
            raise InvalidInput(f'Please provide either "{required}" or a runbook, but not both.')
    elif required is not None and not values.get(required):
        raise InvalidInput(
            f'A non-empty "{required}" is required when setting target provision state to {verb}.'
        )
    configdrive = values.get("configdrive")
    if configdrive is not None and not isinstance(configdrive, str | dict):
        raise InvalidInput(
            f"Invalid configdrive (a {type(configdrive).__name__}): it must be a string (a "
            "gzipped, base64-encoded ISO image or its URL) or an object."
        )


# --------------------------------------------------------------------------- console


CONSOLE = Named(
    "Console",
    obj(
        {"console_enabled": boolean(), "console_info": nullable(obj())},
        required=("console_enabled", "console_info"),
    ),
)


@endpoint(
    "baremetal:node:get_console",
    doc=Operation("Show a node's console", answers={200: CONSOLE}),
)
def get_console(call: Call) -> object:
    node = _load(call, "baremetal:node:get_console")
    console = call.deps.conductor.call(GetConsole(node.id), context=call.context)
    info = console.info
    if info is not None and info.get("type") == "websocket":
        info = node_console.websocket_url(call, node.uuid, info)
        return {"console_enabled": console.enabled, "console_info": info}
    return {"console_enabled": console.enabled, "console_info": mask(info)}


_CONSOLE_BODY = obj(
    {"enabled": {"anyOf": [boolean(), text(enum=["true", "false"])]}},
    required=("enabled",),
)


@endpoint(
    "baremetal:node:set_console_state",
    body=True,
    doc=accepted("Enable or disable a node's console", body=_CONSOLE_BODY),
)
def set_console(call: Call) -> object:
    body = validate_body(
        call.body,
        {"enabled": Field("any", nullable=False)},
        what="console request",
        version=call.version,
        required=("enabled",),
    )
    enabled = _enabled(body["enabled"])
    node = _load(call, "baremetal:node:set_console_state")
    call.deps.conductor.call(SetConsoleMode(node.id, enabled), context=call.context)
    location = call.url("v1", "nodes", node.uuid, "states", "console")
    return Reply(202, headers={"Location": location})


def _enabled(value: object) -> bool:
    """A boolean, or its string form ("true", "false", …) as Ironic accepts it."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return bool(parse_bool("enabled", value))
    raise InvalidInput(f"Invalid value for 'enabled': {describe(value)}; use true or false.")


# ------------------------------------------------------------------------------ RAID


@endpoint(
    "baremetal:node:set_raid_state",
    body=True,
    doc=no_content(
        "Set a node's target RAID configuration",
        body=obj(description='{"logical_disks": [...]}, or {} to clear it.'),
        examples=(
            {"logical_disks": [{"size_gb": 100, "raid_level": "1", "is_root_volume": True}]},
        ),
        feature="raid",
    ),
)
def set_raid_config(call: Call) -> object:
    if not allows("raid", call.version):
        raise NotAcceptable("Setting a target RAID configuration requires API version 1.12.")
    if not isinstance(call.body, dict):
        raise InvalidInput(
            "The request body must be a JSON object: the target RAID configuration, "
            '{"logical_disks": [...]}, or {} to clear it.'
        )
    node = _load(call, "baremetal:node:set_raid_state")
    call.deps.conductor.call(SetTargetRaidConfig(node.id, call.body), context=call.context)
    return Reply(204)


# ----------------------------------------------------------------------- maintenance


_MAINTENANCE_BODY = {"reason": Field(max_length=None)}


@endpoint(
    "baremetal:node:set_maintenance",
    body=True,
    doc=accepted(
        "Put a node in maintenance",
        body=body(_MAINTENANCE_BODY),
        body_required=False,
        query=(Param("reason", text(), "Why (when the body gives none)."),),
    ),
)
def set_maintenance(call: Call) -> object:
    body = validate_body(
        call.body if call.body is not None else {},
        _MAINTENANCE_BODY,
        what="maintenance request",
        version=call.version,
    )
    reason = body.get("reason") or call.query.get("reason")
    node = _load(call, "baremetal:node:set_maintenance")
    call.deps.conductor.call(SetMaintenance(node.id, True, reason=reason), context=call.context)
    return _accepted(call, node)


@endpoint("baremetal:node:clear_maintenance", doc=accepted("Take a node out of maintenance"))
def unset_maintenance(call: Call) -> object:
    node = _load(call, "baremetal:node:clear_maintenance")
    call.deps.conductor.call(SetMaintenance(node.id, False, reason=None), context=call.context)
    return _accepted(call, node)


# -------------------------------------------------------------------------- validate


VALIDATION = Named(
    "Validation",
    obj(
        additional=obj(
            {"result": nullable(boolean()), "reason": nullable(text())},
            required=("result", "reason"),
        ),
        description="Interface name -> whether it has what it needs, and why not.",
    ),
)


@endpoint(
    "baremetal:node:validate",
    doc=Operation("Validate a node's interfaces", answers={200: VALIDATION}),
)
def validate_node(call: Call) -> object:
    node = _load(call, "baremetal:node:validate")
    results = call.deps.conductor.call(Validate(node.id), context=call.context)
    return {
        name: {"result": r.result, "reason": scrub_text(r.reason) if r.reason else r.reason}
        for name, r in sorted(results.items())
    }


# ------------------------------------------------------------------------ management

_BOOT_DEVICE_BODY = {
    "boot_device": Field(nullable=False),
    "persistent": Field("boolean"),
}


BOOT_DEVICE = Named(
    "BootDevice",
    obj(
        {"boot_device": nullable(text()), "persistent": nullable(boolean())},
        required=("boot_device", "persistent"),
    ),
)


@endpoint(
    "baremetal:node:get_boot_device",
    doc=Operation("Show a node's boot device", answers={200: BOOT_DEVICE}),
)
def get_boot_device(call: Call) -> object:
    node = _load(call, "baremetal:node:get_boot_device")
    return call.deps.conductor.call(GetBootDevice(node.id), context=call.context)


@endpoint(
    "baremetal:node:set_boot_device",
    body=True,
    doc=no_content(
        "Set a node's boot device",
        body=body(_BOOT_DEVICE_BODY, required=("boot_device",), name="BootDeviceRequest"),
        examples=({"boot_device": "pxe", "persistent": False},),
    ),
)
def set_boot_device(call: Call) -> object:
    body = validate_body(
        call.body,
        _BOOT_DEVICE_BODY,
        what="boot device request",
        version=call.version,
        required=("boot_device",),
    )
    node = _load(call, "baremetal:node:set_boot_device")
    call.deps.conductor.call(
        SetBootDevice(node.id, body["boot_device"], persistent=bool(body.get("persistent"))),
        context=call.context,
    )
    return Reply(204)


@endpoint(
    "baremetal:node:get_boot_device",
    doc=Operation(
        "List the boot devices a node supports",
        answers={
            200: obj(
                {"supported_boot_devices": array(text())}, required=("supported_boot_devices",)
            )
        },
    ),
)
def get_supported_boot_devices(call: Call) -> object:
    node = _load(call, "baremetal:node:get_boot_device")
    devices = call.deps.conductor.call(GetSupportedBootDevices(node.id), context=call.context)
    return {"supported_boot_devices": devices}


@endpoint(
    "baremetal:node:inject_nmi",
    body=True,
    doc=no_content(
        "Inject a non-maskable interrupt", body=obj({}), body_required=False, feature="inject_nmi"
    ),
)
def inject_nmi(call: Call) -> object:
    if not allows("inject_nmi", call.version):
        raise NotAcceptable("Injecting an NMI requires API version 1.29 or later.")
    validate_body(
        call.body if call.body is not None else {}, {}, what="NMI request", version=call.version
    )
    node = _load(call, "baremetal:node:inject_nmi")
    call.deps.conductor.call(InjectNmi(node.id), context=call.context)
    return Reply(204)


_NODE = "/v1/nodes/{node}"
ROUTES = [
    Route(f"{_NODE}/states", get_states, methods=["GET"]),
    Route(f"{_NODE}/states/power", set_power_state, methods=["PUT"]),
    Route(f"{_NODE}/states/provision", set_provision_state, methods=["PUT"]),
    Route(f"{_NODE}/states/boot_mode", set_boot_mode, methods=["PUT"]),
    Route(f"{_NODE}/states/secure_boot", set_secure_boot, methods=["PUT"]),
    Route(f"{_NODE}/states/console", get_console, methods=["GET"]),
    # the same, where ironic-tempest-plugin's client asks (Ironic's router takes it)
    Route("/v1/nodes/states/console/{node}", get_console, methods=["GET"]),
    Route(f"{_NODE}/states/console", set_console, methods=["PUT"]),
    Route(f"{_NODE}/states/raid", set_raid_config, methods=["PUT"]),
    Route(f"{_NODE}/maintenance", set_maintenance, methods=["PUT"]),
    Route(f"{_NODE}/maintenance", unset_maintenance, methods=["DELETE"]),
    Route(f"{_NODE}/validate", validate_node, methods=["GET"]),
    Route(f"{_NODE}/management/boot_device", get_boot_device, methods=["GET"]),
    Route(f"{_NODE}/management/boot_device", set_boot_device, methods=["PUT"]),
    Route(f"{_NODE}/management/boot_device/supported", get_supported_boot_devices, methods=["GET"]),
    Route(f"{_NODE}/management/inject_nmi", inject_nmi, methods=["PUT"]),
]
