"""Step-based deploys through the agent (``direct``), on the conductor's side: an
in-band deploy step of the agent RAID interface runs between the ramdisk boot and the
image write, a ``hold`` step holds the deploy with its agent up until ``unhold``, and
an in-band step placed where no agent runs fails the deploy with the reason."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from conductor_env import DEADLINE
from test_conductor_software_raid import (
    IMAGE,
    ROOT,
    UUID,
    Site,
    beat,
    built,
    next_command,
    raid_node,
    site,
    succeeded,
)

from metalcast.calls import (
    AgentHeartbeat,
    AgentLookup,
    ChangeProvisionState,
    ProvisionRequest,
    UpdateNode,
)
from metalcast.context import SYSTEM
from metalcast.db.models import Node
from metalcast.reports import AgentReport

__all__ = ["site"]  # the fixture, used by name

RAID_STEP = {
    "interface": "raid",
    "step": "apply_configuration",
    "args": {"raid_config": {"logical_disks": [ROOT]}},
    "priority": 90,
}


def available(site: Site) -> int:
    node_id = raid_node(site)
    image = {
        "image_source": (site.images / "disk.raw").as_uri(),
        "image_checksum": hashlib.sha256(IMAGE).hexdigest(),
    }
    update = {"automated_clean": False, "instance_info": image}
    site.service.execute(UpdateNode(node_id, update), context=SYSTEM)
    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("provide")), context=SYSTEM)
    assert site.settled(node_id).provision_state == "available"
    return node_id


def deploy(site: Site, node_id: int, *steps: dict[str, Any]) -> None:
    request = ProvisionRequest("active", deploy_steps=list(steps) or None)
    site.service.execute(ChangeProvisionState(node_id, request), context=SYSTEM)


def held(site: Site, node_id: int) -> Node:
    """The node once it rests in deploy hold (or anywhere :meth:`Site.settled` waits for)."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        node = site.node(node_id)
        if node.provision_state == "deploy hold" and node.reservation is None:
            return node
        time.sleep(0.005)
    return site.settled(node_id)


def started(site: Site, node_id: int) -> list[str]:
    return [
        e.removeprefix("Deploy step ").split(" ")[0]
        for e in site.events(node_id)
        if e.startswith("Deploy step ") and e.endswith(" started")
    ]


def test_an_agent_raid_deploy_step_runs_before_the_image_write_onto_its_root(
    site: Site,
) -> None:
    node_id = available(site)
    deploy(site, node_id, RAID_STEP)
    node = site.settled(node_id)
    assert node.provision_state == "wait call-back", node.last_error
    # the ramdisk boots for the RAID step, which waits for the agent in its queue
    assert node.deploy_step is not None
    assert (node.deploy_step["step"], node.deploy_step["priority"]) == ("apply_configuration", 90)

    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    delete = next_command(site, node_id, token)
    assert delete["name"] == "delete_raid_configuration"
    reply = beat(site, node_id, token, succeeded(delete, deleted=[], members=[]))
    create = reply["command"]
    assert create["name"] == "create_raid_configuration"
    assert create["args"] == {"logical_disks": [ROOT]}
    beat(site, node_id, token, succeeded(create, **built()))
    # the RAID is recorded; the image write goes onto its root volume
    assert site.node(node_id).raid_config["logical_disks"][0]["md_uuid"] == UUID
    write = next_command(site, node_id, token)
    assert write["name"] == "write_image"
    assert write["args"]["raid_root"] == UUID
    beat(site, node_id, token, succeeded(write, device="/dev/md0", bytes=len(IMAGE), seconds=1))

    node = site.settled(node_id)
    assert (node.provision_state, node.last_error) == ("active", None)
    assert node.deploy_step is None
    assert node.power_state == "power on"
    assert "agent_commands" not in node.driver_internal_info
    assert "deploy_steps" not in node.driver_internal_info
    assert started(site, node_id) == [
        "deploy.deploy",
        "raid.apply_configuration",
        "deploy.write_image",
        "deploy.prepare_instance_boot",
        "deploy.tear_down_agent",
        "deploy.switch_to_tenant_network",
        "deploy.boot_instance",
    ]


def test_a_hold_after_the_ramdisk_boot_keeps_the_agent_until_unhold(site: Site) -> None:
    node_id = available(site)
    deploy(site, node_id, {"interface": "deploy", "step": "hold", "args": {}, "priority": 85})
    assert site.settled(node_id).provision_state == "wait call-back"
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    report = AgentReport(token=token, agent_version="metalcast-agent")
    reply = site.service.execute(AgentHeartbeat(node_id, report), context=SYSTEM)
    assert reply["command"] is None  # the agent is up: on to the hold
    node = held(site, node_id)
    assert node.provision_state == "deploy hold", node.last_error
    assert node.deploy_step is not None and node.deploy_step["step"] == "hold"
    reply = site.service.execute(AgentHeartbeat(node_id, report), context=SYSTEM)
    assert reply["command"] is None  # heartbeats go on while held
    assert held(site, node_id).provision_state == "deploy hold"

    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("unhold")), context=SYSTEM)
    assert site.settled(node_id).provision_state == "wait call-back"
    write = next_command(site, node_id, token)
    assert write["name"] == "write_image"
    beat(site, node_id, token, succeeded(write, device="/dev/vda", bytes=len(IMAGE), seconds=1))
    assert site.settled(node_id).provision_state == "active"


def test_an_in_band_step_where_no_agent_runs_fails_the_deploy(site: Site) -> None:
    node_id = available(site)
    late = {**RAID_STEP, "priority": 10}  # after deploy.tear_down_agent (40)
    deploy(site, node_id, late)
    assert site.settled(node_id).provision_state == "wait call-back"
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    write = next_command(site, node_id, token)
    beat(site, node_id, token, succeeded(write, device="/dev/vda", bytes=len(IMAGE), seconds=1))
    node = site.settled(node_id)
    assert node.provision_state == "deploy failed"
    assert node.last_error is not None
    assert "the ramdisk agent, which is not running at its priority 10" in node.last_error
    assert node.reservation is None
    assert node.deploy_step is None
