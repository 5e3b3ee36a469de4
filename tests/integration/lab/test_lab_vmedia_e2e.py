"""Virtual media boot end to end, in the virtual lab: ``lab up --bmc redfish`` makes
a machine a ``redfish`` node with the ``redfish-virtual-media`` boot interface and a
static address in its ``network_data``.  Cleaning and the deploy boot the deploy
ramdisk from an ISO that the conductor builds and the lab's Redfish BMC inserts into
the QEMU machine's CD drive (downloaded over HTTP, attached through QMP); the agent
writes the image, the CD is ejected and the ISO removed, and the machine boots its
own disk.  The machine never asks DHCP or TFTP for anything: dnsmasq's log never
names its MACs."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from lablib import Lab, deploy_and_boot

# cleaning and a deploy, each booting the ramdisk under TCG: several minutes
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


def _cd(lab: Lab) -> dict[str, object]:
    """The machine's virtual CD, as its Redfish BMC shows it."""
    state = lab.state()
    url = f"http://{state['bmc_address']}:{state['redfish_port']}"
    answer = httpx.get(
        f"{url}/redfish/v1/Systems/lab-0/VirtualMedia/Cd",
        auth=(state["bmc_username"], state["bmc_password"]),
    )
    answer.raise_for_status()
    shown: dict[str, object] = answer.json()
    return shown


def test_deploy_through_virtual_media_without_dhcp(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(1, "--bmc", "redfish")
    node = lab.node("lab-0")
    assert (node["driver"], node["boot_interface"]) == ("redfish", "redfish-virtual-media")
    address = node["network_data"]["networks"][0]["ip_address"]

    console = deploy_and_boot(lab, lab_disk_image, tmp_path, hostname="vmedia-node.lab")

    assert "Booting from DVD/CD" in console
    assert f"METALCAST-RAMDISK: net up {address}/24 dev=" in console
    assert "(static)" in console and "udhcpc" not in console
    assert "METALCAST-DISK-FIRMWARE bios" in console
    # after the deploy: the CD is ejected and the node's ISO gone
    assert _cd(lab)["Inserted"] is False
    assert lab.state_dir is not None
    served = lab.state_dir / "boot" / "files" / "vmedia"
    assert not served.exists() or list(served.iterdir()) == []
    # no DHCP, no TFTP: all dnsmasq heard of the machine is its kernel's IPv6
    # router solicitations (answered by the bridge's router advertisements)
    machine = lab.state()["nodes"][0]
    log = lab.dnsmasq_log().lower().splitlines()
    macs = (machine["mac"].lower(), machine["second_mac"].lower())
    heard = [line for line in log if any(mac in line for mac in macs)]
    assert all("rtr-solicit" in line for line in heard), heard
    assert not [line for line in log if "tftp" in line and address in line]
