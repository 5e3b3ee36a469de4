"""Synchronous driver calls: boot device, NMI, sensors, indicators, vendor passthru (on a node or
on a hardware type), validation, and what the conductor tells of its hardware types.

Reads run under a shared task, changes under the exclusive lock.

Errors::

    InvalidInput     (400) unsupported boot device, unknown vendor method
    NotFound         (404) no such node or hardware type
    NodeLocked       (409) another task holds the node's lock
    OperationFailed  (500) the driver call failed
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from metalcast.calls import HardwareTypeInfo
from metalcast.conductor.interfaces import (
    OperationFailed,
    call,
    context_for,
    default_interface,
    interface_of,
)
from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask, acquire
from metalcast.db import repository as repo
from metalcast.drivers.base import (
    INTERFACE_CLASSES,
    Indicator,
    ManagementInterface,
    VendorInterface,
)
from metalcast.errors import DriverError, InvalidInput, MetalcastError, NotFound
from metalcast.interfaces import INTERFACE_NAMES


def get_boot_device(rt: Runtime, node_id: int, *, user: str) -> dict[str, Any]:
    """``{"boot_device": ..., "persistent": ...}`` as the BMC reports them."""
    task = acquire(rt, node_id, user=user, purpose="get boot device", shared=True)
    device, persistent = call(
        task, ManagementInterface, "get boot device", lambda i, ctx: i.get_boot_device(ctx)
    )
    return {"boot_device": device, "persistent": persistent}


def get_supported_boot_devices(rt: Runtime, node_id: int, *, user: str) -> list[str]:
    task = acquire(rt, node_id, user=user, purpose="boot devices", shared=True)
    return _supported(task)


def _supported(task: NodeTask) -> list[str]:
    return call(
        task,
        ManagementInterface,
        "list boot devices",
        lambda i, ctx: i.get_supported_boot_devices(ctx),
    )


def set_boot_device(rt: Runtime, node_id: int, *, device: str, persistent: bool, user: str) -> None:
    """Make the node boot from ``device``.

    Raises:
        InvalidInput: the node does not support ``device``.
    """
    with acquire(rt, node_id, user=user, purpose="set boot device") as task:
        supported = _supported(task)
        if device not in supported:
            raise InvalidInput(
                f"Invalid boot device {device!r} for node {task.uuid}; "
                f"supported: {', '.join(supported)}."
            )
        call(
            task,
            ManagementInterface,
            f"set boot device to '{device}'",
            lambda i, ctx: i.set_boot_device(ctx, device, persistent=persistent),
        )


def inject_nmi(rt: Runtime, node_id: int, *, user: str) -> None:
    with acquire(rt, node_id, user=user, purpose="inject nmi") as task:
        call(task, ManagementInterface, "inject NMI", lambda i, ctx: i.inject_nmi(ctx))


def get_virtual_media(rt: Runtime, node_id: int, *, user: str) -> list[dict[str, Any]]:
    """The node's virtual CDs and DVDs.  Raises OperationFailed (400 when the
    management interface has none)."""
    task = acquire(rt, node_id, user=user, purpose="get virtual media", shared=True)
    return call(task, ManagementInterface, "get virtual media", lambda i, c: i.get_virtual_media(c))


def attach_virtual_media(
    rt: Runtime, node_id: int, *, device_type: str, image_url: str, user: str
) -> None:
    """Insert ``image_url`` into the node's virtual ``device_type``.  Raises
    OperationFailed."""
    with acquire(rt, node_id, user=user, purpose="attach virtual media") as task:
        call(
            task,
            ManagementInterface,
            "attach virtual media",
            lambda i, c: i.attach_virtual_media(c, device_type, image_url),
        )


def detach_virtual_media(
    rt: Runtime, node_id: int, *, device_types: tuple[str, ...], user: str
) -> None:
    """Eject the node's virtual ``device_types`` (empty: all).  Raises OperationFailed."""
    with acquire(rt, node_id, user=user, purpose="detach virtual media") as task:
        call(
            task,
            ManagementInterface,
            "detach virtual media",
            lambda i, c: i.detach_virtual_media(c, device_types),
        )


