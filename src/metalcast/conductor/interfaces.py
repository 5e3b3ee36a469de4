"""Calling a node's driver interfaces: the context drivers get, and the retry policy.

The conductor decrypts the node's secrets here, right before a call (``driver_info``,
``instance_info`` but its config drive, ``properties``, the operation's arguments),
and never logs them.
A failed call becomes :class:`OperationFailed`, whose message (what ``last_error``
records) names the interface, the implementation, the operation and the driver's
own message.

Errors::

    MetalcastError
    └── OperationFailed   a driver call failed (after retries for retryable errors)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from metalcast.conductor.runtime import Runtime
from metalcast.conductor.task import NodeTask
from metalcast.db.models import Node
from metalcast.drivers.base import DriverContext, Interface, NodeSnapshot, ProgressSink
from metalcast.errors import (
    DriverError,
    InvalidInput,
    MetalcastError,
    NotFound,
    RetryableDriverError,
)
from metalcast.secrecy import SecretBox

I = TypeVar("I", bound=Interface)  # noqa: E741
R = TypeVar("R")


class OperationFailed(MetalcastError):
    """A driver call failed; the message says which interface, operation and why.

    Its ``status_code`` is 400 when the driver refused the request as invalid
    (``InvalidInput``, e.g. missing ``driver_info``), else 500.
    """

    def __init__(
        self, interface: str, impl: str | None, operation: str, cause: str, *, status: int = 500
    ) -> None:
        which = f"{interface} interface ({impl})" if impl else f"{interface} interface"
        super().__init__(f"{which} failed to {operation}: {cause}")
        self.interface = interface
        self.operation = operation
        self.cause = cause
        self.status_code = status


def interface_of(rt: Runtime, node: Node, *, cls: type[I]) -> I:
    """The implementation of ``cls``'s interface the node uses.

    Raises:
        OperationFailed: the node has no implementation for it, or an unknown one.
    """
    name = cls.interface_type
    impl = node.interface(name)
    if impl is None:
        raise OperationFailed(name, None, "load", f"node {node.uuid} has no {name} interface")
    try:
        obj = rt.registry.interface(node.driver, name, impl)
    except MetalcastError as exc:
        raise OperationFailed(name, impl, "load", exc.message) from exc
    if not isinstance(obj, cls):
        raise OperationFailed(name, impl, "load", f"{impl!r} is not a {name} interface")
    return obj


def default_interface(rt: Runtime, hardware_type: str, *, cls: type[I]) -> I:
    """The default implementation of ``cls``'s interface in ``hardware_type``.

    Raises:
        NotFound: no such hardware type is enabled.
    """
    name = cls.interface_type
    try:
        hw = rt.registry.hardware_type(hardware_type)
        obj = rt.registry.interface(hw.name, name, hw.default(name))
    except InvalidInput as exc:
        raise NotFound(f"Driver {hardware_type} could not be found. {exc.message}") from exc
    if not isinstance(obj, cls):
        raise OperationFailed(name, hw.default(name), "load", f"not a {name} interface")
    return obj


def unsupported(task: NodeTask, interface: str) -> str:
    """Why the task's node cannot do what ``interface`` does (its implementation is a
    no-* one), naming the implementations of its hardware type that could."""
    node = task.node
    impl = node.interface(interface)
    try:
        impls = task.rt.registry.hardware_type(node.driver).supported[interface]
    except InvalidInput:
        impls = ()
    able = ", ".join(i.name for i in impls if i.implemented) or "none"
    return (
        f"Node {node.uuid} does not support {interface}: its {interface}_interface is "
        f"'{impl}'. Set {interface}_interface to one that does ({node.driver}: {able})."
    )


def snapshot(node: Node, macs: tuple[str, ...] = (), *, box: SecretBox) -> NodeSnapshot:
    """A read-only copy of what drivers may know of ``node``, its secrets decrypted
    but the config drive (built by the conductor, never by a driver; decrypting it on
    every call, power sync included, would cost milliseconds per node).

    Raises:
        UndecryptableSecret: a secret was sealed with another key.
    """
    instance_info = dict(node.instance_info)
    configdrive = instance_info.pop("configdrive", None)
    instance_info = box.reveal(instance_info, where="instance_info")
    if configdrive is not None:
        instance_info["configdrive"] = configdrive
    return NodeSnapshot(
        uuid=node.uuid,
        name=node.name,
        driver=node.driver,
        provision_state=node.provision_state,
        power_state=node.power_state,
        properties=MappingProxyType(box.reveal(node.properties, where="properties")),
        instance_info=MappingProxyType(instance_info),
        driver_internal_info=MappingProxyType(dict(node.driver_internal_info)),
        mac_addresses=macs,
        target_raid_config=MappingProxyType(dict(node.target_raid_config or {})),
        raid_config=MappingProxyType(dict(node.raid_config or {})),
        network_data=MappingProxyType(box.reveal(node.network_data or {}, where="network_data")),
    )


def context_for(
    task: NodeTask,
    args: Mapping[str, Any] | None = None,
    *,
    progress: ProgressSink | None = None,
) -> DriverContext:
    """The driver context for one call on the task's node (secrets decrypted).

    Raises:
        MetalcastError: a secret cannot be decrypted with this conductor's key.
    """
    macs = tuple(p.address for p in task.ports())
    box = task.rt.secret_box
    return DriverContext(
        node=snapshot(task.node, macs, box=box),
        driver_info=MappingProxyType(box.reveal(task.node.driver_info, where="driver_info")),
        logger=task.log,
        args=MappingProxyType(box.reveal(dict(args or {}), where="args")),
        **({} if progress is None else {"progress": progress}),
    )


def call(
    task: NodeTask,
    cls: type[I],
    operation: str,
    func: Callable[[I, DriverContext], R],
    *,
    args: Mapping[str, Any] | None = None,
    progress: ProgressSink | None = None,
) -> R:
    """Call ``func(interface, context)`` on the node's ``cls`` interface, retrying
    ``RetryableDriverError`` with the runtime's bounded policy.

    Raises:
        OperationFailed: the call failed (the message is ready for ``last_error``).
    """
    iface = interface_of(task.rt, task.node, cls=cls)
    impl = task.node.interface(cls.interface_type)
    policy = task.rt.retry
    for attempt in range(1, policy.attempts + 1):
        try:
            return func(iface, context_for(task, args, progress=progress))
        except RetryableDriverError as exc:
            if attempt >= policy.attempts:
                cause = f"{exc.message} (gave up after {attempt} attempts)"
                raise OperationFailed(cls.interface_type, impl, operation, cause) from exc
            task.log.warning("%s: %s retry %d: %s", task.uuid, operation, attempt, exc.message)
            time.sleep(policy.backoff * 2 ** (attempt - 1))
        except (DriverError, InvalidInput) as exc:
            status = 400 if isinstance(exc, InvalidInput) else 500
            raise OperationFailed(
                cls.interface_type, impl, operation, exc.message, status=status
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
