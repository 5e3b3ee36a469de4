"""The attack of issue 9, replayed: a project member who owns one node tries to read
the server's secret key through its image source.  Every step is refused or reveals
nothing.

1. ``image_source=file://<state dir>/secret.key`` with a wrong checksum, so that
   ``last_error`` prints the file's digest;
2. a second deploy with that digest, so that the file lands in the image cache;
3. ``GET /images/cache/<predictable name>.raw`` without credentials.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_harness import Api, Client, fault_of
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from metalcast.agent_downloads import PURPOSE, TOKEN_HEADER, UrlSigner
from metalcast.api.app import create_app
from metalcast.boot.http import create_app as create_boot_app
from metalcast.conductor.service import ConductorService, PeriodicIntervals
from metalcast.config import ApiSettings, ConductorSettings, ImagesSettings, Settings
from metalcast.db import repository as repo
from metalcast.db.engine import Database
from metalcast.drivers.direct import DirectDeploy
from metalcast.drivers.fake import FakeBmcState, fake_factories
from metalcast.drivers.hardware import FAKE_HARDWARE
from metalcast.drivers.registry import DriverRegistry
from metalcast.rpc.local import LocalConductorClient
from metalcast.secrecy import SecretBox

IMAGE = b"the administrator's golden image " * 3000


@dataclasses.dataclass
class BootClient:
    """GETs on the boot HTTP application, as a node would send them."""

    client: Client

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.request("GET", path, content=None, headers=headers or {})


@dataclasses.dataclass
class Server:
    api: Api
    boot: BootClient
    settings: Settings
    key_digest: str

    @property
    def member(self) -> Api:
        return self.api.as_("member", "p1")

    @property
    def admin(self) -> Api:
        return self.api.as_("admin")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    state, images = tmp_path / "state", tmp_path / "images"
    images.mkdir()
    (images / "golden.raw").write_bytes(IMAGE)
    settings = Settings(
        state_dir=state,
        api=ApiSettings(auth_strategy="header"),
        # no heartbeat thread here (heartbeat=0): a long test module must not see its
        # conductor die (and the hardware types it serves vanish) after the timeout
        conductor=ConductorSettings(
            hostname="cond-1", sync_power_state_interval=0, heartbeat_timeout=3600
        ),
        images=ImagesSettings(file_roots=(images,)),
    )
    state.mkdir()
    (state / "secret.key").write_bytes(Fernet.generate_key())
    box = SecretBox.from_file(state / "secret.key")
    db = Database(settings.database_url)
    db.migrate()
    supported = {**FAKE_HARDWARE.supported, "deploy": (DirectDeploy,)}
    registry = DriverRegistry(
        [dataclasses.replace(FAKE_HARDWARE, supported=supported)],
        factories=fake_factories(FakeBmcState()),
    )
    service = ConductorService(
        settings,
        db,
        registry,
        box,
        intervals=PeriodicIntervals(power_sync=0, wait_timeouts=0, heartbeat=0),
    )
    service.start()
    app: Starlette = create_app(settings, db, LocalConductorClient(service))
    boot = create_boot_app(
        boot_dir=tmp_path / "boot",
        images_dir=settings.images_dir,
        api_url="http://unused",
        signer=UrlSigner(box.derive_key(PURPOSE)),
    )
    digest = hashlib.sha256((state / "secret.key").read_bytes()).hexdigest()
    yield Server(Api(Client(app), db, service), BootClient(Client(boot)), settings, digest)
    service.stop(5)
    db.dispose()


def node_of_p1(server: Server) -> str:
    uuid: str = server.admin.node(owner="p1")["uuid"]
    with server.api.db.begin() as conn:
        repo.update_node(conn, repo.get_node(conn, uuid).id, {"provision_state": "available"})
    return uuid


def patch_image(api: Api, uuid: str, **info: str) -> Any:
    ops = [{"op": "add", "path": f"/instance_info/{k}", "value": v} for k, v in info.items()]
    return api.patch(f"/v1/nodes/{uuid}", ops)


def deploy(server: Server, uuid: str) -> dict[str, Any]:
    """Deploy as the member; the node once the deploy failed or waits for its agent."""
    response = server.member.put(f"/v1/nodes/{uuid}/states/provision", {"target": "active"})
    assert response.status_code == 202, response.text
    end = time.monotonic() + 15
    while time.monotonic() < end:
        node: dict[str, Any] = server.admin.get(f"/v1/nodes/{uuid}").json()
        if node["provision_state"] in ("deploy failed", "wait call-back"):
            return node
        time.sleep(0.01)
    raise AssertionError("the deploy did not end")


def set_behind_the_api(server: Server, uuid: str, source: str, checksum: str) -> None:
    with server.api.db.begin() as conn:
        node_id = repo.get_node(conn, uuid).id
        info = {"image_source": source, "image_checksum": checksum}
        repo.update_node(conn, node_id, {"instance_info": info, "provision_state": "available"})


def everything_the_member_sees(server: Server, uuid: str) -> str:
    member = server.member
    paths = (
        f"/v1/nodes/{uuid}",
        f"/v1/nodes/{uuid}/history",
        "/v1/nodes/detail",
        f"/v1/nodes/{uuid}/states",
    )
    return "".join(member.get(path).text for path in paths)


def test_the_secret_key_attack_is_refused_at_every_step(server: Server) -> None:
    uuid = node_of_p1(server)
    secret_key = server.settings.state_dir / "secret.key"

    # step 1: the member may not name a local file at all, however it spells it
    for info in (
        {"image_source": secret_key.as_uri(), "image_checksum": "0" * 64},
        {"image_source": str(secret_key), "image_checksum": "0" * 64},
        {"image_source": "https://203.0.113.5/x.raw", "image_checksum": secret_key.as_uri()},
    ):
        refused = patch_image(server.member, uuid, **info)
        assert refused.status_code == 403
        assert "only system administrators may give a local file" in fault_of(refused)
    assert server.admin.get(f"/v1/nodes/{uuid}").json()["instance_info"] == {}

    # even written behind the API's back (or by an administrator), the state
    # directory is never read: a wrong digest learns nothing ...
    set_behind_the_api(server, uuid, secret_key.as_uri(), "0" * 64)
    failed = deploy(server, uuid)
    assert failed["provision_state"] == "deploy failed"
    assert "are never images" in failed["last_error"]
    assert server.key_digest not in everything_the_member_sees(server, uuid)
    # step 2: ... and the right one (had it leaked elsewhere) caches nothing
    set_behind_the_api(server, uuid, secret_key.as_uri(), server.key_digest)
    failed = deploy(server, uuid)
    assert failed["provision_state"] == "deploy failed"
    assert "are never images" in failed["last_error"]
    cache = server.settings.images_dir / "cache"
    key_bytes = secret_key.read_bytes()
    assert not [p for p in cache.rglob("*") if p.is_file() and key_bytes in p.read_bytes()]

    # step 3: the API serves no images, with or without credentials
    name = hashlib.sha256(f"{secret_key.as_uri()}\nsha256:{server.key_digest}".encode())
    guessed = f"/images/cache/{name.hexdigest()[:32]}.raw"
    assert server.api.get(guessed, headers={}).status_code == 401
    assert server.admin.get(guessed).status_code == 404
    # and the boot server only with a URL signed for a node and that node's token
    assert server.boot.get(guessed).status_code == 403
    assert server.boot.get(guessed, headers={TOKEN_HEADER: "guess"}).status_code == 403


def test_a_wrong_checksum_reveals_nothing_of_what_the_source_holds(server: Server) -> None:
    uuid = node_of_p1(server)
    golden = server.settings.images.file_roots[0] / "golden.raw"
    actual = hashlib.sha256(IMAGE).hexdigest()
    # the administrator mistypes the checksum of a local image; the member deploys
    response = patch_image(
        server.admin, uuid, image_source=golden.as_uri(), image_checksum="1" * 64
    )
    assert response.status_code == 200

    failed = deploy(server, uuid)

    assert failed["provision_state"] == "deploy failed"
    assert "does not match the sha256 checksum given" in failed["last_error"]
    assert actual not in everything_the_member_sees(server, uuid)
    assert actual not in server.admin.get(f"/v1/nodes/{uuid}/history").text


def test_a_cached_image_is_not_served_to_whoever_names_it(server: Server) -> None:
    uuid = node_of_p1(server)
    golden = server.settings.images.file_roots[0] / "golden.raw"
    checksum = hashlib.sha256(IMAGE).hexdigest()
    patch_image(server.admin, uuid, image_source=golden.as_uri(), image_checksum=checksum)

    waiting = deploy(server, uuid)

    assert waiting["provision_state"] == "wait call-back", waiting["last_error"]
    command = waiting["driver_internal_info"]["agent_commands"][0]
    path = command["args"]["url"]  # the owner sees the cache's real name ...
    assert path.startswith("/images/cache/")
    plain = hashlib.sha256(f"{golden.as_uri()}\nsha256:{checksum}".encode()).hexdigest()[:32]
    assert plain not in path  # ... which nobody could have guessed
    # ... and still cannot download it: no signature, no token
    assert server.boot.get(path).status_code == 403
    forged = f"{path}?node={uuid}&expires=9999999999&sig={'0' * 64}"
    assert server.boot.get(forged, headers={TOKEN_HEADER: "guess"}).status_code == 403
    # while its agent, with the token from its lookup, can
    token = server.api.get(f"/v1/lookup?node_uuid={uuid}").json()["config"]["agent_token"]
    beat = server.api.post(f"/v1/heartbeat/{uuid}", {"agent_token": token})
    signed = beat.json()["command"]["args"]["url"]
    got = server.boot.get(signed, headers={TOKEN_HEADER: token})
    assert (got.status_code, got.content) == (200, IMAGE)
