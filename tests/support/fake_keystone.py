"""A stand-in Keystone v3 that hands any caller a token and a service catalog.

tempest (and so ironic-tempest-plugin) insists on authenticating with Keystone before
it calls a service; a metalcast running with ``api.auth_strategy = noauth`` never
looks at the token.  This server accepts every password and token request, answers
with a token carrying the roles ``admin``, ``member`` and ``reader``, the scope that
was asked for (project, system or domain) and a catalog of two services:
``baremetal`` at the URL it was given and ``identity`` at itself.  It checks nothing
and stores nothing beyond the tokens it issued, so it listens on 127.0.0.1 only.

Standard library only::

    with running_keystone(baremetal_url="http://127.0.0.1:6385") as keystone:
        print(keystone.url)  # http://127.0.0.1:PORT/v3
"""

from __future__ import annotations

import contextlib
import datetime
import json
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"
REGION = "RegionOne"
ROLES = ("admin", "member", "reader")
DOMAIN = {"id": "default", "name": "Default"}


def _timestamp(*, hours: int = 0) -> str:
    at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=hours)
    return at.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


def catalog(*, identity_url: str, baremetal_url: str) -> list[dict[str, Any]]:
    """The service catalog: baremetal and identity, each on all three interfaces."""

    def endpoints(url: str) -> list[dict[str, str]]:
        return [
            {"id": uuid.uuid4().hex, "interface": interface, "region": REGION,
             "region_id": REGION, "url": url}
            for interface in ("public", "internal", "admin")
        ]  # fmt: skip

    return [
        {"id": "baremetal", "type": "baremetal", "name": "metalcast",
         "endpoints": endpoints(baremetal_url)},
        {"id": "identity", "type": "identity", "name": "keystone",
         "endpoints": endpoints(identity_url)},
    ]  # fmt: skip


def _scope(requested: Mapping[str, Any]) -> dict[str, Any]:
    """The token's scope fields for the scope the request asked for."""
    if "system" in requested:
        return {"system": {"all": True}}
    if "project" in requested:
        name = requested["project"].get("name", "admin")
        project_id = (
            requested["project"].get("id") or uuid.uuid5(uuid.NAMESPACE_DNS, f"project-{name}").hex
        )
        return {"project": {"id": project_id, "name": name, "domain": DOMAIN}}
    if "domain" in requested:
        return {"domain": DOMAIN}
    return {}


def token(request: Mapping[str, Any], *, services: list[dict[str, Any]]) -> dict[str, Any]:
    """The body of ``POST /v3/auth/tokens`` for any authentication request."""
    auth = request.get("auth") or {}
    identity = auth.get("identity") or {}
    user = (identity.get("password") or {}).get("user") or {}
    name = user.get("name", "admin")
    body = {
        "methods": identity.get("methods") or ["password"],
        "expires_at": _timestamp(hours=12),
        "issued_at": _timestamp(),
        "audit_ids": [uuid.uuid4().hex[:22]],
        "user": {
            "id": user.get("id") or uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
            "name": name,
            "domain": DOMAIN,
            "password_expires_at": None,
        },
        "roles": [{"id": f"role-{role}", "name": role} for role in ROLES],
        "catalog": services,
        **_scope(auth.get("scope") or {}),
    }
    return {"token": body}


def version(identity_url: str) -> dict[str, Any]:
    """Keystone's description of its v3 API, as version discovery expects it."""
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{identity_url}/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _KeystoneServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tempest's own log says what it asked for."""

    def _send(self, status: int, body: object, *, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _not_found(self, path: str) -> None:
        message = f"the fake Keystone does not serve {path}"
        self._send(404, {"error": {"code": 404, "message": message, "title": "Not Found"}})

    def do_GET(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        keystone = self.server
        if path == "":
            self._send(300, {"versions": {"values": [version(keystone.identity_url)]}})
        elif path == "/v3":
            self._send(200, {"version": version(keystone.identity_url)})
        elif path == "/v3/auth/tokens":
            token_id = self.headers.get("X-Subject-Token", "")
            body = keystone.issued.get(token_id) or token({}, services=keystone.catalog())
            self._send(200, body, headers={"X-Subject-Token": token_id})
        elif path == "/v3/auth/catalog":
            self._send(200, {"catalog": keystone.catalog()})
        else:
            self._not_found(path)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            request = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            request = {}
        path = self.path.split("?")[0].rstrip("/")
        if path != "/v3/auth/tokens":
            self._not_found(path)
            return
        token_id = f"fake-{uuid.uuid4().hex}"
        body = token(request if isinstance(request, dict) else {}, services=self.server.catalog())
        self.server.issued[token_id] = body
        self._send(201, body, headers={"X-Subject-Token": token_id})

    def do_DELETE(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _KeystoneServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, baremetal_url: str) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.baremetal_url = baremetal_url
        self.issued: dict[str, dict[str, Any]] = {}

    @property
    def identity_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server_address[1]}/v3"

    def catalog(self) -> list[dict[str, Any]]:
        return catalog(identity_url=self.identity_url, baremetal_url=self.baremetal_url)


@dataclass(frozen=True)
class FakeKeystone:
    """A running fake Keystone: ``url`` is its v3 endpoint (tempest's ``uri_v3``)."""

    url: str
    port: int


@contextlib.contextmanager
def running_keystone(*, baremetal_url: str) -> Iterator[FakeKeystone]:
    """Serve a fake Keystone on a free 127.0.0.1 port in a thread of this process,
    its catalog pointing ``baremetal`` at ``baremetal_url``; stop it on exit."""
    server = _KeystoneServer(baremetal_url=baremetal_url)
    thread = threading.Thread(target=server.serve_forever, name="fake-keystone", daemon=True)
    thread.start()
    try:
        yield FakeKeystone(server.identity_url, server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
