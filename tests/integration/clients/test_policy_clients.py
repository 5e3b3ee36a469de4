"""Who may do what, through the real clients, with real users: the persona matrix
against a real ``metalcast server``.

The server runs the ``builtin`` strategy.  Through its API, as the first
administrator: the owner, lessee and other projects of the matrix
(``policy_matrix``), one user per persona of ``policy_matrix.PERSONAS`` holding the
persona's role there (or on the system), and the matrix's world
(``policy_world.World``): nodes owned and leased across the projects, with ports,
portgroups, volume connectors and targets, a trait and history.  Each user makes a
token of their own with their password.

Then every action of the matrix, as every persona, through openstacksdk (the SDK's
own call, or a raw request through the same authenticated session where it has
none), half of the personas logged in with ``http_basic`` and half with
``admin_token``; what listings show and which node fields are redacted; and a
representative set of actions (every resource, every kind of action) through the
unmodified ``baremetal`` CLI as each kind of persona, with the other auth type.  The
expected answers are ``policy_matrix.MATRIX``, which ``tests/unit/api/test_policy.py``
holds the rules to and ``tests/unit/api/test_policy_docs.py`` the table in
docs/policy.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import openstack
import pytest
from openstack import exceptions
from openstack.connection import Connection
from policy_clients import (
    CLI_COMMANDS,
    SDK_CALLS,
    VERSION,
    Answer,
    cli_auth,
    raw,
    settle,
    through_cli,
    through_sdk,
    verdict,
)
from policy_matrix import (
    ACTIONS,
    BY_ACTION,
    MATRIX,
    PERSONAS,
    SHOWS_TARGET_PROPERTIES,
    Action,
    Outcome,
    redacted_fields,
    visible_nodes,
)
from policy_world import Send, World, fill, prepare

from metalcast.api.policy import REDACTED
from metalcast.api.policy.callers import BY_NAME, OWNER_PROJECT, Caller, Scope

pytestmark = pytest.mark.integration

BUILTIN = {"METALCAST_API__AUTH_STRATEGY": "builtin"}
#: the kinds of persona the CLI runs as: the system's administrator and reader, the
#: owner's and the lessee's administrator, member and reader, another project's member
CLI_PERSONAS = (
    "system admin",
    "system reader",
    "owner admin",
    "owner member",
    "owner reader",
    "lessee admin",
    "lessee member",
    "lessee reader",
    "other member",
)


@dataclass
class Person:
    """A persona's user: their password, and a token they made with it."""

    caller: Caller
    password: str
    token: str
    #: how openstacksdk logs in as them ("admin_token" or "http_basic"); the CLI
    #: uses the other one
    sdk_auth: str


@dataclass
class Site:
    """The server, its people and the world they act on."""

    url: str
    admin: httpx.Client
    people: dict[str, Person]
    world: World
    connections: dict[str, Connection] = field(default_factory=dict)

    def sdk(self, name: str) -> Connection:
        """openstacksdk logged in as persona ``name`` (one connection each)."""
        if name not in self.connections:
            person = self.people[name]
            auth: dict[str, str] = {"token": person.token, "endpoint": self.url}
            if person.sdk_auth == "http_basic":
                auth = {"username": str(person.caller.user), "password": person.password}
            self.connections[name] = openstack.connect(
                auth_type=person.sdk_auth,
                auth=auth,
                baremetal_endpoint_override=self.url,
                load_yaml_config=False,
                load_envvars=False,
            )
        return self.connections[name]

    def cli(self, name: str) -> list[str]:
        """The ``baremetal`` options logging in as persona ``name``."""
        person = self.people[name]
        if person.sdk_auth == "http_basic":
            return cli_auth(self.url, token=person.token)
        return cli_auth(self.url, user=str(person.caller.user), password=person.password)

    def send(self, name: str) -> Send:
        """Raw requests as persona ``name``, through their SDK session."""
        conn = self.sdk(name)
        return lambda method, path, body: raw(conn, self.url, method, path, body).result

    def settle(self, node: str) -> None:
        settle(self.admin, node)


# ------------------------------------------------------------------------- set-up


def first_admin_password(stdout: str) -> str:
    found = re.findall(r"^\s+password: (\S+)$", stdout, re.MULTILINE)
    assert len(found) == 1, stdout
    return found[0]