def list_indicators(rt: Runtime, node_id: int, *, user: str) -> dict[str, dict[str, Any]]:
    """The node's indicators (Ironic 1.63): component -> name -> ``{"readonly",
    "states"}``.  Raises OperationFailed (400 when the interface has none)."""
    task = acquire(rt, node_id, user=user, purpose="list indicators", shared=True)
    return {
        component: {
            name: {"readonly": spec.readonly, "states": list(spec.states)}
            for name, spec in names.items()
        }
        for component, names in _indicators(task).items()
    }


def _indicators(task: NodeTask) -> dict[str, dict[str, Indicator]]:
    return call(
        task,
        ManagementInterface,
        "list indicators",
        lambda i, ctx: i.get_supported_indicators(ctx),
    )


def _indicator(task: NodeTask, component: str, name: str) -> Indicator:
    spec = _indicators(task).get(component, {}).get(name)
    if spec is None:
        raise InvalidInput(
            f"Node {task.uuid} has no indicator {name}@{component}; list them with GET "
            f"/v1/nodes/{task.uuid}/management/indicators."
        )
    return spec


def get_indicator_state(rt: Runtime, node_id: int, *, component: str, name: str, user: str) -> str:
    """One indicator's state.  Raises InvalidInput (no such indicator),
    OperationFailed."""
    task = acquire(rt, node_id, user=user, purpose="get indicator state", shared=True)
    _indicator(task, component, name)
    return call(
        task,
        ManagementInterface,
        "get indicator state",
        lambda i, ctx: i.get_indicator_state(ctx, component, name),
    )


def set_indicator_state(
    rt: Runtime, node_id: int, *, component: str, name: str, state: str, user: str
) -> None:
    """Set one indicator.  Raises InvalidInput (no such indicator, a read-only one,
    a state it does not take), OperationFailed, NodeLocked."""
    with acquire(rt, node_id, user=user, purpose="set indicator state") as task:
        spec = _indicator(task, component, name)
        if spec.readonly:
            raise InvalidInput(f"Indicator {name}@{component} of node {task.uuid} is read-only.")
        if state not in spec.states:
            raise InvalidInput(
                f"Indicator {name}@{component} cannot be {state!r}; it can be "
                f"{', '.join(spec.states)}."
            )
        call(
            task,
            ManagementInterface,
            "set indicator state",
            lambda i, ctx: i.set_indicator_state(ctx, component, name, state),
        )


def get_sensors_data(rt: Runtime, node_id: int, *, user: str) -> dict[str, Any]:
    task = acquire(rt, node_id, user=user, purpose="sensors", shared=True)
    return call(task, ManagementInterface, "read sensors", lambda i, ctx: i.get_sensors_data(ctx))


# ------------------------------------------------------------------------- vendor


def vendor_methods(rt: Runtime, node_id: int, *, user: str) -> dict[str, Any]:
    """The node's vendor passthru methods, described as Ironic does."""
    task = acquire(rt, node_id, user=user, purpose="vendor methods", shared=True)
    iface = interface_of(rt, task.node, cls=VendorInterface)
    return {
        name: {
            "async": False,
            "attach": False,
            "description": description,
            "http_methods": ["POST"],
            "require_exclusive_lock": True,
        }
        for name, description in iface.methods().items()
    }


def vendor_passthru(
    rt: Runtime, node_id: int, *, method: str, args: dict[str, Any], user: str
) -> Any:
    """Call vendor method ``method`` under the node's lock.

    Raises:
        InvalidInput: the node's vendor interface has no such method.
    """
    with acquire(rt, node_id, user=user, purpose=f"vendor {method}") as task:
        iface = interface_of(rt, task.node, cls=VendorInterface)
        if method not in iface.methods():
            known = ", ".join(sorted(iface.methods())) or "none"
            raise InvalidInput(
                f"Unsupported vendor passthru method {method!r} for node {task.uuid}; "
                f"methods: {known}."
            )
        return call(
            task,
            VendorInterface,
            f"run vendor method '{method}'",
            lambda i, ctx: i.passthru(ctx, method, args),
        )


