"""An in-memory Ironic-style API for CLI unit tests (httpx.MockTransport, no network)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE = "http://metalcast.test"
FINAL = {
    "manage": "manageable",
    "provide": "available",
    "active": "active",
    "deleted": "available",
    "rescue": "rescue",
}
WORKING = {
    "manage": "verifying",
    "provide": "cleaning",
    "active": "deploying",
    "deleted": "deleting",
    "rescue": "rescuing",
}


def fault(status: int, message: str) -> httpx.Response:
    body = {"error_message": json.dumps({"faultstring": message, "faultcode": "Client"})}
    return httpx.Response(status, json=body)


@dataclass
class FakeIronic:
    """Just enough of the API for the CLI: nodes, ports, provision, history."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    refuse_macs: set[str] = field(default_factory=set)
    page_size: int = 1000
    requests: list[str] = field(default_factory=list)
    #: the bodies of PUT .../states/provision, in order
    provision_bodies: list[dict[str, Any]] = field(default_factory=list)
    clock: int = 0
    #: per node name: the inventory its GET .../inventory answers (else 404)
    inventories: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: provision requests never finish
    stuck: bool = False
    #: per node UUID: the changes its next GETs apply, one each (see :meth:`play`)
    scripts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        parts = [p for p in request.url.path.split("/") if p]
        route = self._route(request.method, parts)
        if route is None:
            return fault(404, f"no route for {request.method} {request.url.path}")
        return route(request, parts)

    def _route(
        self, method: str, parts: list[str]
    ) -> Callable[[httpx.Request, list[str]], httpx.Response] | None:
        table: dict[tuple[str, int, str], Callable[[httpx.Request, list[str]], httpx.Response]] = {
            ("GET", 1, ""): self.root,
            ("GET", 2, "nodes"): self.list_nodes,
            ("POST", 2, "nodes"): self.create_node,
            ("GET", 3, "nodes"): self.get_node,
            ("DELETE", 3, "nodes"): self.delete_node,
            ("POST", 2, "ports"): self.create_port,
            ("DELETE", 3, "ports"): self.delete_port,
            ("PUT", 5, "nodes"): self.provision,
            ("GET", 4, "nodes"): self.history,
        }
        return table.get((method, len(parts), parts[1] if len(parts) > 1 else ""))

    def root(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        body = {"id": "v1", "version": {"version": "1.96", "min_version": "1.1"}}
        return httpx.Response(200, json=body)

    def find(self, ident: str) -> dict[str, Any] | None:
        for node in self.nodes.values():
            if ident in (node["uuid"], node.get("name")):
                return node
        return None

    def list_nodes(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        params = request.url.params
        items = [
            n
            for n in self.nodes.values()
            if params.get("provision_state") in (None, n["provision_state"])
        ]
        limit = int(params.get("limit", self.page_size))
        limit = min(limit, self.page_size)
        marker = params.get("marker")
        start = next((i + 1 for i, n in enumerate(items) if n["uuid"] == marker), 0)
        page = items[start : start + limit]
        body: dict[str, Any] = {"nodes": page}
        if start + limit < len(items):
            body["next"] = f"{BASE}/v1/nodes?limit={limit}&marker={page[-1]['uuid']}"
        return httpx.Response(200, json=body)

    def create_node(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("name") and self.find(body["name"]):
            return fault(409, f"A node with name {body['name']} already exists.")
        node = {
            "uuid": str(uuid.uuid4()),
            "provision_state": "enroll",
            "target_provision_state": None,
            "provision_updated_at": None,
            "power_state": None,
            "maintenance": False,
            "last_error": None,
            "links": [],
            **body,
        }
        node["driver_info"] = {
            k: ("******" if "password" in k else v) for k, v in body.get("driver_info", {}).items()
        }
        self.nodes[node["uuid"]] = node
        return httpx.Response(201, json=node)

    def get_node(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        node = self.find(parts[2])
        if node is None:
            return fault(404, f"Node {parts[2]} could not be found.")
        self._progress(node)
        script = self.scripts.get(node["uuid"])
        if script:
            node.update(script.pop(0))
        return httpx.Response(200, json=node)

    def delete_node(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        node = self.find(parts[2])
        if node is None:
            return fault(404, f"Node {parts[2]} could not be found.")
        del self.nodes[node["uuid"]]
        self.ports = {k: p for k, p in self.ports.items() if p["node_uuid"] != node["uuid"]}
        return httpx.Response(204)

    def create_port(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        body = json.loads(request.content)
        if body["address"] in self.refuse_macs:
            return fault(409, f"A port with MAC address {body['address']} already exists.")
        port = {"uuid": str(uuid.uuid4()), **body}
        self.ports[port["uuid"]] = port
        return httpx.Response(201, json=port)

    def delete_port(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        self.ports.pop(parts[2], None)
        return httpx.Response(204)

    def provision(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        node = self.find(parts[2])
        if node is None:
            return fault(404, f"Node {parts[2]} could not be found.")
        body = json.loads(request.content)
        target = body["target"]
        self.provision_bodies.append(body)
        self.clock += 1
        node["provision_state"] = WORKING[target]
        node["target_provision_state"] = FINAL[target]
        node["provision_updated_at"] = f"t{self.clock}"
        node["_verb"] = target
        return httpx.Response(202)

    def play(self, ident: str, *changes: dict[str, Any]) -> None:
        """Let the next GETs of node ``ident`` see ``changes``, one more with each GET
        (a node the conductor moves on between polls); then it stays as it is."""
        node = self.find(ident)
        assert node is not None
        self.scripts[node["uuid"]] = list(changes)

    def state_of(self, ident: str) -> str | None:
        node = self.find(ident)
        return None if node is None else str(node["provision_state"])

    def set_state(self, ident: str, state: str) -> None:
        node = self.find(ident)
        assert node is not None
        node["provision_state"] = state

    def _progress(self, node: dict[str, Any]) -> None:
        if self.stuck or "_verb" not in node:
            return
        verb = node.pop("_verb")
        self.clock += 1
        node["provision_updated_at"] = f"t{self.clock}"
        node["target_provision_state"] = None
        fails = str(node.get("driver_info", {}).get("fake_fail", ""))
        if verb == "active" and "deploy" in fails:
            node["provision_state"] = "deploy failed"
            node["last_error"] = "Deploy failed: injected failure"
        else:
            node["provision_state"] = FINAL[verb]

    def history(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        if parts[3] == "inventory":
            return self.inventory(parts[2])
        if parts[3] != "history":
            return fault(404, "not found")
        event = {"created_at": "2026-01-01T00:00:00", "severity": "INFO", "event": "hello"}
        return httpx.Response(200, json={"history": [{**event, "user": "admin"}]})

    def inventory(self, ident: str) -> httpx.Response:
        found = self.inventories.get(ident)
        if found is None:
            return fault(404, f"Node inventory for node {ident} could not be found.")
        return httpx.Response(200, json={"inventory": found, "plugin_data": {}})


@dataclass
class Invocation:
    exit_code: int
    stdout: str
    stderr: str
