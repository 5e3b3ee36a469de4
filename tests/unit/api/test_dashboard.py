"""The dashboard's HTML endpoints on the real app (builtin users, a real database, the
in-process conductor): login and logout, the session cookie, CSRF, escaping, and
that a tenant sees on the dashboard exactly what the API lets it see."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from api_harness import Api, build
from identity_harness import ADMIN_PASSWORD, PASSWORD, admin, make_node, project, user

from metalcast.api.dashboard.markup import Html, render
from metalcast.api.dashboard.node_page import duration, timeline

HOSTILE = '<img src=x onerror="alert(1)">'
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """A browser's cookie jar over the test client: what a page sets, it sends."""

    def __init__(self, api: Api) -> None:
        self.api = Api(api.client, api.db, api.service, None, {})
        self.cookies: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        raw = None
        if form is not None:
            raw = urlencode(form, doseq=True).encode()
            sent.update(FORM)
        response = self.api.request(method, path, raw=raw, headers=sent, version=None)
        for header in response.headers.get_list("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel["max-age"] == "0" or "expires=Thu, 01 Jan 1970" in header:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kw: object) -> httpx.Response:
        return self.request("GET", path, **kw)  # type: ignore[arg-type]

    def post(self, path: str, **kw: object) -> httpx.Response:
        return self.request("POST", path, **kw)  # type: ignore[arg-type]

    @property
    def csrf(self) -> str:
        return self.cookies["metalcast_csrf"]

    def log_in(self, name: str, password: str) -> httpx.Response:
        self.get("/dashboard/login")
        form = {"csrf": self.csrf, "username": name, "password": password, "next": "/dashboard"}
        return self.post("/dashboard/login", form=form)

    def act(
        self, action: str, *nodes: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        sent = {"X-CSRF-Token": self.csrf, **(headers or {})}
        return self.post(
            "/dashboard/actions", form={"action": action, "node": list(nodes)}, headers=sent
        )


@pytest.fixture
def world(builtin: Api) -> dict[str, object]:
    """Two tenants with a node each; alice is a manager of team-a."""
    root = admin(builtin)
    team_a, team_b = project(builtin, "team-a"), project(builtin, "team-b")
    user(builtin, "alice", ("manager", team_a))
    mine = make_node(root, name="a-1", owner=team_a.uuid, description=HOSTILE)
    theirs = make_node(root, name="b-1", owner=team_b.uuid)
    response = root.put(f"/v1/nodes/{mine['uuid']}/maintenance", {"reason": HOSTILE})
    assert response.status_code == 202, response.text
    return {"api": builtin, "mine": mine, "theirs": theirs}


def test_without_a_session_every_page_sends_to_the_login(builtin: Api) -> None:
    browser = Browser(builtin)
    for path in ("/dashboard", "/dashboard/nodes/whatever", "/dashboard/nodes/table"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/dashboard/login?next={path}"
    partial = browser.get("/dashboard/nodes/table", headers={"HX-Request": "true"})
    assert partial.status_code == 401
    assert partial.headers["hx-redirect"].startswith("/dashboard/login")
    # the event stream is the API's: refused without credentials
    assert browser.get("/dashboard/events").status_code in (401, 403)


def test_login_sets_an_httponly_strict_cookie_and_logout_revokes_it(world: dict) -> None:
    browser = Browser(world["api"])  # type: ignore[arg-type]
    wrong = browser.log_in("alice", "not the password")
    assert wrong.status_code == 401
    assert "The user name or password is wrong." in wrong.text
    assert "metalcast_session" not in browser.cookies

    response = browser.log_in("alice", PASSWORD)
    assert response.status_code == 303 and response.headers["location"] == "/dashboard"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith("metalcast_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
    secret = browser.cookies["metalcast_session"]
    page = browser.get("/dashboard")
    assert page.status_code == 200 and "alice · project team-a" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # the cookie is the dashboard's: the API itself takes no cookies
    api = Api(world["api"].client, world["api"].db, world["api"].service)  # type: ignore[attr-defined]
    assert (
        api.get("/v1/nodes", headers={"Cookie": f"metalcast_session={secret}"}).status_code == 401
    )

    out = browser.post("/dashboard/logout", form={"csrf": browser.csrf})
    assert out.status_code == 303 and out.headers["location"] == "/dashboard/login"
    assert "metalcast_session" not in browser.cookies
    # the token is revoked, not only forgotten by the browser
    assert api.get("/v1/nodes", headers={"X-Auth-Token": secret}).status_code == 401


def test_a_tenant_sees_its_own_nodes_only(world: dict) -> None:
    mine, theirs = world["mine"], world["theirs"]
    browser = Browser(world["api"])  # type: ignore[arg-type]
    browser.log_in("alice", PASSWORD)
    page = browser.get("/dashboard").text
    assert mine["uuid"] in page and theirs["uuid"] not in page
    # not by search, not by its page, not by its row
    found = browser.get(f"/dashboard/nodes/table?q={theirs['uuid']}").text
    assert theirs["uuid"] not in found and "No node matches." in found
    assert browser.get(f"/dashboard/nodes/{theirs['uuid']}").status_code == 404
    assert browser.get("/dashboard/nodes/b-1").status_code == 404
    assert browser.get(f"/dashboard/nodes/{theirs['uuid']}/row").text == ""
    # nor act on it: the API's refusal, per node
    result = browser.act("maintenance on", mine["uuid"], theirs["uuid"])
    assert result.status_code == 200
    assert re.search(rf'class="ok" data-node="{mine["uuid"]}"><strong>a-1</strong>', result.text)
    # a node the caller may not see is named as the form named it, not by its name
    assert re.search(rf'class="failed" data-node="{theirs["uuid"]}"><strong></strong>', result.text)
    assert "b-1" not in result.text
    assert "could not be found" in result.text


def test_tenant_controlled_text_is_escaped(world: dict) -> None:
    mine = world["mine"]
    browser = Browser(world["api"])  # type: ignore[arg-type]
    browser.log_in("admin", ADMIN_PASSWORD)
    for path in (
        "/dashboard",
        f"/dashboard/nodes/{mine['uuid']}",
        f"/dashboard/nodes/{mine['uuid']}/row",
    ):
        text = browser.get(path).text
        assert HOSTILE not in text, path
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text, path


def test_actions_need_the_csrf_token_and_this_origin(world: dict) -> None:
    mine = world["mine"]
    browser = Browser(world["api"])  # type: ignore[arg-type]
    browser.log_in("admin", ADMIN_PASSWORD)
    no_token = browser.post("/dashboard/actions", form={"action": "delete", "node": mine["uuid"]})
    assert no_token.status_code == 403 and "CSRF" in no_token.text
    other_site = browser.act("delete", mine["uuid"], headers={"Origin": "https://evil.example"})
    assert other_site.status_code == 403
    assert browser.get(f"/dashboard/nodes/{mine['uuid']}").status_code == 200
    unknown = browser.act("reboot into the void", mine["uuid"])
    assert unknown.status_code == 400 and "Unknown action" in unknown.text
    done = browser.act("delete", mine["uuid"])
    assert done.status_code == 200 and "delete: 1 accepted" in done.text
    assert browser.get(f"/dashboard/nodes/{mine['uuid']}").status_code == 404


def test_filters_are_the_apis(world: dict) -> None:
    mine, theirs = world["mine"], world["theirs"]
    browser = Browser(world["api"])  # type: ignore[arg-type]
    browser.log_in("admin", ADMIN_PASSWORD)
    both = browser.get("/dashboard/nodes/table").text
    assert mine["uuid"] in both and theirs["uuid"] in both
    in_maintenance = browser.get("/dashboard/nodes/table?maintenance=true").text
    assert mine["uuid"] in in_maintenance and theirs["uuid"] not in in_maintenance
    owned = browser.get(f"/dashboard/nodes/table?owner={theirs['owner']}").text
    assert theirs["uuid"] in owned and mine["uuid"] not in owned
    by_name = browser.get("/dashboard/nodes/table?q=b-1").text
    assert theirs["uuid"] in by_name and mine["uuid"] not in by_name


def test_render_escapes_all_but_markup() -> None:
    made = render('<p title="{a}">{b}</p>', a='"><script>', b=Html("<em>ok</em>"))
    assert made == '<p title="&quot;&gt;&lt;script&gt;"><em>ok</em></p>'


def test_timeline_durations() -> None:
    from datetime import UTC, datetime

    events = [
        {"created_at": "2026-01-01T00:00:10+00:00", "event": "b", "severity": "INFO"},
        {"created_at": "2026-01-01T00:00:00+00:00", "event": "a", "severity": "ERROR"},
    ]
    html = timeline(events, now=datetime(2026, 1, 1, 0, 2, 10, tzinfo=UTC))
    assert html.index(">a<") < html.index(">b<")
    assert "lasted 10 s" in html and "2 min 0 s so far" in html
    assert duration(0.25) == "0.2 s" and duration(7300) == "2 h 1 min"


def test_under_noauth_there_is_no_login_but_posts_still_need_the_csrf_token(api: Api) -> None:
    node = api.node(name="n-1")
    browser = Browser(api)
    page = browser.get("/dashboard")
    assert page.status_code == 200 and node["uuid"] in page.text
    assert "Log out" not in page.text  # no session to end
    assert browser.get("/dashboard/login").headers["location"] == "/dashboard"
    # a hostile page on the operator's machine cannot post to the loopback dashboard
    forged = Browser(api).post(
        "/dashboard/actions", form={"action": "delete", "node": node["uuid"]}
    )
    assert forged.status_code == 403
    assert api.get(f"/v1/nodes/{node['uuid']}").status_code == 200


def test_child_nodes_are_in_the_table_with_their_parent(api: Api) -> None:
    parent = api.node(name="chassis-1")
    child = api.node(name="blade-1")
    patch = [{"op": "add", "path": "/parent_node", "value": parent["uuid"]}]
    assert api.patch(f"/v1/nodes/{child['uuid']}", patch).status_code == 200
    # the API leaves children out of its list by default, as Ironic does
    listed = api.get("/v1/nodes").json()["nodes"]
    assert [n["uuid"] for n in listed] == [parent["uuid"]]
    page = Browser(api).get("/dashboard").text
    assert parent["uuid"] in page and child["uuid"] in page
    assert f"child of {parent['uuid']}" in page


def test_under_header_auth_the_proxys_identity_decides(secured: Api) -> None:
    ours = secured.node(name="ours-1", owner="p1")
    other = secured.node(name="other-1", owner="p2")
    browser = Browser(secured)
    tenant = {"X-Roles": "member", "X-User-Id": "someone", "X-Project-Id": "p1"}
    page = browser.get("/dashboard", headers=tenant)
    assert page.status_code == 200
    assert ours["uuid"] in page.text and other["uuid"] not in page.text
    assert browser.get(f"/dashboard/nodes/{other['uuid']}", headers=tenant).status_code == 404
    # without the proxy's headers: the login page, which says where to log in
    assert browser.get("/dashboard").status_code == 303
    assert "authenticating proxy" in browser.get("/dashboard/login").text


def test_pages_follow_the_apis_marker(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from metalcast.api.dashboard import table

    monkeypatch.setattr(table, "PAGE_SIZE", 2)
    uuids = [api.node(name=f"n-{i}")["uuid"] for i in range(3)]
    browser = Browser(api)
    first = browser.get("/dashboard").text
    assert uuids[0] in first and uuids[1] in first and uuids[2] not in first
    found = re.search(r'href="(/dashboard\?marker=[^"]+)" rel="next"', first)
    assert found, first
    second = browser.get(found.group(1).replace("&amp;", "&")).text
    assert uuids[2] in second and uuids[0] not in second
    assert 'rel="next"' not in second and "First page" in second


def test_a_working_nodes_row_shows_the_agents_progress_as_wait_does() -> None:
    from metalcast.api.dashboard.table import row

    report = {"name": "write_image", "done": 3 * 2**20, "total": 4 * 2**20, "rate": 2**20}
    node = {
        "uuid": "u-1",
        "name": "n-1",
        "provision_state": "deploying",
        "target_provision_state": "active",
        "driver_internal_info": {"agent_progress": report},
    }
    html = row(node)
    assert '<progress max="100" value="75">' in html
    assert "write_image 3.0 MiB of 4.0 MiB (75%), 1.0 MiB/s" in html
    assert "deploying → active" in html
    # a resting node's last report is a leftover, not progress
    rested = {**node, "provision_state": "active", "target_provision_state": None}
    assert "<progress" not in row(rested) and "write_image" not in row(rested)


def test_a_firmware_update_shows_its_percentage_in_the_row() -> None:
    from metalcast.api.dashboard.table import row

    progress = {"step": "firmware.update", "target": "bios", "percent": 60, "state": "Running"}
    node = {
        "uuid": "u-2",
        "name": "n-2",
        "provision_state": "servicing",
        "target_provision_state": "active",
        "driver_internal_info": {"step_progress": progress},
    }
    html = row(node)
    assert '<progress max="100" value="60">' in html
    assert "firmware.update bios 60% (Running)" in html


def test_origin_of_api_public_url_is_this_server(tmp_path: Path) -> None:
    # a TLS-terminating proxy in front: the browser's origin is api.public_url's
    for app in build(tmp_path, "noauth", public_url="https://metal.example.com"):
        node = app.node(name="n-1")
        browser = Browser(app)
        first = browser.get("/dashboard")
        assert "Secure" in first.headers["set-cookie"]
        proxied = browser.act(
            "maintenance on", node["uuid"], headers={"Origin": "https://metal.example.com"}
        )
        assert proxied.status_code == 200 and "1 accepted" in proxied.text
