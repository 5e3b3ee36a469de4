"""What ``metalcast host create`` checks before it takes anything: host name, SSH key,
user data, and the config drive it builds from them; and ``allocation create``'s body."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from metalcast.cli.allocations import create_body
from metalcast.cli.client import MAX_VERSION_HEADER, ApiClient, CliError
from metalcast.cli.hosts import Host, check_hostname, config_drive, read_ssh_key, read_user_data
from metalcast.errors import MetalcastError

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0Yx1uVwYm0dJ3J2x1k7q7c1jY2o4aN0dE9w7g4aN0d me@laptop"


@pytest.mark.parametrize("name", ["web-1", "web-1.example.com", "a" * 63, "x.y."])
def test_valid_host_names(name: str) -> None:
    assert check_hostname(name) == name.rstrip(".")


@pytest.mark.parametrize("name", ["-web", "web-", "we_b", "a" * 64, "a..b", "", "web 1"])
def test_invalid_host_names_say_what_a_host_name_is(name: str) -> None:
    with pytest.raises(MetalcastError, match="is not a valid host name: use labels of letters"):
        check_hostname(name)


def test_an_ssh_key_is_given_as_itself_or_as_its_file(tmp_path: Path) -> None:
    assert read_ssh_key(KEY) == KEY
    pub = tmp_path / "id_ed25519.pub"
    pub.write_text(KEY + "\n")
    assert read_ssh_key(str(pub)) == KEY


def test_a_private_key_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "id_ed25519"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n")
    with pytest.raises(CliError, match="is a private key: give the public one"):
        read_ssh_key(str(private))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("/no/such/key.pub", "no such file, or not an OpenSSH public key"),
        ("hello", "is neither an OpenSSH public key"),
        ("ssh-ed25519", "is neither an OpenSSH public key"),
    ],
)
def test_what_is_not_a_public_key_is_refused(value: str, message: str) -> None:
    with pytest.raises(CliError, match=message):
        read_ssh_key(value)


def test_user_data_is_read_from_its_file(tmp_path: Path) -> None:
    assert read_user_data(None) is None
    data = tmp_path / "user-data"
    data.write_text("#cloud-config\nruncmd: [true]\n")
    assert read_user_data(data) == "#cloud-config\nruncmd: [true]\n"
    with pytest.raises(CliError, match="cannot be read"):
        read_user_data(tmp_path / "missing")


def test_the_config_drive_carries_hostname_key_and_user_data() -> None:
    assert config_drive(hostname="web-1", ssh_key=KEY, user_data="#!/bin/sh\n") == {
        "meta_data": {"hostname": "web-1", "public_keys": {"default": KEY}},
        "user_data": "#!/bin/sh\n",
    }
    assert "user_data" not in config_drive(hostname="web-1", ssh_key=KEY, user_data=None)


def test_allocation_create_sends_only_what_was_given() -> None:
    body = create_body(
        resource_class="gold", traits=["CUSTOM_A"], candidates=[], name=None, owner=None, node=None
    )
    assert body == {"resource_class": "gold", "traits": ["CUSTOM_A"]}
    backfill = create_body(
        resource_class=None, traits=[], candidates=[], name="a", owner=None, node="n1"
    )
    assert backfill == {"name": "a", "node": "n1"}
    with pytest.raises(CliError, match="give --resource-class"):
        create_body(resource_class=None, traits=[], candidates=[], name=None, owner=None, node=None)


# ------------------------------------------------------- giving back what was taken


class ScriptedApi:
    """An API answering each request from a script, recording what was asked."""

    def __init__(self, answers: dict[str, httpx.Response]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        key = f"{request.method} {request.url.path}"
        self.asked.append(key)
        if request.url.path == "/v1":
            return httpx.Response(200, json={}, headers={MAX_VERSION_HEADER: "1.60"})
        return self.answers.get(key) or httpx.Response(204)


def fault(status: int, message: str) -> httpx.Response:
    inner = json.dumps({"faultstring": message, "faultcode": "Client", "debuginfo": None})
    return httpx.Response(status, json={"error_message": inner})


def test_a_refused_deploy_gives_the_image_and_the_allocation_back() -> None:
    node = "/v1/nodes/1be26c0e-1f4a-4a44-a8a3-4d4fb0b6f5d2"
    allocation = {"uuid": "0e8c4a08-2f8b-4f6c-9e10-1d1f0e0a7c11", "name": "web-1"}
    api = ScriptedApi(
        {
            "POST /v1/allocations": httpx.Response(201, json={**allocation, "state": "allocating"}),
            f"GET /v1/allocations/{allocation['uuid']}": httpx.Response(
                200, json={**allocation, "state": "active", "node_uuid": node.rsplit("/")[-1]}
            ),
            f"PATCH {node}": httpx.Response(200, json={}),
            f"GET {node}": httpx.Response(200, json={"provision_state": "available"}),
            f"PUT {node}/states/provision": fault(400, "Node is in maintenance"),
        }
    )
    client = ApiClient("http://metalcast.test", transport=httpx.MockTransport(api.handle))
    host = Host(client, label="web-1")
    host.allocate({"resource_class": "gold", "name": "web-1"}, timeout=5)
    drive = config_drive(hostname="web-1", ssh_key=KEY, user_data=None)
    with pytest.raises(CliError) as refused:
        host.deploy(image="http://x/img.raw", checksum="ab" * 32, drive=drive)
    assert refused.value.message == (
        "host web-1 not created: Node is in maintenance; allocation web-1 deleted"
    )
    assert api.asked[-2:] == [f"PATCH {node}", f"DELETE /v1/allocations/{allocation['uuid']}"]
