"""The persona matrix holds with Keystone tokens: representative actions as each of
:data:`keystonelab.PERSONAS`, through openstacksdk logged in to the real Keystone
with passwords, and the ``baremetal`` CLI with their Keystone tokens.

A ``metalcast server`` of this module's own (so that its nodes stay out of the other
Keystone tests' listings) validates the session's Keystone.  On the matrix's world
(``policy_world.World``: a node owned by project-a and leased to project-b, others
for the listings) the Keystone personas are matrix personas: the system
administrator and reader are "system admin" and "system reader", project-a's
member and reader "owner member" and "owner reader", project-b's member "lessee
member"; and project-a's member is "other member" to a node project-b owns alone.
The expected answers are ``policy_matrix.MATRIX``, as for the builtin users of
``tests/integration/clients/test_policy_clients.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from keystonelab import Keystone, Persona, Tenancy, metalcast_env
from openstack.connection import Connection
from policy_clients import (
    VERSION,
    Answer,
    cli_auth,
    settle,
    through_cli,
    through_sdk,
    verdict,
)
from policy_matrix import BY_ACTION, MATRIX, Outcome, redacted_fields, visible_nodes
from policy_world import World, fill, prepare

from metalcast.api.policy import REDACTED
from metalcast.api.policy.callers import BY_NAME, LESSEE_PROJECT, OTHER_PROJECT, OWNER_PROJECT

#: Keystone persona -> the matrix persona it is on the world's leased node
AS = {
    "system-admin": "system admin",
    "system-reader": "system reader",
    "a-member": "owner member",
    "a-reader": "owner reader",
    "b-member": "lessee member",
}
#: every resource, and reading, changing, creating, deleting and a state change
ACTIONS = (
    "list nodes",
    "show node",
    "PATCH node /extra/a",
    "PATCH node /driver_info/fake_info",
    "power",
    "set boot device",
    "list traits",
    "history",
    "show port",
    "create port",
    "update portgroup",
    "delete connector",
    "show target",
    "list chassis",
    "create chassis",
    "list conductors",
    "whoami",
    "list users",
)


@dataclass
class Site:
    url: str
    keystone: Keystone
    admin: httpx.Client
    world: World

    def connect(self, persona: Persona) -> Connection:
        """openstacksdk logged in to Keystone as ``persona``, talking to this server."""
        return persona.connect(self.keystone, baremetal_endpoint_override=self.url)


@pytest.fixture(scope="module")
def site(tenancy: Tenancy, keystone: Keystone, start_metalcast_server: Any) -> Iterator[Site]:
    ids = tenancy.project_ids
    projects = {
        OWNER_PROJECT: ids["project-a"],
        LESSEE_PROJECT: ids["project-b"],
        OTHER_PROJECT: ids["service"],  # a project none of the personas is in
    }
    with start_metalcast_server(env=metalcast_env(keystone)) as server:
        token = tenancy.persona("system-admin").token(keystone)
        headers = {**VERSION, "X-Auth-Token": token}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as admin:
            conductor = admin.get("/v1/conductors").json()["conductors"][0]["hostname"]
            world = World(
                lambda method, path, body: admin.request(method, path, json=body),
                settle=lambda node: settle(admin, node),
                projects=projects,
                conductor=conductor,
            )
            yield Site(server.url, keystone, admin, world)


def act(site: Site, conn: Connection, action_name: str, *, seen_as: str) -> str | None:
    """What is wrong with ``action_name`` done through ``conn`` by who the matrix
    calls ``seen_as`` (None: nothing)."""
    action = BY_ACTION[action_name]
    path, body, names = prepare(site.world, action)
    answer = through_sdk(conn, site.url, action, path=path, body=body, names=names)
    if answer.status == 202:
        settle(site.admin, names["node"])
    return verdict(action, MATRIX[action_name][seen_as], answer)


@pytest.mark.parametrize("persona", sorted(AS))
def test_keystone_tokens_get_what_the_matrix_says(
    site: Site, tenancy: Tenancy, persona: str
) -> None:
    conn = site.connect(tenancy.persona(persona))
    wrong = []
    for name in ACTIONS:
        problem = act(site, conn, name, seen_as=AS[persona])
        if problem:
            wrong.append(f"{name}: {problem}")
    seen_as = AS[persona]
    by_uuid = {uuid: label for label, uuid in site.world.nodes.items()}
    listed = {by_uuid[n.id] for n in conn.baremetal.nodes() if n.id in by_uuid}
    if listed != visible_nodes(BY_NAME[seen_as]):
        wrong.append(f"lists {sorted(listed)}")
    if MATRIX["show node"][seen_as] is Outcome.ALLOWED:
        node = conn.baremetal.get_node(site.world.leased)
        shown = {f for f, (_, notice) in REDACTED.items() if getattr(node, f) == notice()}
        if shown != redacted_fields(seen_as):
            wrong.append(f"redacted {sorted(shown)}")
    assert not wrong, f"{persona} as {AS[persona]}:\n" + "\n".join(wrong)


def test_a_member_of_another_project_learns_nothing(site: Site, tenancy: Tenancy) -> None:
    """project-a's member on the node project-b owns alone: "other member"."""
    world = site.world
    conn = site.connect(tenancy.persona("a-member"))
    names = {
        **world.fresh(None),
        "node": world.nodes["lessee's own"],
        "port": world.ports["lessee's own"],
        "portgroup": world.portgroups["lessee's own"],
        "target": world.targets["lessee's own"],
    }
    wrong = []
    for name in ("show node", "history", "list traits", "show port", "update portgroup",
                 "show target", "set boot device", "PATCH node /extra/a"):  # fmt: skip
        action = BY_ACTION[name]
        path = fill(action.path, names, world)
        body = fill(action.body, names, world)
        answer = through_sdk(conn, site.url, action, path=path, body=body, names=names)
        problem = verdict(action, MATRIX[name]["other member"], answer)
        if problem:
            wrong.append(f"{name}: {problem}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("persona", sorted(AS))
def test_the_baremetal_cli_with_keystone_tokens(site: Site, tenancy: Tenancy, persona: str) -> None:
    """``node show`` of the leased node through the CLI with the persona's Keystone
    token (``admin_token``: the catalog's baremetal endpoint is the session's other
    server, and the CLI finds no endpoint of its own for a password login)."""
    action = BY_ACTION["show node"]
    token = tenancy.persona(persona).token(site.keystone)
    argv = ("node", "show", site.world.leased, "-f", "json")
    answer: Answer = through_cli(action, argv, cli_auth(site.url, token=token))
    expected = MATRIX["show node"][AS[persona]]
    assert verdict(action, expected, answer) is None, answer.text
    if expected is Outcome.ALLOWED:
        shown = json.loads(answer.result)
        assert shown["owner"] == tenancy.project_ids["project-a"]
        assert shown["lessee"] == tenancy.project_ids["project-b"]
