"""The dashboard's CSV import, deploy form, console and conductors pages on the real
app (builtin users, a real database, the in-process conductor): all or nothing
imports, the refusals (CSRF, Origin, size, another tenant's node), user data never
shown again, hostile names escaped."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from api_harness import Api
from identity_harness import ADMIN_PASSWORD, PASSWORD, admin, make_node, project, user

from metalcast import cloud_init
from metalcast.api.dashboard.enrolment import MAX_CSV_BYTES, MAX_UPLOAD_BYTES

HOSTILE = '<img src=x onerror="alert(1)">'
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0Yx1uVwYm0dJ3J2x1k7q7c1jY2o4aN0dE9w7g4aN0d me@laptop"
SECRET = "#cloud-config\npassword: hunter2-the-secret\n"
HEADER = "name,driver,bmc_address,mac,cpus\n"


class Session:
    """A logged-in browser: cookies kept, CSRF token at hand."""

    def __init__(self, api: Api) -> None:
        self.api = Api(api.client, api.db, api.service, None, {})
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        response = self.api.request(method, path, raw=raw, headers=sent, version=None)
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return response

    def form(self, path: str, values: dict[str, Any], **headers: str) -> httpx.Response:
        raw = urlencode(values, doseq=True).encode()
        sent = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        return self.request("POST", path, raw=raw, headers=sent)

    def upload(self, text: bytes, *, csrf: str | None = None, **headers: str) -> httpx.Response:
        boundary = "metalcast-test-boundary"
        token = self.csrf if csrf is None else csrf
        raw = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="csv"; filename="n.csv"\r\n'
                "Content-Type: text/csv\r\n\r\n"
            ).encode()
            + text
            + f"\r\n--{boundary}--\r\n".encode()
        )
        sent = {"Content-Type": f"multipart/form-data; boundary={boundary}", **headers}
        return self.request("POST", "/dashboard/import", raw=raw, headers=sent)

    @property
    def csrf(self) -> str:
        return self.cookies["metalcast_csrf"]

    def log_in(self, name: str, password: str) -> None:
        self.request("GET", "/dashboard/login")
        values = {"csrf": self.csrf, "username": name, "password": password, "next": "/dashboard"}
        assert self.form("/dashboard/login", values).status_code == 303


@pytest.fixture
def world(builtin: Api) -> dict[str, Any]:
    """alice manages team-a, which owns a-1; b-1 is team-b's."""
    root = admin(builtin)
    team_a, team_b = project(builtin, "team-a"), project(builtin, "team-b")
    user(builtin, "alice", ("manager", team_a))
    mine = make_node(root, name="a-1", owner=team_a.uuid)
    theirs = make_node(root, name="b-1", owner=team_b.uuid)
    alice = Session(builtin)
    alice.log_in("alice", PASSWORD)
    return {"root": root, "alice": alice, "mine": mine, "theirs": theirs}


def _names(root: Api) -> set[str]:
    return {n["name"] for n in root.get("/v1/nodes").json()["nodes"]}


def test_a_csv_with_bad_rows_shows_each_rows_error_and_creates_nothing(world: dict) -> None:
    alice, root = world["alice"], world["root"]
    csv = HEADER + (
        "good-1,fake-hardware,10.0.0.1,52:54:00:00:00:01,4\n"
        "bad-mac,fake-hardware,10.0.0.2,not-a-mac,4\n"
        "bad-cpus,fake-hardware,10.0.0.3,,many\n"
        "good-1,fake-hardware,10.0.0.4,,\n"
    )
    response = alice.upload(csv.encode())
    assert response.status_code == 400
    assert "Nothing was imported" in response.text
    for line, text in ((3, "not a valid MAC address"), (4, "is not a whole number")):
        assert f'data-row="{line}"' in response.text and text in response.text
    assert "already used by row 2" in response.text
    assert _names(root) == {"a-1", "b-1"}