def created(response: httpx.Response, status: int = 201) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def make_people(url: str, admin: httpx.Client) -> tuple[dict[str, str], dict[str, Person]]:
    """The matrix's projects (label -> id) and a user per persona, through the API."""
    labels = sorted({c.project for c in PERSONAS if c.project})
    projects = {label: created(admin.post("/v1/auth/projects", json={"name": label}))["id"]
                for label in labels}  # fmt: skip
    people = {}
    for index, caller in enumerate(p for p in PERSONAS if p.role):
        password = f"{caller.user} password"
        created(admin.post("/v1/auth/users", json={"name": caller.user, "password": password}))
        where = "system" if caller.scope is Scope.SYSTEM else f"projects/{caller.project}"
        grant = admin.put(f"/v1/auth/{where}/users/{caller.user}/roles/{caller.role}")
        created(grant, 204)
        with httpx.Client(base_url=url, auth=(str(caller.user), password)) as own:
            token = created(own.post("/v1/auth/tokens", json={"description": "matrix"}))
        sdk_auth = ("admin_token", "http_basic")[index % 2]
        people[caller.name] = Person(caller, password, token["token"], sdk_auth)
    return projects, people


@pytest.fixture(scope="module")
def site(start_metalcast_server: Any) -> Iterator[Site]:
    with start_metalcast_server(env=BUILTIN) as server:
        password = first_admin_password(server.stdout_path.read_text())
        with httpx.Client(base_url=server.url, auth=("admin", password)) as basic:
            token = created(basic.post("/v1/auth/tokens", json={}))["token"]
        headers = {**VERSION, "X-Auth-Token": token}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as admin:
            projects, people = make_people(server.url, admin)
            conductor = admin.get("/v1/conductors").json()["conductors"][0]["hostname"]
            world = World(
                lambda method, path, body: admin.request(method, path, json=body),
                settle=lambda node: settle(admin, node),
                projects=projects,
                conductor=conductor,
                identity=True,
            )
            built = Site(server.url, admin, people, world)
            yield built
            for conn in built.connections.values():
                conn.close()


# ------------------------------------------------------------ every action, SDK


def act_sdk(site: Site, caller: Caller, action: Action) -> Answer:
    """``action`` as ``caller`` through openstacksdk (anonymous: without credentials)."""
    world = site.world
    if caller.role is None:
        path = "/v1/auth/tokens/none"  # no own token to name without credentials
        if action.fresh != "own token":
            path = prepare(world, action).path
        response = httpx.request(action.method, f"{site.url}{path}", headers=VERSION)
        return Answer(response.status_code, response.text)
    path, body, names = prepare(world, action, site.send(caller.name))
    answer = through_sdk(site.sdk(caller.name), site.url, action, path=path, body=body, names=names)
    if action.status == 202 and answer.status == 202:
        site.settle(names["node"])
    return answer


@pytest.mark.parametrize("caller", PERSONAS, ids=[p.name for p in PERSONAS])
def test_openstacksdk_gets_what_the_matrix_says_for_every_action(
    site: Site, caller: Caller
) -> None:
    wrong = []
    for action in ACTIONS:
        expected = MATRIX[action.name][caller.name]
        problem = verdict(action, expected, act_sdk(site, caller, action))
        if problem:
            wrong.append(f"{action.name} ({action.method} {action.path}): "
                         f"expected {expected.name}, got {problem}")  # fmt: skip
    assert not wrong, f"{caller.name}:\n" + "\n".join(wrong)


# --------------------------------------------------------- what is shown, SDK

#: listing kind -> (the SDK's listing, the world's objects of that kind)
LISTINGS = {
    "node": ("nodes", "nodes"),
    "port": ("ports", "ports"),
    "portgroup": ("port_groups", "portgroups"),
    "volume": ("volume_connectors", "connectors"),
    "volume targets": ("volume_targets", "targets"),
}


def shown_labels(site: Site, caller: Caller, kind: str) -> frozenset[str] | int:
    """Which of the world's objects of ``kind`` the SDK lists for ``caller`` (by the
    label of their node), or the HTTP status that refused the listing."""
    listing, attribute = LISTINGS[kind]
    by_uuid = {uuid: label for label, uuid in getattr(site.world, attribute).items()}
    try:
        listed = list(getattr(site.sdk(caller.name).baremetal, listing)(details=True))
    except exceptions.HttpException as exc:
        return exc.status_code or 0
    return frozenset(by_uuid[item.id] for item in listed if item.id in by_uuid)


