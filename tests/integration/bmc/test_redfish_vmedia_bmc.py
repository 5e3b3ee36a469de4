"""The virtual Redfish BMC's VirtualMedia, driven by sushy as the
``redfish-virtual-media`` boot interface drives it: InsertMedia downloads the image
over HTTP into the BMC and puts it in the machine's CD drive, a boot override to Cd
boots it, EjectMedia empties the drive; bad requests are refused as a BMC does."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sushy
from bmclab import PASSWORD, USERNAME, bmc_of
from sushy import auth as sushy_auth

from metalcast.lab.bmc.fleet import Fleet
from metalcast.lab.machine import BootDevice, PowerAction, SimulatedMachine

ISO = b"CD001" * 1000


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on loopback serving ``boot.iso``."""
    (tmp_path / "boot.iso").write_bytes(ISO)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _system(fleet: Fleet, index: int) -> sushy.resources.system.system.System:
    bmc = bmc_of(fleet, "redfish", index)
    auth = sushy_auth.BasicAuth(username=USERNAME, password=PASSWORD)
    root = sushy.Sushy(f"http://{bmc.address}:{bmc.port}", auth=auth)
    return root.get_system(bmc.system_id)


def _cd(fleet: Fleet, index: int) -> sushy.resources.manager.virtual_media.VirtualMedia:
    media = _system(fleet, index).virtual_media
    assert [m.identity for m in media.get_members()] == ["Cd"]
    return media.get_member(media.members_identities[0])


def test_insert_boot_and_eject_through_sushy(fleet: Fleet, image_server: str) -> None:
    machine = fleet.machines[0]
    assert isinstance(machine, SimulatedMachine)
    cd = _cd(fleet, 0)
    assert (cd.inserted, cd.image) == (False, None)
    cd.insert_media(f"{image_server}/boot.iso")
    cd.refresh()
    assert (cd.inserted, cd.image, cd.image_name) == (
        True,
        f"{image_server}/boot.iso",
        "boot.iso",
    )
    media = machine.media()
    assert media is not None and media.path.read_bytes() == ISO

    system = _system(fleet, 0)
    system.set_system_boot_options(
        sushy.BootSource.CD, enabled=sushy.BootSourceOverrideEnabled.ONCE
    )
    machine.act(PowerAction.CYCLE)
    assert machine.boots[-1].device is BootDevice.CDROM

    cd.eject_media()
    cd.refresh()
    assert (cd.inserted, cd.image) == (False, None)
    assert machine.media() is None and not media.path.exists()
    cd.eject_media()  # empty already: no error


def _insert(fleet: Fleet, index: int, body: object) -> httpx.Response:
    bmc = bmc_of(fleet, "redfish", index)
    path = f"{bmc.system_id}/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia"
    return httpx.post(
        f"http://{bmc.address}:{bmc.port}{path}", json=body, auth=(USERNAME, PASSWORD)
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "needs Image"),
        ({"Image": "file:///etc/shadow"}, "http or https"),
        ({"Image": "http://user:secret@127.0.0.1/x.iso"}, "credentials"),
        ({"Image": "http://127.0.0.1:9/x.iso", "WriteProtected": False}, "read-only"),
        ({"Image": "http://127.0.0.1:9/x.iso"}, "cannot download"),
    ],
)
def test_unusable_images_are_refused(fleet: Fleet, body: object, says: str) -> None:
    answer = _insert(fleet, 1, body)
    assert answer.status_code == 400
    assert says in answer.json()["error"]["message"]
    assert "secret" not in answer.text
    assert fleet.machines[1].media() is None


def test_a_second_insert_conflicts_and_needs_auth(fleet: Fleet, image_server: str) -> None:
    assert _insert(fleet, 2, {"Image": f"{image_server}/boot.iso"}).status_code == 204
    try:
        again = _insert(fleet, 2, {"Image": f"{image_server}/boot.iso"})
        assert again.status_code == 409
        bmc = bmc_of(fleet, "redfish", 2)
        anonymous = httpx.get(f"http://{bmc.address}:{bmc.port}{bmc.system_id}/VirtualMedia/Cd")
        assert anonymous.status_code == 401
    finally:
        _cd(fleet, 2).eject_media()
    missing = _insert(fleet, 2, {"Image": f"{image_server}/absent.iso"})
    assert missing.status_code == 400 and "HTTP 404" in missing.text
