"""Two conductor groups, each with its own provisioning network and boot services, in
the virtual lab, on PostgreSQL: ``metalcast api`` and ``metalcast conductor``
processes as the README's "Several conductors and API processes" runs them.

Group ``east`` (one conductor) serves lab network 2, group ``west`` (two conductors)
lab network 3; each network has one QEMU machine enrolled in its group.  Of the two
west conductors one at a time runs west's dnsmasq and boot HTTP server (a PostgreSQL
advisory lock per network).  Both machines are deployed; the moment the west node
waits for its agent (its machine network-booting), the west conductor that owns it
and runs west's boot services is killed (SIGKILL).  The other west conductor takes
the boot services over, then the node (its boot prepared again), and both deploys end
``active`` with each machine booted from its own disk.

The kill comes before the agent streams the image: an image download cut by the boot
server's death is not resumed (the agent reports the write as failed), so a takeover
mid-write fails the deploy with the reason rather than finishing it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployment import HEADERS, Deployment
from lablib import DEPLOY_TIMEOUT, Lab, baremetal, free_udp_base, remove_lab, write_config_drive

from metalcast.lab.network import LabNetwork

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(1500)]

EAST, WEST = 2, 3  # lab network numbers: subnets 192.168.78.0/24 and 192.168.79.0/24


@pytest.fixture
def groups(
    postgres_url: str, agent_ramdisk: Any, tmp_path: Path
) -> Iterator[tuple[Deployment, Lab, Lab]]:
    """An API process, conductor east-1 on lab network 2 and west-1, west-2 on lab
    network 3; a lab of one machine on each network, not up yet."""
    if os.geteuid() != 0 or shutil.which("qemu-system-x86_64") is None:
        pytest.skip("needs root and QEMU")
    images = tmp_path / "images"
    images.mkdir()
    common = {
        "METALCAST_IMAGES__FILE_ROOTS": str(images),
        "METALCAST_BOOT__ENABLED": "true",
        "METALCAST_BOOT__KERNEL": str(agent_ramdisk.kernel),
        "METALCAST_BOOT__RAMDISK": str(agent_ramdisk.initramfs),
        "METALCAST_CONDUCTOR__AUTOMATED_CLEAN": "false",
        "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
    }
    suffix = os.getpid() % 100000
    east = LabNetwork.numbered(EAST, netns=f"mce2e-east{suffix}")
    west = LabNetwork.numbered(WEST, netns=f"mce2e-west{suffix}")
    deploy = Deployment(postgres_url, tmp_path / "state", common)
    labs: list[Lab] = []
    try:
        api = deploy.add_api("api1").url
        for name, group, network in (
            ("east-1", "east", east), ("west-1", "west", west), ("west-2", "west", west),
        ):  # fmt: skip
            env = {**network.boot_environment(), "METALCAST_BOOT__API_URL": api}
            deploy.add_conductor(name, group=group, env=env)
        for network in (east, west):
            labs.append(
                Lab(api, tmp_path / f"lab{network.number}", network.netns, free_udp_base(1),
                    state_dir=deploy.state_dir, images_dir=images)
            )  # fmt: skip
        yield deploy, labs[0], labs[1]
    finally:
        for lab in labs:
            remove_lab(lab.lab_dir, lab.netns)
        deploy.close()


def leader(deploy: Deployment, network: int) -> str | None:
    """The conductor that says it runs lab network ``network``'s boot services."""
    with contextlib.suppress(OSError, ValueError):
        record = json.loads((deploy.state_dir / f"boot-lab{network}" / "leader.json").read_text())
        alive = deploy.processes[record["identity"]].popen is not None
        return str(record["identity"]) if alive else None
    return None