def driver_vendor_methods(rt: Runtime, hardware_type: str) -> dict[str, Any]:
    """The hardware type's own vendor passthru methods (those of its default vendor
    interface, about no node), described as Ironic does.

    Raises:
        NotFound: no such hardware type is enabled.
    """
    vendor = default_interface(rt, hardware_type, cls=VendorInterface)
    return {
        name: {
            "async": False,
            "attach": False,
            "description": spec.description,
            "http_methods": list(spec.http_methods),
        }
        for name, spec in vendor.driver_methods().items()
    }


def driver_vendor_passthru(
    rt: Runtime, hardware_type: str, *, method: str, http_method: str, args: dict[str, Any]
) -> Any:
    """Call the hardware type's vendor method ``method`` (no node, so no lock).

    Raises:
        NotFound: no such hardware type is enabled.
        InvalidInput: no such method, one ``http_method`` does not call, bad arguments.
        OperationFailed: the method failed.
    """
    vendor = default_interface(rt, hardware_type, cls=VendorInterface)
    spec = vendor.driver_methods().get(method)
    if spec is None:
        known = ", ".join(sorted(vendor.driver_methods())) or "none"
        raise InvalidInput(
            f"Unsupported vendor passthru method {method!r} for driver {hardware_type}; "
            f"methods: {known}."
        )
    if http_method not in spec.http_methods:
        raise InvalidInput(
            f"The vendor method {method!r} of driver {hardware_type} does not support HTTP "
            f"{http_method}; use {', '.join(spec.http_methods)}."
        )
    try:
        return vendor.driver_passthru(method, args)
    except DriverError as exc:
        raise OperationFailed(
            "vendor", vendor.name, f"run driver vendor method '{method}'", exc.message
        ) from exc


# --------------------------------------------------------------------- validation


def validate(rt: Runtime, node_id: int, *, user: str) -> dict[str, tuple[bool | None, str | None]]:
    """Per interface: ``(True, None)``, ``(False, what is missing)``, or
    ``(None, why not checked)`` when the node has no implementation for it."""
    task = acquire(rt, node_id, user=user, purpose="validate", shared=True)
    return {name: _validate_one(task, name) for name in INTERFACE_NAMES}


def _validate_one(task: NodeTask, name: str) -> tuple[bool | None, str | None]:
    if task.node.interface(name) is None:
        return None, f"not supported: node has no {name} interface"
    try:
        iface = interface_of(task.rt, task.node, cls=INTERFACE_CLASSES[name])
        iface.validate(context_for(task))
    except OperationFailed as exc:
        return False, exc.cause
    except (DriverError, InvalidInput) as exc:
        return False, exc.message
    except MetalcastError as exc:
        return False, exc.message
    return True, None


# ------------------------------------------------------------------ hardware types


def list_hardware_types(rt: Runtime) -> list[HardwareTypeInfo]:
    """The enabled hardware types with the online conductors that serve them."""
    horizon = repo.utcnow() - timedelta(seconds=rt.settings.heartbeat_timeout)
    with rt.db.read() as conn:
        alive = [
            c
            for c in repo.list_conductors(conn)
            if c.online and (c.updated_at or c.created_at) >= horizon
        ]
    return [
        HardwareTypeInfo(
            name=hw.name,
            hosts=sorted(c.hostname for c in alive if hw.name in c.hardware_types),
            interfaces={name: hw.names(name) for name in INTERFACE_NAMES},
        )
        for hw in rt.registry.hardware_types()
    ]


def driver_properties(rt: Runtime, hardware_type: str) -> dict[str, str]:
    """The ``driver_info`` keys of the type's default interfaces, described.

    Raises:
        NotFound: no such hardware type is enabled.
    """
    try:
        return rt.registry.properties(hardware_type)
    except InvalidInput as exc:
        raise NotFound(f"Driver {hardware_type} could not be found. {exc.message}") from exc