def test_listings_show_each_persona_what_its_project_owns_or_leases(site: Site) -> None:
    wrong = []
    for caller in PERSONAS[:-1]:
        for kind in LISTINGS:
            expected = visible_nodes(caller, kind.split()[0])
            shown = shown_labels(site, caller, kind)
            if shown != (403 if expected is None else expected):
                wrong.append(f"{caller.name} lists {kind}s of {shown}, expected {expected}")
    assert not wrong, "\n".join(wrong)


@pytest.fixture(scope="module")
def failed_node(site: Site) -> str:
    """A node owned and leased as the matrix's leased node, whose manual cleaning
    failed (so that it has a last_error), with driver_info of its own."""
    world = site.world
    node = world.node()
    world.call("PATCH", f"/v1/nodes/{node}",
               [{"op": "add", "path": "/driver_info/fake_info", "value": "rack 7"}])  # fmt: skip
    world.manage(node)
    step = {"interface": "raid", "step": "create_configuration"}
    body = {"target": "clean", "clean_steps": [step]}
    world.call("PUT", f"/v1/nodes/{node}/states/provision", body, status=202)
    site.settle(node)
    doc = world.call("GET", f"/v1/nodes/{node}")
    assert doc["provision_state"] == "clean failed" and doc["last_error"], doc
    return node


def redacted(document: Any) -> frozenset[str]:
    """The node fields ``document`` (an SDK node or the CLI's JSON) shows redacted."""

    def value(name: str) -> Any:
        return document[name] if isinstance(document, dict) else getattr(document, name)

    return frozenset(name for name, (_, notice) in REDACTED.items() if value(name) == notice())


def test_node_fields_are_redacted_for_who_may_not_see_them(site: Site, failed_node: str) -> None:
    last_error = site.admin.get(f"/v1/nodes/{failed_node}").json()["last_error"]
    wrong = []
    for caller in PERSONAS[:-1]:
        if MATRIX["show node"][caller.name] is not Outcome.ALLOWED:
            continue
        conn = site.sdk(caller.name).baremetal
        shown = conn.get_node(failed_node)
        listed = next(n for n in conn.nodes(details=True) if n.id == failed_node)
        expected = redacted_fields(caller.name)
        for how, node in (("show", shown), ("list", listed)):
            if redacted(node) != expected:
                wrong.append(f"{caller.name} ({how}): {sorted(redacted(node))}")
        if "last_error" not in expected and shown.last_error != last_error:
            wrong.append(f"{caller.name}: last_error {shown.last_error!r}")
        # as in Ironic, whoever sees the states sees last_error there
        states = raw(site.sdk(caller.name), site.url, "GET", f"/v1/nodes/{failed_node}/states")
        if states.result.json()["last_error"] != last_error:
            wrong.append(f"{caller.name}: states show {states.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_target_properties_only_for_who_may_view_them(site: Site) -> None:
    target = site.world.targets["leased"]
    wrong = []
    for caller in PERSONAS[:-1]:
        if MATRIX["show target"][caller.name] is not Outcome.ALLOWED:
            continue
        properties = site.sdk(caller.name).baremetal.get_volume_target(target).properties
        assert "chap-secret" not in str(properties)  # masked even for who may see them
        visible = properties == {"auth_password": "******"}
        if visible != (caller.name in SHOWS_TARGET_PROPERTIES):
            wrong.append(f"{caller.name}: {properties}")
    assert not wrong, "\n".join(wrong)


def test_token_listings_show_ones_own_and_a_system_admin_everyones(site: Site) -> None:
    wrong = []
    for caller in PERSONAS[:-1]:
        listed = raw(site.sdk(caller.name), site.url, "GET", "/v1/auth/tokens").result.json()
        owners = {token["user_name"] for token in listed["tokens"]}
        if caller.name == "system admin":
            if not {p.user for p in PERSONAS if p.user} | {"admin"} <= owners:
                wrong.append(f"{caller.name} lists tokens of {sorted(owners)} only")
        elif owners != {caller.user}:
            wrong.append(f"{caller.name} lists tokens of {sorted(owners)}")
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------- the baremetal CLI


def check_output(name: str, action: Action, answer: Answer, world: World) -> str | None:
    """What is wrong with what the CLI printed for an action that was allowed."""
    if action.name == "list nodes":
        by_uuid = {uuid: label for label, uuid in world.nodes.items()}
        rows = json.loads(answer.result)
        shown = {by_uuid[row["uuid"]] for row in rows if row["uuid"] in by_uuid}
        expected = visible_nodes(BY_NAME[name])
        return None if shown == expected else f"lists {sorted(shown)}, expected {expected}"
    if action.name == "show node":
        fields = redacted(json.loads(answer.result))
        expected = redacted_fields(name)
        return None if fields == expected else f"redacted {sorted(fields)}, expected {expected}"
    if action.name == "show target":
        properties = json.loads(answer.result)["properties"]
        assert "chap-secret" not in str(properties)  # masked even for who may see them
        visible = properties == {"auth_password": "******"}
        return None if visible == (name in SHOWS_TARGET_PROPERTIES) else f"shows {properties}"
    return None


@pytest.mark.parametrize("name", CLI_PERSONAS)
def test_the_baremetal_cli_gets_what_the_matrix_says(site: Site, name: str) -> None:
    world = site.world
    jobs = []
    for action_name, template in CLI_COMMANDS.items():
        action = BY_ACTION[action_name]
        names = prepare(world, action).names
        jobs.append((action, [fill(arg, names, world) for arg in template], names))
    auth = site.cli(name)
    # three commands at once: a `baremetal` process spends a second starting
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda job: through_cli(job[0], job[1], auth), jobs))
    wrong = []
    for (action, argv, names), answer in zip(jobs, answers, strict=True):
        expected = MATRIX[action.name][name]
        problem = verdict(action, expected, answer)
        if problem is None and expected is Outcome.ALLOWED:
            problem = check_output(name, action, answer, world)
            if action.status == 202:
                site.settle(names["node"])
        if problem:
            wrong.append(f"baremetal {' '.join(argv)}: expected {expected.name}, got {problem}")
    assert not wrong, f"{name}:\n" + "\n".join(wrong)


