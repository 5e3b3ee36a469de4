"""No secret comes back from a real ``metalcast server``, whatever path it takes.

One server, every secret-bearing path: BMC passwords nested and not strings, an IPMI
node on a virtual BMC whose deploy fails downloading an ``image_source`` (and a
checksum URL) with a password in it, a config drive with user data and an admin
password, a rescue password, a Redfish address with credentials, an allocation's and a
deploy template's secrets.  Every response
body is collected and searched for every secret (as is, JSON-escaped, base64); the
server's logs and database files are searched when it stops (``conftest``).  And
the conductor still has the real values to give its drivers.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from secret_scan import forms, leaks, register

from metalcast.db import allocations, repository
from metalcast.db.engine import Database
from metalcast.lab.bmc.fleet import Fleet, simulated_machines
from metalcast.secrecy import SecretBox

IPMI_PASSWORD = "Ipmi-Lab-Pass-71c2"
NESTED_PASSWORD = "Nested-Bmc-Pass-8d3e"
NUMERIC_KEY = 604938271650  # a secret that is not a string
IMAGE_PASSWORD = "Image-Mirror-Pass-2a9f"
CHECKSUM_PASSWORD = "Checksum-Pass-5b8c"
USER_DATA_SECRET = "User-Data-Pass-6e1d"
ADMIN_PASS = "Admin-Pass-9f4a"
RESCUE_PASSWORD = "Rescue-Pass-3c7b"
REDFISH_PASSWORD = "Redfish-Addr-Pass-1e5f"
ALLOCATION_TOKEN = "Allocation-Token-4d2b"
TEMPLATE_PASSWORD = "Template-Bios-Pass-7a1c"
SECRETS = (
    IPMI_PASSWORD,
    NESTED_PASSWORD,
    str(NUMERIC_KEY),
    IMAGE_PASSWORD,
    CHECKSUM_PASSWORD,
    USER_DATA_SECRET,
    ADMIN_PASS,
    RESCUE_PASSWORD,
    REDFISH_PASSWORD,
    ALLOCATION_TOKEN,
    TEMPLATE_PASSWORD,
)
register(*SECRETS)

# the newest version: every field is shown, and config drives may be objects (1.56)
HEADERS = {"X-OpenStack-Ironic-API-Version": "latest"}
SERVER_ENV = {
    # boot files are written, no dnsmasq runs: the deploy fails before any boot
    "METALCAST_BOOT__ENABLED": "true",
    "METALCAST_BOOT__NETNS": "mc-none-secrets",
    "METALCAST_CONDUCTOR__SYNC_POWER_STATE_INTERVAL": "0",
    "METALCAST_CONDUCTOR__BMC_POLL_INTERVAL": "0.1",
    "METALCAST_CONDUCTOR__BMC_CALL_TIMEOUT": "5",
}


class Recorder:
    """An API client that keeps every response body it received."""

    def __init__(self, url: str) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.client = httpx.Client(
            base_url=url, headers=HEADERS, timeout=60, event_hooks={"response": [self._keep]}
        )

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.bodies.append((f"{response.request.method} {response.request.url}", response.content))

    def __call__(self, method: str, path: str, body: Any = None, *, ok: bool = True) -> Any:
        response = self.client.request(method, path, json=body)
        if ok:
            assert response.status_code < 300, (path, response.text)
        return response.json() if response.content else None

    def settle(self, node: str, *, timeout: float = 90) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown: dict[str, Any] = self("GET", f"/v1/nodes/{node}")
            if shown["target_provision_state"] is None and shown["reservation"] is None:
                return shown
            time.sleep(0.1)
        raise AssertionError(f"node {node} did not settle: {self('GET', f'/v1/nodes/{node}')}")

    def move(self, node: str, target: str, **args: Any) -> dict[str, Any]:
        self("PUT", f"/v1/nodes/{node}/states/provision", {"target": target, **args})
        return self.settle(node)

    def read_everything(self, node: str) -> None:
        for path in ("", "/states", "/validate", "/history?detail=True", "/ports"):
            self("GET", f"/v1/nodes/{node}{path}", ok=False)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(start_metalcast_server: Callable[..., Any]) -> Iterator[Any]:
    with start_metalcast_server(env=SERVER_ENV) as running:
        yield running


@pytest.fixture
def bmc() -> Iterator[Fleet]:
    with Fleet(simulated_machines(1, prefix="secrets"), ipmi=True, password=IPMI_PASSWORD) as fleet:
        yield fleet


def test_no_response_shows_a_secret_on_any_path(server: Any, bmc: Fleet) -> None:
    api = Recorder(server.url)
    _fake_node_with_nested_credentials_and_a_rescue(api)
    _allocation_and_deploy_template_with_secrets(api)
    _ipmi_deploy_failing_on_an_image_url_with_a_password(api, bmc)
    _redfish_address_with_credentials(api)
    for node in ("nested", "deployer", "redfish"):
        api.read_everything(node)
    api("GET", "/v1/nodes/detail")
    api("GET", "/v1/ports/detail")
    api.client.close()

    leaked = [
        (where, secret[:4], how)
        for where, body in api.bodies
        for secret in SECRETS
        for how, pattern in forms(secret).items()
        if pattern in body
    ]
    assert leaked == []
    assert len(api.bodies) > 40

    _conductor_still_has_the_real_values(server)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=90) == 0
    # the server logged the failures while it held the secrets: masked
    assert "mirror:******@127.0.0.1" in server.logs()
    assert leaks(server.files(), SECRETS) == []


def _fake_node_with_nested_credentials_and_a_rescue(api: Recorder) -> None:
    driver_info = {
        "ipmi_username": "admin",
        "bmc": {"auth": {"password": NESTED_PASSWORD}, "snmp_auth_key": NUMERIC_KEY},
        "fake_fail": "validate",
    }
    created = api("POST", "/v1/nodes", {"name": "nested", "driver": "fake-hardware",
                                         "driver_info": driver_info})  # fmt: skip
    assert created["driver_info"]["bmc"] == {"auth": {"password": "******"},
                                              "snmp_auth_key": "******"}  # fmt: skip
    # a failing verification: its last_error is recorded while the secrets are loaded
    assert api.move("nested", "manage")["provision_state"] == "enroll"
    api("PATCH", "/v1/nodes/nested",
        [{"op": "replace", "path": "/driver_info/fake_fail", "value": ""}])  # fmt: skip
    for target in ("manage", "provide", "active"):
        api.move("nested", target)
    rescued = api.move("nested", "rescue", rescue_password=RESCUE_PASSWORD)
    assert rescued["provision_state"] == "rescue"
    assert rescued["instance_info"]["hashed_rescue_password"] == "******"
    assert "rescue_password" not in rescued["instance_info"]
    api.read_everything("nested")
    assert api.move("nested", "unrescue")["provision_state"] == "active"


def _allocation_and_deploy_template_with_secrets(api: Recorder) -> None:
    extra = {"switch": {"auth_token": ALLOCATION_TOKEN}}
    made = api("POST", "/v1/allocations", {"name": "held", "node": "nested", "extra": extra})
    assert (made["state"], made["extra"]) == ("active", {"switch": {"auth_token": "******"}})
    api("PATCH", "/v1/allocations/held", [{"op": "add", "path": "/extra/rack", "value": "r1"}])
    api("GET", "/v1/allocations")
    api("GET", "/v1/nodes/nested/allocation")
    step = {"interface": "bios", "step": "apply_configuration", "priority": 150,
            "args": {"settings": [], "admin_password": TEMPLATE_PASSWORD}}  # fmt: skip
    template = api("POST", "/v1/deploy_templates", {"name": "CUSTOM_BIOS", "steps": [step]})
    assert template["steps"][0]["args"]["admin_password"] == "******"
    api("GET", "/v1/deploy_templates?detail=True")
    runbook_step = {k: v for k, v in step.items() if k != "priority"} | {"order": 1}
    runbook = api("POST", "/v1/runbooks", {"name": "CUSTOM_BIOS_RB", "steps": [runbook_step]})
    assert runbook["steps"][0]["args"]["admin_password"] == "******"
    api("GET", "/v1/runbooks?detail=True")


def _ipmi_deploy_failing_on_an_image_url_with_a_password(api: Recorder, bmc: Fleet) -> None:
    nowhere = f"127.0.0.1:{closed_port()}"
    image = f"http://mirror:{IMAGE_PASSWORD}@{nowhere}/os.raw"
    checksum = f"http://sums:{CHECKSUM_PASSWORD}@{nowhere}/SHA256SUMS"
    info = bmc.bmcs[0].driver_info(username=bmc.username, password=bmc.password)
    uuid = api("POST", "/v1/nodes", {"name": "deployer", "driver": "ipmi", "driver_info": info,
                                     "automated_clean": False})["uuid"]  # fmt: skip
    api("POST", "/v1/ports", {"address": "52:54:00:5e:c0:01", "node_uuid": uuid})
    assert api.move("deployer", "manage")["provision_state"] == "manageable"
    assert api.move("deployer", "provide")["provision_state"] == "available"
    shown = api("PATCH", "/v1/nodes/deployer", [
        {"op": "add", "path": "/instance_info/image_source", "value": image},
        {"op": "add", "path": "/instance_info/image_checksum", "value": checksum},
    ])  # fmt: skip
    assert shown["instance_info"]["image_source"] == f"http://mirror:******@{nowhere}/os.raw"
    drive = {
        "user_data": f"#cloud-config\nchpasswd: {{list: 'root:{USER_DATA_SECRET}'}}\n",
        "meta_data": {"hostname": "deployer", "admin_pass": ADMIN_PASS},
    }
    failed = api.move("deployer", "active", configdrive=drive)
    assert failed["provision_state"] == "deploy failed"
    assert f"mirror:******@{nowhere}" in failed["last_error"] or (
        f"sums:******@{nowhere}" in failed["last_error"]
    ), failed["last_error"]
    assert failed["instance_info"]["configdrive"] == "******"


def _redfish_address_with_credentials(api: Recorder) -> None:
    address = f"http://bmc:{REDFISH_PASSWORD}@127.0.0.1:{closed_port()}"
    info = {"redfish_address": address, "redfish_username": "bmc",
            "redfish_password": REDFISH_PASSWORD}  # fmt: skip
    api("POST", "/v1/nodes", {"name": "redfish", "driver": "redfish", "driver_info": info})
    failed = api.move("redfish", "manage")
    assert failed["provision_state"] == "enroll"
    assert failed["last_error"]
    assert failed["driver_info"]["redfish_address"].startswith("http://bmc:******@127.0.0.1:")


def _conductor_still_has_the_real_values(server: Any) -> None:
    box = SecretBox.from_file(server.state_dir / "secret.key")
    db = Database(f"sqlite:///{server.state_dir / 'metalcast.sqlite'}")
    try:
        with db.read() as conn:
            nested = box.reveal(repository.get_node(conn, "nested").driver_info)
            deployer = box.reveal(repository.get_node(conn, "deployer").instance_info)
            held = box.reveal(allocations.get_allocation(conn, "held").extra)
    finally:
        db.dispose()
    assert nested["bmc"] == {"auth": {"password": NESTED_PASSWORD}, "snmp_auth_key": NUMERIC_KEY}
    assert deployer["image_source"].startswith(f"http://mirror:{IMAGE_PASSWORD}@127.0.0.1:")
    assert deployer["configdrive"]["meta_data"]["admin_pass"] == ADMIN_PASS
    assert held["switch"] == {"auth_token": ALLOCATION_TOKEN}