def test_a_name_taken_by_an_existing_node_refuses_the_whole_file(world: dict) -> None:
    alice, root = world["alice"], world["root"]
    response = alice.upload(
        (HEADER + "new-1,fake-hardware,10.0.0.1,,\na-1,fake-hardware,x,,\n").encode()
    )
    assert response.status_code == 400
    assert "name is already used by node" in response.text
    assert _names(root) == {"a-1", "b-1"}


def _administrator(world: dict[str, Any]) -> Session:
    session = Session(world["root"])
    session.log_in("admin", ADMIN_PASSWORD)
    return session


def test_a_good_csv_creates_every_node_with_its_ports(world: dict) -> None:
    root = world["root"]
    csv = HEADER + (
        "web-1,fake-hardware,10.0.0.1,52:54:00:00:00:11;52:54:00:00:00:12,8\n"
        "web-2,fake-hardware,10.0.0.2,,\n"
    )
    response = _administrator(world).upload(csv.encode())
    assert response.status_code == 200, response.text
    assert "2 node(s) created" in response.text
    assert {"web-1", "web-2"} <= _names(root)
    web = root.get("/v1/nodes/web-1").json()
    ports = root.get(f"/v1/ports?node={web['uuid']}").json()["ports"]
    assert sorted(p["address"] for p in ports) == ["52:54:00:00:00:11", "52:54:00:00:00:12"]


def test_a_row_the_api_refuses_undoes_the_rows_created_before_it(world: dict) -> None:
    root = world["root"]
    hostile = HOSTILE.replace('"', "")
    csv = (
        HEADER + f"web-1,fake-hardware,10.0.0.1,52:54:00:00:00:21,8\n{hostile},fake-hardware,x,,\n"
    )
    response = _administrator(world).upload(csv.encode())
    assert response.status_code == 400
    assert hostile not in response.text and "&lt;img src=x" in response.text
    assert "created before row 3 were deleted again" in response.text
    assert _names(root) == {"a-1", "b-1"}
    assert root.get("/v1/ports").json()["ports"] == []


def test_a_tenant_the_api_refuses_creates_nothing(world: dict) -> None:
    response = world["alice"].upload((HEADER + "web-1,fake-hardware,10.0.0.1,,\n").encode())
    assert response.status_code == 400
    assert 'data-row="2"' in response.text
    assert _names(world["root"]) == {"a-1", "b-1"}


def test_uploads_are_refused_without_csrf_from_another_site_or_too_large(world: dict) -> None:
    alice, root = world["alice"], world["root"]
    good = (HEADER + "web-9,fake-hardware,10.0.0.1,,\n").encode()
    assert alice.upload(good, csrf="wrong" * 10).status_code == 403
    assert alice.upload(good, Origin="https://evil.example").status_code == 403
    big = HEADER.encode() + b"x" * (MAX_CSV_BYTES + 1)
    refused = alice.upload(big)
    assert refused.status_code in (400, 413)
    assert "larger than 1024 KiB" in refused.text
    # a body past the upload's limit is refused on its declared length, unread
    huge = alice.upload(HEADER.encode() + b"x" * (MAX_UPLOAD_BYTES + 1))
    assert huge.status_code == 413 and "larger than 1024 KiB" in huge.text
    assert _names(root) == {"a-1", "b-1"}


def _deploy_values(alice: Session, **values: str) -> dict[str, str]:
    return {
        "csrf": alice.csrf,
        "image_source": "http://images.example/debian.qcow2",
        "image_checksum": "a" * 64,
        "hostname": "web-1",
        "ssh_keys": KEY + "\n",
        "user_data": SECRET,
        **values,
    }


def _available(root: Api, uuid: str) -> None:
    for verb in ("manage", "provide"):
        assert root.put(f"/v1/nodes/{uuid}/states/provision", {"target": verb}).status_code == 202
        assert root.service.rt.workers.wait_idle(10)
    assert root.get(f"/v1/nodes/{uuid}").json()["provision_state"] == "available"