def test_the_clients_tables_name_the_matrix_actions() -> None:
    """The CLI's share of the matrix covers nodes and their traits and history,
    ports, portgroups, volume connectors and targets, chassis, drivers, conductors
    and runbooks, listed, shown, created, updated, deleted and a node's state changed;
    every SDK call stands for an action of the matrix (a misspelt one would quietly
    go through the session instead)."""
    paths = {BY_ACTION[name].path.split("/")[2] for name in CLI_COMMANDS}
    assert paths == {
        "nodes", "ports", "portgroups", "volume", "chassis", "drivers", "conductors", "runbooks"
    }  # fmt: skip
    methods = {BY_ACTION[name].method for name in CLI_COMMANDS}
    assert methods == {"GET", "POST", "PATCH", "PUT", "DELETE"}
    assert set(SDK_CALLS) - {"PATCH node"} <= set(BY_ACTION)


#: what an authenticating proxy would set for a system and owner administrator
FORGED = {
    "X-Roles": "admin,member,reader",
    "OpenStack-System-Scope": "all",
    "X-User-Id": "forged-user",
    "X-Identity-Status": "Confirmed",
}


@pytest.mark.parametrize("action_name", ["create chassis", "show node", "list users"])
def test_forged_identity_headers_grant_no_persona_anything(site: Site, action_name: str) -> None:
    """Identity headers sent with a persona's token change nothing (builtin)."""
    action = BY_ACTION[action_name]
    wrong = []
    for caller in PERSONAS[:-1]:
        path, body, _ = prepare(site.world, action)
        headers = {**VERSION, **FORGED, "X-Auth-Token": site.people[caller.name].token}
        headers["X-Project-Id"] = str(site.world.project_id(OWNER_PROJECT))
        response = httpx.request(action.method, f"{site.url}{path}", headers=headers, json=body)
        expected = MATRIX[action.name][caller.name]
        problem = verdict(action, expected, Answer(response.status_code, response.text))
        if problem:
            wrong.append(f"{caller.name}: expected {expected.name}, got {problem}")
    assert not wrong, "\n".join(wrong)
