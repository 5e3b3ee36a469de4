"""Boot interfaces ``ipxe`` (the default) and ``pxe``: network boot through metalcast's
own boot services (:mod:`metalcast.boot`).

``prepare_ramdisk`` writes the node's boot script and one DHCP host entry per port,
so the node's next network boot loads the deploy ramdisk: over HTTP with ``ipxe``,
over TFTP only with ``pxe``.  Everything else (``clean_up_ramdisk``, and both instance
calls) removes the node's boot files, so that it boots its own disk.

Errors::

    FatalDriverError   boot services disabled, no port, a boot file not writable
"""

from __future__ import annotations

from typing import Protocol

from metalcast.boot.errors import BootError
from metalcast.boot.ipxe import BootProtocol, NodeBoot, NodePort
from metalcast.drivers.base import BootInterface, DriverContext
from metalcast.errors import FatalDriverError


class BootFiles(Protocol):
    """Where node boot files are written: :class:`metalcast.boot.supervisor.BootSupervisor`."""

    def prepare_node(self, node: NodeBoot) -> None: ...

    def clean_node(self, node_uuid: str) -> None: ...


class _NetworkBoot(BootInterface):
    protocol = BootProtocol.HTTP

    def __init__(self, files: BootFiles | None = None) -> None:
        self._files = files

    def _require(self, operation: str) -> BootFiles:
        if self._files is None:
            raise FatalDriverError(
                f"cannot {operation}: the boot services are disabled "
                "(set boot.enabled and boot.interface in the server's settings)",
                operation=operation,
            )
        return self._files

    def validate(self, ctx: DriverContext) -> None:
        self._require("network-boot the node")

    def prepare_ramdisk(self, ctx: DriverContext) -> None:
        files = self._require("prepare the network boot")
        if not ctx.node.mac_addresses:
            raise FatalDriverError(
                f"node {ctx.node.uuid} has no port: enroll the MAC address it boots from "
                "(baremetal port create <MAC> --node <node>)",
                operation="prepare the network boot",
            )
        node = NodeBoot(
            ctx.node.uuid,
            tuple(NodePort(mac) for mac in ctx.node.mac_addresses),
            protocol=self.protocol,
        )
        try:
            files.prepare_node(node)
        except BootError as exc:
            raise FatalDriverError(str(exc), operation="prepare the network boot") from exc

    def clean_up_ramdisk(self, ctx: DriverContext) -> None:
        if self._files is None:
            return
        try:
            self._files.clean_node(ctx.node.uuid)
        except BootError as exc:
            raise FatalDriverError(str(exc), operation="remove the boot files") from exc

    def prepare_instance(self, ctx: DriverContext) -> None:
        self.clean_up_ramdisk(ctx)  # the instance boots from its disk

    def clean_up_instance(self, ctx: DriverContext) -> None:
        self.clean_up_ramdisk(ctx)


class IPXEBoot(_NetworkBoot):
    """iPXE: the boot script, kernel and ramdisk over HTTP."""

    name = "ipxe"


class PXEBoot(_NetworkBoot):
    """PXE with TFTP only, for networks where HTTP from the nodes is not wanted."""

    name = "pxe"
    protocol = BootProtocol.TFTP