def test_a_refused_deploy_form_says_why_and_never_shows_the_user_data(world: dict) -> None:
    alice, mine = world["alice"], world["mine"]
    path = f"/dashboard/nodes/{mine['uuid']}/deploy"
    for field, value, message in (
        ("hostname", "bad_host", "is not a valid host name"),
        ("ssh_keys", "-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ("ssh_keys", "hello", "line 1 is not an OpenSSH public key"),
        ("image_source", "ftp://x/y", "give an http://, https:// or file:// URL"),
    ):
        response = alice.form(path, _deploy_values(alice, **{field: value}))
        assert response.status_code == 400, response.text
        assert message in response.text
        assert "hunter2" not in response.text
    # the node is enroll: the API refuses, the form comes back, the image keys too
    response = alice.form(path, _deploy_values(alice))
    assert 'id="deploy-error"' in response.text and "hunter2" not in response.text
    info = world["root"].get(f"/v1/nodes/{mine['uuid']}").json()["instance_info"]
    assert "image_source" not in info


def test_a_deploy_from_the_form_sends_the_config_drive(world: dict) -> None:
    alice, root, mine = world["alice"], world["root"], world["mine"]
    _available(root, mine["uuid"])
    path = f"/dashboard/nodes/{mine['uuid']}/deploy"
    response = alice.form(path, _deploy_values(alice))
    assert response.status_code == 200, response.text
    assert 'id="deploy-accepted"' in response.text
    node = root.get(f"/v1/nodes/{mine['uuid']}").json()
    assert node["instance_info"]["image_source"] == "http://images.example/debian.qcow2"
    page = alice.request("GET", f"/dashboard/nodes/{mine['uuid']}")
    assert "hunter2" not in page.text


def test_deploy_console_and_panel_refusals(world: dict) -> None:
    alice, theirs, mine = world["alice"], world["theirs"], world["mine"]
    path = f"/dashboard/nodes/{mine['uuid']}/deploy"
    assert alice.form(path, _deploy_values(alice, csrf="x" * 40)).status_code == 403
    values = _deploy_values(alice)
    assert alice.form(path, values, Origin="https://evil.example").status_code == 403
    console = f"/dashboard/nodes/{mine['uuid']}/console"
    assert alice.form(console, {"enabled": "true"}).status_code == 403  # no CSRF token
    # another tenant's node: not found everywhere, nothing done
    other = theirs["uuid"]
    assert alice.form(f"/dashboard/nodes/{other}/deploy", values).status_code == 404
    assert alice.request("GET", f"/dashboard/nodes/{other}/console").status_code == 404
    assert alice.request("GET", f"/dashboard/nodes/{other}/console/info").status_code == 404
    assert alice.request("GET", f"/dashboard/nodes/{other}/panel").status_code == 404
    switched = alice.form(
        f"/dashboard/nodes/{other}/console", {"enabled": "true", "csrf": alice.csrf}
    )
    assert 'class="error"' in switched.text
    assert world["root"].get(f"/v1/nodes/{other}").json()["console_enabled"] is False


def test_the_console_page_loads_xterm_under_a_strict_script_policy(world: dict) -> None:
    alice, mine = world["alice"], world["mine"]
    page = alice.request("GET", f"/dashboard/nodes/{mine['uuid']}/console")
    assert page.status_code == 200
    assert "/dashboard/static/vendor/xterm.js" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert "<script>" not in page.text


def test_the_conductors_page(world: dict) -> None:
    page = world["alice"].request("GET", "/dashboard/conductors")
    assert page.status_code == 200
    assert "Conductors" in page.text
    assert "alive" in page.text or "Forbidden" in page.text or "error" in page.text


def test_config_drives_take_several_keys() -> None:
    keys = cloud_init.public_keys(f"# mine\n{KEY}\n\n{KEY.replace('me@', 'you@')}\n")
    drive = cloud_init.config_drive(hostname="h", ssh_keys=keys, user_data=None)
    assert list(drive["meta_data"]["public_keys"]) == ["default", "key-2"]
    assert "user_data" not in drive
