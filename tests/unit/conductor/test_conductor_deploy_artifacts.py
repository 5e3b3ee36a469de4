"""The direct deploy's artifacts: the agent token, the signed download URLs, who set
the image, and the config drive, which leaves on every way out of the deploy."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from conductor_env import ALICE, DEADLINE
from cryptography.fernet import Fernet

from metalcast.agent_downloads import DownloadRefused
from metalcast.calls import (
    AgentHeartbeat,
    AgentLookup,
    ChangeProvisionState,
    CreateNode,
    DestroyNode,
    ProvisionRequest,
    SetMaintenance,
    UpdateNode,
)
from metalcast.conductor.clock import ManualClock
from metalcast.conductor.runtime import RetryPolicy
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import ConductorSettings, ImagesSettings, Settings
from metalcast.context import SYSTEM, RequestContext
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.db.models import Node
from metalcast.drivers.direct import DirectDeploy
from metalcast.drivers.fake import FakeBmcState, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.errors import Forbidden
from metalcast.reports import AgentReport
from metalcast.secrecy import SecretBox
from metalcast.states import STABLE, WAIT, ProvisionState

ADMIN = SYSTEM
IMAGE = b"a whole-disk image " * 5000
USER_DATA = "#cloud-config\npassword: hunter2\n"


@dataclasses.dataclass
class Site:
    """A conductor whose fake hardware deploys through the agent (``direct``)."""

    service: ConductorService
    db: Database
    clock: ManualClock
    images: Path
    state: Path
    make: Any

    @property
    def drives(self) -> Path:
        store = self.service.rt.configdrives
        assert store is not None
        return store.root

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

    def drive_files(self) -> list[Path]:
        return sorted(self.drives.rglob("*"))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    state, images = tmp_path / "state", tmp_path / "images"
    images.mkdir()
    (images / "disk.raw").write_bytes(IMAGE)
    settings = Settings(
        state_dir=state,
        conductor=ConductorSettings(
            hostname="conductor-1", node_locked_retry_attempts=1, node_locked_retry_interval=0
        ),
        images=ImagesSettings(file_roots=(images,), agent_url_ttl=300),
    )
    db = Database(settings.database_url)
    db.migrate()
    box = SecretBox(Fernet.generate_key())
    clock = ManualClock()
    supported = dict(FAKE_HARDWARE.supported)
    supported["deploy"] = (*supported["deploy"], DirectDeploy)
    registry = DriverRegistry(
        [dataclasses.replace(FAKE_HARDWARE, supported=supported)],
        factories=fake_factories(FakeBmcState()),
    )
    services: list[ConductorService] = []

    def make() -> ConductorService:
        service = ConductorService(
            settings,
            db,
            registry,
            box,
            clock=clock,
            intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0),
            retry=RetryPolicy(attempts=1, backoff=0),
        )
        service.start()
        services.append(service)
        return service

    yield Site(make(), db, clock, images, state, make)
    for service in services:
        if service.started:
            service.stop(timeout=DEADLINE)
    db.dispose()


def image_info(site: Site, data: bytes = IMAGE) -> dict[str, str]:
    return {
        "image_source": (site.images / "disk.raw").as_uri(),
        "image_checksum": hashlib.sha256(data).hexdigest(),
    }


def waiting_deploy(site: Site, *, by: RequestContext = ADMIN) -> int:
    """A node of the direct deploy, its image set by ``by``, deployed with a config
    drive by an administrator: waiting for its agent."""
    values = {"driver": "fake-hardware", "deploy_interface": "direct"}
    node = site.service.execute(
        CreateNode({**values, "provision_state": "available"}), context=ADMIN
    )
    site.service.execute(UpdateNode(node.id, {"instance_info": image_info(site)}), context=by)
    drive = {"meta_data": {"hostname": "web-1"}, "user_data": USER_DATA}
    request = ProvisionRequest("active", configdrive=drive)
    site.service.execute(ChangeProvisionState(node.id, request), context=ADMIN)
    return node.id


def beat(site: Site, node_id: int, token: str | None, *results: dict[str, Any]) -> dict[str, Any]:
    report = AgentReport(token=token, agent_version="metalcast-agent", results=results)
    reply = site.service.execute(AgentHeartbeat(node_id, report), context=SYSTEM)
    site.settled(node_id)  # what the heartbeat set going in a worker is done
    return reply


def succeeded(command: dict[str, Any], **result: Any) -> dict[str, Any]:
    return {"id": command["id"], "name": command["name"], "status": "succeeded", "result": result}


def assert_no_drive(site: Site) -> None:
    assert site.drive_files() == []


# -------------------------------------------------------------------- a good deploy


def test_the_config_drive_waits_privately_then_goes_once_written(site: Site) -> None:
    node_id = waiting_deploy(site)
    node = site.settled(node_id)
    assert node.provision_state == "wait call-back", node.last_error
    (iso,) = [p for p in site.drive_files() if p.is_file()]
    assert node.uuid not in str(iso)  # the directory's name is keyed, not the UUID
    assert stat.S_IMODE(iso.stat().st_mode) == 0o600
    assert stat.S_IMODE(iso.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(site.drives.stat().st_mode) == 0o700

    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    write_image = beat(site, node_id, token)["command"]
    assert write_image["name"] == "write_image"
    write_drive = beat(site, node_id, token, succeeded(write_image, device="/dev/vda"))
    assert write_drive["command"]["name"] == "write_configdrive"
    assert site.drive_files() != []  # still there until the agent wrote it
    beat(site, node_id, token, succeeded(write_drive["command"], device="/dev/vda"))

    assert site.settled(node_id).provision_state == "active"
    assert_no_drive(site)


def test_the_conductor_that_prepared_the_ramdisk_boot_is_recorded(site: Site) -> None:
    node = site.settled(waiting_deploy(site))
    with site.db.read() as conn:
        me = repo.get_conductor(conn, "conductor-1")
    assert node.conductor_affinity == me.id  # whose boot services a takeover replaces


def test_download_urls_are_signed_for_the_node_and_its_token_only(site: Site) -> None:
    node_id = waiting_deploy(site)
    uuid = site.settled(node_id).uuid
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    command = beat(site, node_id, token)["command"]
    url = urlsplit(command["args"]["url"])
    signer = site.service.rt.signer
    assert signer is not None
    assert url.path.startswith("/images/cache/") and not url.netloc  # relative: the boot server
    query = parse_qs(url.query)
    assert query["node"] == [uuid]
    now = site.clock.now().replace(tzinfo=UTC).timestamp()
    assert int(query["expires"][0]) == int(now + 300)
    # the boot server compares with its wall clock, whatever the local time zone
    assert abs(int(query["expires"][0]) - (time.time() + 300)) < 60
    signer.check(url.path, query, token=token, now=now)
    with pytest.raises(DownloadRefused):
        signer.check(url.path, query, token="another node's token", now=now)
    with pytest.raises(DownloadRefused, match="expired"):
        signer.check(url.path, query, token=token, now=now + 301)
    # what is stored is the plain path: nothing that works without a fresh signature
    queued = site.node(node_id).driver_internal_info["agent_commands"][0]["args"]["url"]
    assert queued == url.path


# ------------------------------------------------------------------------- tokens


def test_a_token_is_handed_out_once_and_only_its_node_accepts_it(site: Site) -> None:
    first, second = waiting_deploy(site), waiting_deploy(site)
    site.settled(first), site.settled(second)
    token_a = site.service.execute(AgentLookup(first), context=SYSTEM)
    assert site.service.execute(AgentLookup(first), context=SYSTEM) == "******"

    with pytest.raises(Forbidden, match="needs the agent token"):
        beat(site, second, token_a)  # node B has no token yet: A's is no use
    token_b = site.service.execute(AgentLookup(second), context=SYSTEM)
    with pytest.raises(Forbidden, match="Wrong agent token"):
        beat(site, second, token_a)  # nor once it has one
    with pytest.raises(Forbidden, match="needs the agent token"):
        beat(site, first, None)  # and without any, once one was issued
    assert beat(site, second, token_b)["command"]["name"] == "write_image"


def test_a_tokenless_heartbeat_is_refused_while_the_deploy_waits_for_its_agent(
    site: Site,
) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    with pytest.raises(Forbidden):
        beat(site, node_id, None)  # before any lookup: metalcast's agent looks up first
    assert "agent_last_heartbeat" not in site.node(node_id).driver_internal_info


# ---------------------------------------------------- every other way out of a deploy


def test_an_agent_failure_removes_the_config_drive(site: Site) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    token = site.service.execute(AgentLookup(node_id), context=SYSTEM)
    command = beat(site, node_id, token)["command"]
    failed = {**succeeded(command), "status": "failed", "error": "disk on fire"}
    beat(site, node_id, token, failed)
    assert site.settled(node_id).provision_state == "deploy failed"
    assert_no_drive(site)


def test_an_abort_removes_the_config_drive(site: Site) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    assert site.drive_files() != []
    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("abort")), context=ADMIN)
    assert site.settled(node_id).provision_state == "deploy failed"
    assert_no_drive(site)


def test_a_timed_out_wait_removes_the_config_drive(site: Site) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    site.clock.advance(3600)
    assert site.service.check_wait_timeouts() == 1
    assert site.settled(node_id).provision_state == "deploy failed"
    assert_no_drive(site)


def test_a_failure_after_the_drive_was_built_removes_it(site: Site) -> None:
    values = {"driver": "fake-hardware", "deploy_interface": "direct"}
    node = site.service.execute(
        CreateNode({**values, "provision_state": "available"}), context=ADMIN
    )
    info = {"fake_fail": "power"}  # the reboot into the ramdisk fails, after the build
    site.service.execute(
        UpdateNode(node.id, {"instance_info": image_info(site), "driver_info": info}), context=ADMIN
    )
    request = ProvisionRequest("active", configdrive={"user_data": USER_DATA})
    site.service.execute(ChangeProvisionState(node.id, request), context=ADMIN)
    failed = site.settled(node.id)
    assert failed.provision_state == "deploy failed", failed.last_error
    assert_no_drive(site)


def test_a_conductor_restart_that_fails_the_deploy_removes_the_config_drive(
    site: Site,
) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    # the conductor died while deploying: the node is locked by it, mid-work
    with site.db.begin() as conn:
        repo.update_node(conn, node_id, {"provision_state": "deploying"})
        assert repo.reserve_node(conn, node_id, "conductor-1") is None
    site.service.stop(timeout=DEADLINE)
    site.make()  # its next start recovers the node
    recovered = site.node(node_id)
    assert recovered.provision_state == "deploy failed"
    assert "restarted" in (recovered.last_error or "")
    assert_no_drive(site)


def test_undeploy_removes_whatever_config_drive_is_left(site: Site) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("abort")), context=ADMIN)
    site.settled(node_id)
    store = site.service.rt.configdrives
    assert store is not None
    stale = store.directory(site.node(node_id).uuid)
    stale.mkdir()
    (stale / "configdrive.iso").write_bytes(USER_DATA.encode())  # say, a crash left it
    site.service.execute(ChangeProvisionState(node_id, ProvisionRequest("deleted")), context=ADMIN)
    site.settled(node_id)
    assert_no_drive(site)


def test_deleting_the_node_removes_its_config_drive(site: Site) -> None:
    node_id = waiting_deploy(site)
    site.settled(node_id)
    site.service.execute(SetMaintenance(node_id, True, reason="gone"), context=ADMIN)
    site.service.execute(DestroyNode(node_id), context=ADMIN)
    assert_no_drive(site)


# ------------------------------------------------------------------ who set the image


def test_a_local_image_set_by_a_non_administrator_is_never_read(site: Site) -> None:
    node_id = waiting_deploy(site, by=ALICE)
    failed = site.settled(node_id)
    assert failed.provision_state == "deploy failed"
    assert "only system administrators may give a local file" in (failed.last_error or "")
    assert failed.driver_internal_info["tenant_sources"] == ["image_checksum", "image_source"]
    assert_no_drive(site)


def test_an_administrator_setting_the_image_again_makes_it_trusted(site: Site) -> None:
    values = {"driver": "fake-hardware", "deploy_interface": "direct"}
    node = site.service.execute(
        CreateNode({**values, "provision_state": "available"}), context=ADMIN
    )
    site.service.execute(UpdateNode(node.id, {"instance_info": image_info(site)}), context=ALICE)
    changed = {**image_info(site), "image_source": (site.images / "other.raw").as_uri()}
    site.service.execute(UpdateNode(node.id, {"instance_info": changed}), context=ADMIN)
    assert site.node(node.id).driver_internal_info["tenant_sources"] == ["image_checksum"]
    site.service.execute(UpdateNode(node.id, {"instance_info": {}}), context=ADMIN)
    assert "tenant_sources" not in site.node(node.id).driver_internal_info


def test_a_config_drive_url_given_by_a_non_administrator_may_not_reach_loopback(
    site: Site,
) -> None:
    values = {"driver": "fake-hardware", "deploy_interface": "direct"}
    node = site.service.execute(
        CreateNode({**values, "provision_state": "available"}), context=ADMIN
    )
    site.service.execute(UpdateNode(node.id, {"instance_info": image_info(site)}), context=ADMIN)
    request = ProvisionRequest("active", configdrive="http://127.0.0.1:6385/v1/nodes")
    site.service.execute(ChangeProvisionState(node.id, request), context=ALICE)
    failed = site.settled(node.id)
    assert failed.provision_state == "deploy failed"
    assert "may not reach loopback" in (failed.last_error or "")
    assert failed.driver_internal_info["tenant_sources"] == ["configdrive"]


def test_a_start_removes_config_drives_no_deploy_waits_for(site: Site) -> None:
    waiting = waiting_deploy(site)
    site.settled(waiting)
    store = site.service.rt.configdrives
    assert store is not None
    kept = store.directory(site.node(waiting).uuid)
    # left by a process killed at the wrong moment, or named under an older key
    orphan = store.root / ("0" * 32)
    orphan.mkdir()
    (orphan / "configdrive.iso").write_bytes(USER_DATA.encode())
    old = time.time() - 60
    os.utime(orphan, (old, old))
    os.utime(kept, (old, old))

    site.service.stop(timeout=DEADLINE)
    site.make()

    assert not orphan.exists()
    assert (kept / "configdrive.iso").is_file()  # its deploy still waits for the agent
