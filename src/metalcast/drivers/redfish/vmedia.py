"""Boot interface ``redfish-virtual-media``: the deploy ramdisk from a virtual CD.

For sites without PXE, as Ironic's interface of that name: ``prepare_ramdisk`` has
the boot services build an ISO of the deploy kernel and ramdisk for this node
(:mod:`metalcast.boot.vmedia`: its agent settings and static ``network_data``
inside, so the node needs no DHCP), ejects whatever the BMC's virtual CD holds and
inserts the ISO's URL (Redfish ``InsertMedia``); the conductor then sets the boot
device to ``cdrom`` once (:attr:`ramdisk_boot_device`) and powers the node on.
``clean_up_ramdisk`` (the end of a deploy, of cleaning, inspection or rescue) and
both instance calls eject the CD and remove the ISO, so the node boots its disk.

Errors::

    FatalDriverError      boot services disabled, no port, no virtual CD, the ISO
                          cannot be built (unusable network_data)
    RetryableDriverError  the BMC failed transiently (from the session pool)
"""

from __future__ import annotations

from typing import Protocol

from metalcast.boot.errors import BootError
from metalcast.boot.vmedia import VmediaNode
from metalcast.drivers.base import BootInterface, DriverContext
from metalcast.drivers.redfish.client import RedfishClient, RedfishSessions
from metalcast.drivers.redfish.interfaces import _RedfishBase
from metalcast.errors import FatalDriverError


class VirtualMediaFiles(Protocol):
    """Where ISOs are built and served: :class:`metalcast.boot.supervisor.BootSupervisor`."""

    def publish_vmedia(self, node: VmediaNode) -> str: ...

    def withdraw_vmedia(self, node_uuid: str) -> None: ...


class RedfishVirtualMediaBoot(_RedfishBase, BootInterface):
    """The deploy ramdisk from an ISO in the BMC's virtual CD."""

    name = "redfish-virtual-media"
    ramdisk_boot_device = "cdrom"

    def __init__(
        self, sessions: RedfishSessions | None = None, files: VirtualMediaFiles | None = None
    ) -> None:
        super().__init__(sessions)
        self._files = files

    def _require(self, operation: str) -> VirtualMediaFiles:
        if self._files is None:
            raise FatalDriverError(
                f"cannot {operation}: the boot services are disabled, and they build and "
                "serve the virtual media (set boot.enabled in the server's settings)",
                operation=operation,
            )
        return self._files

    def validate(self, ctx: DriverContext) -> None:
        super().validate(ctx)
        self._require("boot from virtual media")

    def prepare_ramdisk(self, ctx: DriverContext) -> None:
        operation = "prepare the virtual media boot"
        files = self._require(operation)
        if not ctx.node.mac_addresses:
            raise FatalDriverError(
                f"node {ctx.node.uuid} has no port: enroll the MAC address of the NIC its "
                "agent reaches metalcast through (baremetal port create <MAC> --node <node>)",
                operation=operation,
            )
        node = VmediaNode(
            ctx.node.uuid, ctx.node.mac_addresses, network_data=dict(ctx.node.network_data)
        )
        try:
            url = files.publish_vmedia(node)
        except BootError as exc:
            raise FatalDriverError(str(exc), operation=operation) from exc

        def insert(client: RedfishClient, system: str | None) -> None:
            device = _cd_of(client, system)
            _eject_all(client, system)
            client.insert_media(system, device, url)

        self._call(ctx, "insert the virtual media", insert)
        ctx.logger.info("%s: virtual media inserted", ctx.node.uuid)

    def clean_up_ramdisk(self, ctx: DriverContext) -> None:
        self._call(ctx, "eject the virtual media", _eject_all)
        if self._files is not None:
            try:
                self._files.withdraw_vmedia(ctx.node.uuid)
            except BootError as exc:
                raise FatalDriverError(str(exc), operation="remove the virtual media") from exc

    def prepare_instance(self, ctx: DriverContext) -> None:
        self.clean_up_ramdisk(ctx)  # the instance boots from its disk

    def clean_up_instance(self, ctx: DriverContext) -> None:
        self.clean_up_ramdisk(ctx)


def _cd_of(client: RedfishClient, system: str | None) -> str:
    for media in client.virtual_media(system):
        if media.is_cd:
            return media.identity
    raise FatalDriverError(
        "the BMC has no virtual CD (no VirtualMedia with MediaTypes CD or DVD)",
        operation="insert the virtual media",
    )


def _eject_all(client: RedfishClient, system: str | None) -> None:
    """Eject every inserted CD: what another boot or an operator left there."""
    for media in client.virtual_media(system):
        if media.is_cd and media.inserted:
            client.eject_media(system, media.identity)
