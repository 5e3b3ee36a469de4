"""The node vmedia API (Ironic 1.89 attach/detach, 1.93 get) end to end: openstacksdk
and httpx → metalcast's API and conductor → sushy → the lab's Redfish BMC, which
downloads the image into its machine's virtual CD.  Refusals: a non-http(s) URL or
one with credentials (400, nothing attached, the password never echoed), a device
type the BMC lacks, and the path before its version (404)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from bmclab import PASSWORD, USERNAME, bmc_of, enroll

from metalcast.lab.bmc.fleet import Fleet

LATEST = {"X-OpenStack-Ironic-API-Version": "latest"}
ISO = b"CD001" * 512


@pytest.fixture(scope="module")
def url(start_metalcast_server: Callable[..., Any]) -> Iterator[str]:
    with start_metalcast_server() as server:
        yield server.url


@pytest.fixture
def image_url(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "tools.iso").write_bytes(ISO)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tools.iso"
    finally:
        server.shutdown()
        server.server_close()


def _vmedia(url: str, node: str, *, version: str = "latest") -> httpx.Response:
    return httpx.get(
        f"{url}/v1/nodes/{node}/vmedia", headers={"X-OpenStack-Ironic-API-Version": version}
    )


def test_attach_list_detach(url: str, fleet: Fleet, image_url: str) -> None:
    """As openstacksdk sends them (its attach_vmedia_to_node and
    detach_vmedia_from_node: a DELETE with device_types in a JSON body)."""
    bmc = bmc_of(fleet, "redfish", 2)
    enroll(url, "vm-api-0", "redfish", bmc.driver_info(username=USERNAME, password=PASSWORD))

    attached = _attach(url, "vm-api-0", {"device_type": "cdrom", "image_url": image_url})

    assert attached.status_code == 204, attached.text
    media = fleet.machines[2].media()
    assert media is not None and media.path.read_bytes() == ISO
    listed = _vmedia(url, "vm-api-0")
    assert listed.status_code == 200
    assert listed.json() == [{"media_types": ["CD", "DVD"], "inserted": True, "image": image_url}]

    detached = httpx.request(
        "DELETE",
        f"{url}/v1/nodes/vm-api-0/vmedia",
        json={"device_types": "cdrom"},
        headers=LATEST,
    )
    assert detached.status_code == 204, detached.text
    assert fleet.machines[2].media() is None
    assert _vmedia(url, "vm-api-0").json()[0]["inserted"] is False
    again = httpx.delete(f"{url}/v1/nodes/vm-api-0/vmedia?device_types=cdrom", headers=LATEST)
    assert again.status_code == 204  # empty already: fine


def test_openstacksdk_attaches_and_detaches(url: str, fleet: Fleet, image_url: str) -> None:
    conn = openstack.connect(
        auth_type="none",
        baremetal_endpoint_override=url,
        load_yaml_config=False,
        load_envvars=False,
    )
    served = httpx.get(f"{url}/v1", headers=LATEST).headers["X-OpenStack-Ironic-API-Version"]
    if tuple(int(p) for p in served.split(".")) < (1, 89):
        pytest.skip(f"the server's newest version is {served}: openstacksdk asks for 1.89")
    bmc = bmc_of(fleet, "redfish", 2)
    enroll(url, "vm-api-sdk", "redfish", bmc.driver_info(username=USERNAME, password=PASSWORD))
    conn.baremetal.attach_vmedia_to_node("vm-api-sdk", "cdrom", image_url)
    assert fleet.machines[2].media() is not None
    conn.baremetal.detach_vmedia_from_node("vm-api-sdk", device_types=["cdrom"])
    assert fleet.machines[2].media() is None


def _attach(url: str, node: str, body: object, *, version: str = "latest") -> httpx.Response:
    return httpx.post(
        f"{url}/v1/nodes/{node}/vmedia",
        json=body,
        headers={"X-OpenStack-Ironic-API-Version": version},
    )


def _bad_node(url: str, fleet: Fleet) -> str:
    """A node of machine 1 for the refused requests, enrolled at its first use."""
    if httpx.get(f"{url}/v1/nodes/vm-api-bad").status_code == 404:
        bmc = bmc_of(fleet, "redfish", 1)
        enroll(url, "vm-api-bad", "redfish", bmc.driver_info(username=USERNAME, password=PASSWORD))
    return "vm-api-bad"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"device_type": "cdrom", "image_url": "file:///etc/shadow"}, "http or https"),
        ({"device_type": "cdrom", "image_url": "nfs://server/x.iso"}, "http or https"),
        (
            {"device_type": "cdrom", "image_url": "https://bob:hunter2@example.com/x.iso"},
            "must not hold credentials",
        ),
        ({"device_type": "usb", "image_url": "http://example.com/x.iso"}, "device_type"),
        ({"image_url": "http://example.com/x.iso"}, "device_type"),
        ({"device_type": "cdrom", "image_url": "http://example.com/x.iso", "x": 1}, "x"),
    ],
)
def test_bad_attach_requests_are_refused(
    url: str, fleet: Fleet, body: dict[str, object], says: str
) -> None:
    answer = _attach(url, _bad_node(url, fleet), body)

    assert answer.status_code == 400, answer.text
    assert says in answer.json()["error_message"]
    assert "hunter2" not in answer.text
    assert fleet.machines[1].media() is None


def test_a_device_the_bmc_lacks_and_an_unknown_source_are_400(url: str, fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 1)
    enroll(url, "vm-api-floppy", "redfish", bmc.driver_info(username=USERNAME, password=PASSWORD))
    floppy = _attach(url, "vm-api-floppy", {"device_type": "floppy", "image_url": "http://a/b"})
    assert floppy.status_code == 400 and "this BMC has cdrom" in floppy.text
    source = _attach(
        url,
        "vm-api-floppy",
        {"device_type": "cdrom", "image_url": "http://a/b", "image_download_source": "ftp"},
    )
    assert source.status_code == 400 and "image_download_source" in source.text


def _before(url: str, minor: int) -> str:
    """The version just before ``1.<minor>`` as the server gates it: features Ironic
    added above the server's newest version are served from that version on."""
    served = httpx.get(f"{url}/v1", headers=LATEST).headers["X-OpenStack-Ironic-API-Version"]
    newest = int(served.split(".")[1])
    return f"1.{min(minor, newest) - 1}"


def test_the_api_is_unknown_before_its_versions(url: str, fleet: Fleet) -> None:
    bmc = bmc_of(fleet, "redfish", 0)
    enroll(url, "vm-api-old", "redfish", bmc.driver_info(username=USERNAME, password=PASSWORD))
    body = {"device_type": "cdrom", "image_url": "http://a/b.iso"}
    old = _before(url, 89)
    assert _attach(url, "vm-api-old", body, version=old).status_code == 404
    detached = httpx.delete(
        f"{url}/v1/nodes/vm-api-old/vmedia", headers={"X-OpenStack-Ironic-API-Version": old}
    )
    assert detached.status_code == 404
    assert _vmedia(url, "vm-api-old", version=_before(url, 93)).status_code == 404
    assert _vmedia(url, "vm-api-old").status_code == 200
