"""Every route, every persona: the API answers what the persona matrix says.

The app runs with header identities (``OpenStack-System-Scope: all`` for system
scope, ``X-Project-Id`` + ``X-Roles`` otherwise) on one database per module: a node
owned by the owner project and leased to the lessee project (with a port, a
portgroup, a volume connector and target, BIOS settings and history), and nodes of
other projects for the listings.  Requests that change or delete something get a
fresh object of their own for each persona.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx
import orjson
import pytest
from api_harness import BASE, Api, Client, build, fault_of
from policy_matrix import (
    ACTIONS,
    MATRIX,
    NODES,
    NOT_WALKED,
    PERSONAS,
    SHOWS_TARGET_PROPERTIES,
    Action,
    Outcome,
    redacted_fields,
    visible_nodes,
)
from starlette.routing import Match, Route

from metalcast.api.policy import REDACTED
from metalcast.api.policy.callers import LESSEE_PROJECT, OWNER_PROJECT, Caller, Scope
from metalcast.db import tables as t

# ------------------------------------------------------------------------ harness


class PortalClient(Client):
    """The harness client on one event loop for the whole module (a loop per request
    costs more than the request)."""

    def __init__(self, app: Any, portal: anyio.from_thread.BlockingPortal) -> None:
        super().__init__(app)
        self._portal = portal
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._client = portal.call(partial(_client, transport))

    def request(
        self, method: str, path: str, *, content: bytes | None, headers: dict[str, str]
    ) -> httpx.Response:
        send = partial(self._client.request, method, path, content=content, headers=headers)
        return self._portal.call(send)

    def close(self) -> None:
        self._portal.call(self._client.aclose)


async def _client(transport: httpx.ASGITransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, base_url=BASE)


def identity(caller: Caller) -> dict[str, str]:
    """The headers an authenticating proxy sets for ``caller`` (none: anonymous)."""
    if caller.role is None or caller.user is None:
        return {}
    headers = {"X-Roles": caller.role, "X-User-Id": caller.user}
    if caller.scope is Scope.SYSTEM:
        headers["OpenStack-System-Scope"] = "all"
    elif caller.project:
        headers["X-Project-Id"] = caller.project
    return headers


def as_caller(api: Api, caller: Caller) -> Api:
    return Api(api.client, api.db, api.service, api.version, identity(caller))


class World:
    """The objects the actions name, and fresh ones on demand."""

    def __init__(self, admin: Api) -> None:
        self.admin = admin
        self.counter = itertools.count(1)
        self.chassis = self.create("/v1/chassis", {})["uuid"]
        self.nodes = {label: self.node(owner, lessee) for label, (owner, lessee) in NODES.items()}
        self.leased = self.nodes["leased"]
        self.ports = {label: self.port(node) for label, node in self.nodes.items()}
        self.portgroups = {label: self.portgroup(node) for label, node in self.nodes.items()}
        self.connectors = {label: self.connector(node) for label, node in self.nodes.items()}
        self.targets = {label: self.target(node) for label, node in self.nodes.items()}
        self.manage(self.leased)
        history = admin.get(f"/v1/nodes/{self.leased}/history").json()["history"]
        self.event = history[0]["uuid"]

    def unique(self) -> int:
        return next(self.counter)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.admin.post(path, body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def node(self, owner: str | None = OWNER_PROJECT, lessee: str | None = LESSEE_PROJECT) -> str:
        body = {"driver": "fake-hardware", "owner": owner, "lessee": lessee}
        return str(self.create("/v1/nodes", body)["uuid"])

    def manage(self, node: str) -> None:
        response = self.admin.put(f"/v1/nodes/{node}/states/provision", {"target": "manage"})
        assert response.status_code == 202, response.text
        settle(self.admin)

    def mac(self) -> str:
        n = self.unique()
        return f"52:54:00:{n >> 16 & 0xFF:02x}:{n >> 8 & 0xFF:02x}:{n & 0xFF:02x}"

    def port(self, node: str | None = None) -> str:
        body = {"node_uuid": node or self.leased, "address": self.mac()}
        return str(self.create("/v1/ports", body)["uuid"])

    def portgroup(self, node: str | None = None) -> str:
        body = {"node_uuid": node or self.leased, "address": self.mac()}
        return str(self.create("/v1/portgroups", body)["uuid"])

    def connector(self, node: str | None = None) -> str:
        body = {"node_uuid": node or self.leased, "type": "iqn", "connector_id": self.mac()}
        return str(self.create("/v1/volume/connectors", body)["uuid"])

    def target(self, node: str | None = None) -> str:
        body = {
            "node_uuid": node or self.leased,
            "volume_type": "iscsi",
            "boot_index": self.unique(),
            "volume_id": f"v-{self.unique()}",
            "properties": {"auth_password": "chap-secret"},
        }
        return str(self.create("/v1/volume/targets", body)["uuid"])

    def fresh(self, kind: str | None) -> dict[str, str]:
        """Placeholders of the objects an action works on (new ones for ``kind``)."""
        names = {
            "node": self.leased,
            "port": self.ports["leased"],
            "portgroup": self.portgroups["leased"],
            "connector": self.connectors["leased"],
            "target": self.targets["leased"],
            "chassis": self.chassis,
            "event": self.event,
            "conductor": "cond-1",
        }
        if kind is not None:
            names.update(self._make(kind))
        return names

    def _make(self, kind: str) -> dict[str, str]:
        makers: dict[str, Callable[[], dict[str, str]]] = {
            "node": lambda: {"node": self.node()},
            "node with trait": lambda: {"node": self._with(f"{self.node()}", "traits/CUSTOM_A")},
            "node with port": lambda: {"node": self._with_port(self.node())},
            "node with vif": lambda: {"node": self._with_vif(self._with_port(self.node()))},
            "port": lambda: {"port": self.port()},
            "portgroup": lambda: {"portgroup": self.portgroup()},
            "connector": lambda: {"connector": self.connector()},
            "target": lambda: {"target": self.target()},
            "chassis": lambda: {"chassis": self.create("/v1/chassis", {})["uuid"]},
        }
        return makers[kind]()

    def _with(self, node: str, sub: str) -> str:
        assert self.admin.put(f"/v1/nodes/{node}/{sub}").status_code == 204
        return node

    def _with_port(self, node: str) -> str:
        self.port(node)
        return node

    def _with_vif(self, node: str) -> str:
        assert self.admin.post(f"/v1/nodes/{node}/vifs", {"id": "vif-1"}).status_code == 204
        return node


def settle(api: Api) -> None:
    assert api.service.rt.workers.wait_idle(10)


@contextmanager
def portal_api(tmp: Path) -> Iterator[Api]:
    with anyio.from_thread.start_blocking_portal() as portal:
        for api in build(tmp, "header"):
            client = PortalClient(api.client.app, portal)
            api.client = client
            try:
                yield api
            finally:
                client.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with portal_api(tmp_path_factory.mktemp("policy-routes")) as api:
        admin = Api(api.client, api.db, api.service, api.version, _SYSTEM_ADMIN)
        yield World(admin)


_SYSTEM_ADMIN = {"X-Roles": "admin", "X-User-Id": "root", "OpenStack-System-Scope": "all"}

# ----------------------------------------------------------------------- the walk


def fill(template: Any, names: dict[str, str], world: World) -> Any:
    """``template`` with its placeholders replaced."""
    if isinstance(template, list):
        return [fill(item, names, world) for item in template]
    if isinstance(template, dict):
        return {k: fill(v, names, world) for k, v in template.items()}
    if not isinstance(template, str):
        return template
    if template == "{unique_int}":
        return world.unique()
    values = {
        **names,
        "unique": str(world.unique()),
        "unique_mac": world.mac(),
        "unique_uuid": str(uuid.uuid4()),
    }
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)


def perform(world: World, caller: Caller, action: Action) -> httpx.Response:
    names = world.fresh(action.fresh)
    api = as_caller(world.admin, caller)
    path = fill(action.path, names, world)
    body = fill(action.body, names, world)
    response = api.request(action.method, path, body)
    if response.status_code == 202:
        settle(world.admin)
    return response


def judge(action: Action, expected: Outcome, response: httpx.Response) -> str | None:
    """What is wrong with ``response`` (None: nothing)."""
    status = response.status_code
    if expected is Outcome.ALLOWED:
        return None if status == action.status else f"{status} {response.text[:200]}"
    if status != expected.value:
        return f"{status} {response.text[:200]}"
    if expected is Outcome.FORBIDDEN:
        fault = fault_of(response)
        if not fault.startswith("Access was denied to the following resource: "):
            return f"403 without Ironic's message: {fault}"
    return None


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_each_persona_gets_what_the_matrix_says(world: World, action: Action) -> None:
    wrong = []
    for caller in PERSONAS:
        expected = MATRIX[action.name][caller.name]
        response = perform(world, caller, action)
        problem = judge(action, expected, response)
        if problem:
            wrong.append(f"{caller.name}: expected {expected.name}, got {problem}")
    assert not wrong, f"{action.method} {action.path}:\n" + "\n".join(wrong)


def test_a_malformed_identifier_is_400_whoever_asks(world: World) -> None:
    # Ironic checks an identifier's form before it looks the object up or asks the
    # policy: 400 to every caller with credentials, also to those who could not see
    # the object, which tells them nothing about it
    leased = uuid.UUID(world.leased)
    paths = [
        f"/v1/nodes/{leased.hex}",
        "/v1/nodes/not%20a%20name",
        f"/v1/ports/{{{world.ports['leased']}}}",
    ]
    wrong = []
    for caller, path in itertools.product(PERSONAS, paths):
        response = as_caller(world.admin, caller).get(path)
        expected = 401 if caller.name == "anonymous" else 400
        if response.status_code != expected:
            wrong.append(f"{caller.name} {path}: {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", ["show node", "show port", "show portgroup"])
def test_an_upper_case_uuid_is_the_same_object_to_every_persona(world: World, name: str) -> None:
    action = next(a for a in ACTIONS if a.name == name)
    names = {k: v.upper() for k, v in world.fresh(None).items()}
    wrong = []
    for caller in PERSONAS:
        response = as_caller(world.admin, caller).get(fill(action.path, names, world))
        problem = judge(action, MATRIX[name][caller.name], response)
        if problem:
            wrong.append(f"{caller.name}: {problem}")
    assert not wrong, "\n".join(wrong)


def test_the_matrix_walks_every_route(world: World) -> None:
    routes = [r for r in world.admin.client.app.routes if isinstance(r, Route)]
    walked = set()
    for action in ACTIONS:
        scope = {"type": "http", "path": action.path.split("?")[0], "method": action.method}
        route = next(r for r in routes if r.matches(scope)[0] is Match.FULL)
        walked.add((route.path, action.method))
    missing = []
    for route in routes:
        if route.path in NOT_WALKED:
            continue
        methods = (route.methods or set()) - {"HEAD"}
        # a vendor passthru route takes every method: one of them is enough
        if len(methods) > 3 and any(path == route.path for path, _ in walked):
            continue
        missing += [f"{m} {route.path}" for m in sorted(methods) if (route.path, m) not in walked]
    assert not missing, "routes the persona matrix does not walk: " + ", ".join(missing)


# ------------------------------------------------------------------- listings


LISTINGS = {
    "node": ("/v1/nodes/detail", "nodes", "nodes"),
    "port": ("/v1/ports/detail", "ports", "ports"),
    "portgroup": ("/v1/portgroups/detail", "portgroups", "portgroups"),
    "volume": ("/v1/volume/connectors/detail", "connectors", "connectors"),
}


@pytest.mark.parametrize("kind", [*LISTINGS, "volume targets"])
def test_listings_show_each_persona_what_its_project_owns_or_leases(
    world: World, kind: str
) -> None:
    path, key, attribute = LISTINGS.get(kind, ("/v1/volume/targets/detail", "targets", "targets"))
    by_uuid = {uuid: label for label, uuid in getattr(world, attribute).items()}
    wrong = []
    for caller in PERSONAS[:-1]:
        expected = visible_nodes(caller, kind.split()[0])
        response = as_caller(world.admin, caller).get(path)
        if expected is None:
            if response.status_code != 403:
                wrong.append(f"{caller.name}: {response.status_code}, expected 403")
            continue
        shown = {by_uuid[doc["uuid"]] for doc in response.json()[key] if doc["uuid"] in by_uuid}
        if shown != expected:
            wrong.append(f"{caller.name}: sees {sorted(shown)}, expected {sorted(expected)}")
    assert not wrong, "\n".join(wrong)


# --------------------------------------------------------------- what is shown


def _set_node_internals(world: World) -> None:
    nodes = t.nodes.c
    with world.admin.db.begin() as conn:
        conn.execute(
            t.nodes.update()
            .where(nodes.uuid == world.leased)
            .values(
                last_error="BMC at 10.0.0.7 refused",
                driver_info={"fake_info": "rack 7"},
                driver_internal_info={"agent_url": "http://10.1.1.1:9999"},
            )
        )


def test_node_fields_are_redacted_for_who_may_not_see_them(world: World) -> None:
    _set_node_internals(world)
    wrong = []
    for caller in PERSONAS[:-1]:
        if MATRIX["show node"][caller.name] is not Outcome.ALLOWED:
            continue
        api = as_caller(world.admin, caller)
        shown = api.get(f"/v1/nodes/{world.leased}").json()
        listed = next(
            n for n in api.get("/v1/nodes/detail").json()["nodes"] if n["uuid"] == world.leased
        )
        expected = redacted_fields(caller.name)
        for name, doc in (("show", shown), ("list", listed)):
            redacted = {f for f, (_, notice) in REDACTED.items() if doc[f] == notice()}
            if redacted != expected:
                wrong.append(f"{caller.name} ({name}): {sorted(redacted)} != {sorted(expected)}")
        if "last_error" not in expected and shown["last_error"] != "BMC at 10.0.0.7 refused":
            wrong.append(f"{caller.name}: last_error is {shown['last_error']!r}")
    assert not wrong, "\n".join(wrong)


def test_lessee_sees_last_error_in_states_as_ironic_shows_it(world: World) -> None:
    _set_node_internals(world)
    lessee = as_caller(world.admin, Caller(Scope.LESSEE, "reader"))
    assert lessee.get(f"/v1/nodes/{world.leased}").json()["last_error"].startswith("** ")
    states = lessee.get(f"/v1/nodes/{world.leased}/states").json()
    assert states["last_error"] == "BMC at 10.0.0.7 refused"


def test_target_properties_only_for_who_may_view_them(world: World) -> None:
    wrong = []
    for caller in PERSONAS[:-1]:
        if MATRIX["show target"][caller.name] is not Outcome.ALLOWED:
            continue
        api = as_caller(world.admin, caller)
        shown = api.get(f"/v1/volume/targets/{world.targets['leased']}").json()["properties"]
        assert "chap-secret" not in str(shown)  # a secret is masked even for who may see
        visible = shown == {"auth_password": "******"}
        if visible != (caller.name in SHOWS_TARGET_PROPERTIES):
            wrong.append(f"{caller.name}: {shown}")
        if not visible and set(shown) != {"redacted_contents"}:
            wrong.append(f"{caller.name}: not Ironic's redaction: {shown}")
    assert not wrong, "\n".join(wrong)


def test_responses_are_json_errors_in_ironics_shape(world: World) -> None:
    other = as_caller(world.admin, Caller(Scope.OTHER, "member"))
    response = other.get(f"/v1/nodes/{world.leased}")
    assert response.status_code == 404
    assert fault_of(response) == f"Node {world.leased} could not be found."
    port = other.get(f"/v1/ports/{world.ports['leased']}")
    assert fault_of(port) == f"Port {world.ports['leased']} could not be found."
    body = orjson.loads(other.get("/v1/chassis").content)
    assert "baremetal:chassis:get" in body["error_message"]
