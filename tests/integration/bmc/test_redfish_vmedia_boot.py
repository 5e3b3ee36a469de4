"""The ``redfish-virtual-media`` boot interface against the lab's Redfish BMC through
sushy: prepare_ramdisk publishes the node's ISO and inserts its URL (ejecting what
was there), the BMC downloads it; clean-up ejects and withdraws it."""

from __future__ import annotations

import functools
import http.server
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest
import sushy
from bmclab import PASSWORD, USERNAME, bmc_of
from sushy import auth as sushy_auth

from metalcast.boot.errors import BootSetupError
from metalcast.boot.vmedia import VmediaNode
from metalcast.drivers.base import DriverContext, NodeSnapshot
from metalcast.drivers.redfish.client import RedfishSessions
from metalcast.drivers.redfish.vmedia import RedfishVirtualMediaBoot
from metalcast.errors import FatalDriverError
from metalcast.lab.bmc.fleet import Fleet

UUID = "5c3e2a8e-41a0-4d8b-9f0e-0d4c1c8a7b21"
NETWORK_DATA = {"links": [], "networks": [], "services": []}


class ServedIsos:
    """A stand-in for the boot services: ISOs in a directory an HTTP server serves."""

    def __init__(self, directory: Path, url: str) -> None:
        self.directory, self.url = directory, url
        self.published: list[VmediaNode] = []
        self.withdrawn: list[str] = []
        self.fail = False

    def publish_vmedia(self, node: VmediaNode) -> str:
        if self.fail:
            raise BootSetupError("network_data: networks must be a list of objects")
        self.published.append(node)
        (self.directory / f"{node.uuid}.iso").write_bytes(b"ISO of " + node.uuid.encode())
        return f"{self.url}/{node.uuid}.iso"

    def withdraw_vmedia(self, node_uuid: str) -> None:
        self.withdrawn.append(node_uuid)


@pytest.fixture
def isos(tmp_path: Path) -> Iterator[ServedIsos]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield ServedIsos(tmp_path, f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def _ctx(
    fleet: Fleet, index: int, *, macs: tuple[str, ...] = ("52:54:00:aa:bb:01",)
) -> DriverContext:
    bmc = bmc_of(fleet, "redfish", index)
    node = NodeSnapshot(
        uuid=UUID,
        name="vm-0",
        driver="redfish",
        provision_state="deploying",
        power_state="power off",
        properties=MappingProxyType({}),
        instance_info=MappingProxyType({}),
        driver_internal_info=MappingProxyType({}),
        mac_addresses=macs,
        network_data=MappingProxyType(NETWORK_DATA),
    )
    info = bmc.driver_info(username=USERNAME, password=PASSWORD)
    return DriverContext(
        node=node, driver_info=MappingProxyType(info), logger=logging.getLogger("test")
    )


def _cd(fleet: Fleet, index: int) -> sushy.resources.manager.virtual_media.VirtualMedia:
    bmc = bmc_of(fleet, "redfish", index)
    root = sushy.Sushy(
        f"http://{bmc.address}:{bmc.port}",
        auth=sushy_auth.BasicAuth(username=USERNAME, password=PASSWORD),
    )
    return root.get_system(bmc.system_id).virtual_media.get_member(
        f"{bmc.system_id}/VirtualMedia/Cd"
    )


def test_prepare_inserts_the_nodes_iso_and_clean_up_ejects_it(
    fleet: Fleet, isos: ServedIsos
) -> None:
    boot = RedfishVirtualMediaBoot(RedfishSessions(), isos)
    assert boot.ramdisk_boot_device == "cdrom"
    ctx = _ctx(fleet, 0)
    boot.validate(ctx)
    _cd(fleet, 0).insert_media(_stale(isos))  # what an operator left in the drive

    boot.prepare_ramdisk(ctx)

    assert isos.published == [VmediaNode(UUID, ("52:54:00:aa:bb:01",), NETWORK_DATA)]
    cd = _cd(fleet, 0)
    assert (cd.inserted, cd.image) == (True, f"{isos.url}/{UUID}.iso")
    media = fleet.machines[0].media()
    assert media is not None and media.path.read_bytes() == b"ISO of " + UUID.encode()

    boot.prepare_instance(ctx)
    assert _cd(fleet, 0).inserted is False
    assert isos.withdrawn == [UUID]
    boot.clean_up_ramdisk(ctx)  # nothing in the drive: no error


def _stale(isos: ServedIsos) -> str:
    (isos.directory / "stale.iso").write_bytes(b"left by someone")
    return f"{isos.url}/stale.iso"


def test_refusals_say_what_to_fix(fleet: Fleet, isos: ServedIsos) -> None:
    with pytest.raises(FatalDriverError, match="boot services are disabled"):
        RedfishVirtualMediaBoot(RedfishSessions(), None).prepare_ramdisk(_ctx(fleet, 1))
    boot = RedfishVirtualMediaBoot(RedfishSessions(), isos)
    with pytest.raises(FatalDriverError, match="has no port"):
        boot.prepare_ramdisk(_ctx(fleet, 1, macs=()))
    isos.fail = True
    with pytest.raises(FatalDriverError, match="network_data"):
        boot.prepare_ramdisk(_ctx(fleet, 1))
    assert fleet.machines[1].media() is None