def wait_leader(deploy: Deployment, network: int, among: set[str]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = leader(deploy, network)
        if found in among:
            return found
        time.sleep(0.2)
    raise AssertionError(f"none of {sorted(among)} runs network {network}'s boot services")


def node_state(lab: Lab, name: str) -> dict[str, Any]:
    return lab.node(name)


def wait_state(lab: Lab, name: str, wanted: str, *, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    node = node_state(lab, name)
    while time.monotonic() < deadline:
        node = node_state(lab, name)
        if node["provision_state"] == wanted:
            return node
        assert not node["provision_state"].endswith("failed"), node
        time.sleep(0.1)
    raise AssertionError(f"{name} not {wanted} within {timeout:.0f} s: {node}")


def make_owner_lead(deploy: Deployment, owner: str) -> None:
    """Have ``owner`` run west's boot services: stop the other runner, wait for the
    owner to take them, start it again."""
    runner = wait_leader(deploy, WEST, {"west-1", "west-2"})
    if runner == owner:
        return
    deploy.stop(runner)
    wait_leader(deploy, WEST, {owner})
    deploy.start(runner)


def start_deploy(lab: Lab, name: str, image: Path, scratch: Path) -> None:
    baremetal(lab, "node", "manage", name, "--wait", "120")
    baremetal(lab, "node", "provide", name, "--wait", "120")
    url, checksum = lab.deployable(image)
    baremetal(lab,
        "node", "set", name, "--instance-info", f"image_source={url}",
        "--instance-info", f"image_checksum={checksum}",
    )  # fmt: skip
    drive = write_config_drive(scratch / name, hostname=f"{name}.lab", user_data=f"#cc {name}\n")
    baremetal(lab, "node", "deploy", name, "--config-drive", str(drive))


def history(lab: Lab, name: str) -> list[str]:
    answer = httpx.get(f"{lab.url}/v1/nodes/{name}/history", headers=HEADERS, timeout=30)
    answer.raise_for_status()
    return [str(event["event"]) for event in answer.json()["history"]]


def test_two_conductor_groups_each_with_its_own_network_and_a_takeover_mid_deploy(
    groups: tuple[Deployment, Lab, Lab], lab_disk_image: Path, tmp_path: Path
) -> None:
    deploy, east_lab, west_lab = groups
    east_lab.up(1, "--network", str(EAST), "--conductor-group", "east")
    west_lab.up(1, "--network", str(WEST), "--conductor-group", "west")
    east_node, west_node = f"lab{EAST}-0", f"lab{WEST}-0"
    assert wait_leader(deploy, EAST, {"east-1"}) == "east-1"

    owner = str(node_state(west_lab, west_node)["conductor"])
    assert owner in ("west-1", "west-2")
    assert node_state(east_lab, east_node)["conductor"] == "east-1"
    make_owner_lead(deploy, owner)
    survivor = ({"west-1", "west-2"} - {owner}).pop()
    deploy.wait_conductors({"east-1", "west-1", "west-2"})

    start_deploy(east_lab, east_node, lab_disk_image, tmp_path)
    start_deploy(west_lab, west_node, lab_disk_image, tmp_path)
    wait_state(west_lab, west_node, "wait call-back", timeout=300)
    deploy.kill(owner)  # its dnsmasq dies with it (parent-death signal)

    assert wait_leader(deploy, WEST, {survivor}) == survivor
    for lab, name in ((west_lab, west_node), (east_lab, east_node)):
        node = wait_state(lab, name, "active", timeout=float(DEPLOY_TIMEOUT))
        assert node["last_error"] is None
        console = lab.wait_for_serial("METALCAST-USERDATA", node=name)
        assert "METALCAST-DISK-BOOTED root=/dev/vda" in console
        assert f"METALCAST-CONFIGDRIVE hostname={name}.lab" in console
    assert node_state(west_lab, west_node)["conductor"] == survivor
    events = history(west_lab, west_node)
    taken = f"conductor {survivor} took over the node from {owner}"
    assert any(taken in event for event in events), events
    # each network's DHCP answered its own machine only
    east_mac, west_mac = (lab.state()["nodes"][0]["mac"] for lab in (east_lab, west_lab))
    for network, mine, other in ((EAST, east_mac, west_mac), (WEST, west_mac, east_mac)):
        log = (deploy.state_dir / f"boot-lab{network}" / "dnsmasq.log").read_text()
        assert f"DHCPACK(mcbr{network - 1}) " in log and mine in log
        assert other not in log
