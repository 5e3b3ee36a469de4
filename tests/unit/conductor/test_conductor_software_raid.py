"""Software RAID through the agent, on the conductor's side: the target checked when
set, manual cleaning handing the agent its RAID commands, the report recorded as the
node's raid_config, and the deploy writing onto the root volume."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conductor_env import DEADLINE
from cryptography.fernet import Fernet

from metalcast.calls import (
    AgentHeartbeat,
    AgentLookup,
    ChangeProvisionState,
    CreateNode,
    ProvisionRequest,
    SetTargetRaidConfig,
    UpdateNode,
)
from metalcast.conductor.clock import ManualClock
from metalcast.conductor.runtime import RetryPolicy
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import ConductorSettings, ImagesSettings, Settings
from metalcast.context import SYSTEM
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.models import Node
from metalcast.drivers.direct import DirectDeploy
from metalcast.drivers.fake import FakeBmcState, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.raid_agent import AgentRAID
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import InvalidInput
from metalcast.reports import AgentReport
from metalcast.secrecy import SecretBox
from metalcast.states import STABLE, WAIT, ProvisionState

IMAGE = b"a whole-disk image " * 5000
ROOT: dict[str, Any] = {
    "size_gb": "MAX",
    "raid_level": "1",
    "is_root_volume": True,
    "controller": "software",
}
UUID = "0a1b2c3d:4e5f6071:8293a4b5:c6d7e8f9"
STEPS = [
    {"interface": "raid", "step": "delete_configuration", "args": {}},
    {"interface": "raid", "step": "create_configuration", "args": {"delete_existing": False}},
]


@dataclasses.dataclass
class Site:
    service: ConductorService
    db: Database
    clock: ManualClock
    images: Path

    def node(self, node_id: int) -> Node:
        with self.db.read() as conn:
            return repo.get_node_by_id(conn, node_id)

    def settled(self, node_id: int) -> Node:
        rest = {s.value for s in STABLE | WAIT} | {
            s.value for s in ProvisionState if s.value.endswith("failed")
        }
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            node = self.node(node_id)
            if node.provision_state in rest and node.reservation is None:
                return node
            time.sleep(0.005)
        raise AssertionError(f"node still busy: {self.node(node_id)}")

    def events(self, node_id: int) -> list[str]:
        with self.db.read() as conn:
            return [e.event for e in repo.list_history(conn, node_id)]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    images = tmp_path / "images"
    images.mkdir()
    (images / "disk.raw").write_bytes(IMAGE)
    settings = Settings(
        state_dir=tmp_path / "state",
        conductor=ConductorSettings(
            hostname="conductor-1", node_locked_retry_attempts=1, node_locked_retry_interval=0
        ),
        images=ImagesSettings(file_roots=(images,)),
    )
    db = Database(settings.database_url)
    db.migrate()
    supported = dict(FAKE_HARDWARE.supported)
    supported["deploy"] = (*supported["deploy"], DirectDeploy)
    supported["raid"] = (*supported["raid"], AgentRAID)
    registry = DriverRegistry(
        [dataclasses.replace(FAKE_HARDWARE, supported=supported)],
        factories=fake_factories(FakeBmcState()),
    )
    clock = ManualClock()
    service = ConductorService(
        settings,
        db,
        registry,
        SecretBox(Fernet.generate_key()),
        clock=clock,
        intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0),
        retry=RetryPolicy(attempts=1, backoff=0),
    )
    service.start()
    yield Site(service, db, clock, images)
    service.stop(timeout=DEADLINE)
    db.dispose()


def raid_node(site: Site) -> int:
    values = {
        "driver": "fake-hardware",
        "deploy_interface": "direct",
        "raid_interface": "agent",
        "provision_state": "manageable",
        "properties": {"local_gb": 50},
    }
    return site.service.execute(CreateNode(values), context=SYSTEM).id


def beat(site: Site, node_id: int, token: str, *results: dict[str, Any]) -> Any:
    report = AgentReport(token=token, agent_version="metalcast-agent", results=results)
    reply = site.service.execute(AgentHeartbeat(node_id, report), context=SYSTEM)
    site.settled(node_id)
    return reply


def next_command(site: Site, node_id: int, token: str) -> dict[str, Any]:
    command: dict[str, Any] = beat(site, node_id, token)["command"]
    assert command is not None, site.node(node_id)
    return command


def succeeded(command: dict[str, Any], **result: Any) -> dict[str, Any]:
    return {"id": command["id"], "name": command["name"], "status": "succeeded", "result": result}


def built(md_uuid: str = UUID) -> dict[str, Any]:
    return {
        "logical_disks": [
            {
                **ROOT,
                "volume_name": "root",
                "size_gb": 1,
                "physical_disks": ["/dev/vda", "/dev/vdb"],
                "md_uuid": md_uuid,
            }
        ]
    }


def clean_to_create(site: Site, node_id: int) -> tuple[str, dict[str, Any]]:
    """Manual cleaning [delete, create] until the agent is handed create; its token
    and that command."""
    request = ProvisionRequest("clean", clean_steps=STEPS)
    site.service.execute(ChangeProvisionState(node_id, request), context=SYSTEM)
    assert site.settled(node_id).provision_state == "clean wait"
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    assert beat(site, node_id, token)["command"] is None  # the agent is up: steps run
    delete = next_command(site, node_id, token)
    assert (delete["name"], delete["args"]) == ("delete_raid_configuration", {})
    beat(site, node_id, token, succeeded(delete, deleted=[], members=[]))
    return token, next_command(site, node_id, token)


def test_a_target_software_raid_cannot_build_is_refused_and_nothing_changes(
    site: Site,
) -> None:
    node_id = raid_node(site)
    good = {"logical_disks": [ROOT]}
    site.service.execute(SetTargetRaidConfig(node_id, good), context=SYSTEM)
    bad = {"logical_disks": [{**ROOT, "raid_level": "5"}]}
    with pytest.raises(InvalidInput) as caught:
        site.service.execute(SetTargetRaidConfig(node_id, bad), context=SYSTEM)
    assert caught.value.status_code == 400
    assert "logical_disks.0: raid_level '5' is not a software RAID level" in caught.value.message
    node = site.node(node_id)
    assert (node.target_raid_config, node.reservation) == (good, None)


def test_cleaning_builds_the_raid_and_the_deploy_writes_onto_its_root(site: Site) -> None:
    node_id = raid_node(site)
    site.service.execute(SetTargetRaidConfig(node_id, {"logical_disks": [ROOT]}), context=SYSTEM)
    token, create = clean_to_create(site, node_id)
    assert create["name"] == "create_raid_configuration"
    assert create["args"] == {"logical_disks": [ROOT]}
    beat(site, node_id, token, succeeded(create, **built()))

    node = site.settled(node_id)
    assert node.provision_state == "manageable", node.last_error
    assert node.raid_config == {**built(), "last_updated": site.clock.now().isoformat()}
    assert node.properties["local_gb"] == 1  # the root volume's size
    assert "RAID configuration is 1 logical disk(s): RAID 1 of 1 GiB" in site.events(node_id)

    # provide without automated cleaning (erase_devices_metadata would wipe the RAID)
    image = {
        "image_source": (site.images / "disk.raw").as_uri(),
        "image_checksum": hashlib.sha256(IMAGE).hexdigest(),
    }
    update = {"automated_clean": False, "instance_info": image}
    site.service.execute(UpdateNode(node_id, update), context=SYSTEM)
    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("provide")), context=SYSTEM)
    assert site.settled(node_id).provision_state == "available"
    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("active")), context=SYSTEM)
    assert site.settled(node_id).provision_state == "wait call-back", site.node(node_id).last_error
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    write_image = next_command(site, node_id, token)
    assert write_image["name"] == "write_image"
    assert write_image["args"]["raid_root"] == UUID


def test_automated_cleaning_that_erases_every_disk_forgets_the_raid(site: Site) -> None:
    node_id = raid_node(site)
    site.service.execute(SetTargetRaidConfig(node_id, {"logical_disks": [ROOT]}), context=SYSTEM)
    token, create = clean_to_create(site, node_id)
    beat(site, node_id, token, succeeded(create, **built()))
    assert site.settled(node_id).raid_config != {}

    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("provide")), context=SYSTEM)
    assert site.settled(node_id).provision_state == "clean wait"
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    beat(site, node_id, token)
    erase = next_command(site, node_id, token)
    assert (erase["name"], erase["args"]) == ("erase_metadata", {"devices": None})
    beat(site, node_id, token, succeeded(erase, devices=["/dev/vda", "/dev/vdb"]))
    node = site.settled(node_id)
    assert node.provision_state == "available", node.last_error
    assert node.raid_config == {}
    assert "RAID configuration was deleted" in site.events(node_id)


def test_a_report_without_a_valid_md_uuid_fails_cleaning_and_records_nothing(
    site: Site,
) -> None:
    node_id = raid_node(site)
    site.service.execute(SetTargetRaidConfig(node_id, {"logical_disks": [ROOT]}), context=SYSTEM)
    token, create = clean_to_create(site, node_id)
    beat(site, node_id, token, succeeded(create, **built(md_uuid="$(reboot)")))
    node = site.settled(node_id)
    assert node.provision_state == "clean failed"
    assert node.last_error is not None
    assert "create_raid_configuration report is not usable" in node.last_error
    assert node.raid_config == {}  # the delete step recorded {}; nothing after it
