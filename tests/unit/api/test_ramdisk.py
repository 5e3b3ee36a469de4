"""/v1/lookup and /v1/heartbeat/{node}: what a ramdisk agent calls, without credentials."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from api_harness import Api, fault_of

from metalcast.db import repository as repo

MAC = "52:54:00:12:34:56"
OTHER_MAC = "52:54:00:ab:cd:ef"
URL = "http://10.0.0.5:9999"


def agent_node(api: Api, state: str = "wait call-back", mac: str = MAC, **fields: Any) -> str:
    """A node with one port, put in ``state`` (as a deploy waiting for its agent)."""
    node = api.node(**fields)
    response = api.post("/v1/ports", {"address": mac, "node_uuid": node["uuid"]})
    assert response.status_code == 201, response.text
    with api.db.begin() as conn:
        repo.update_node(conn, repo.get_node(conn, node["uuid"]).id, {"provision_state": state})
    uuid: str = node["uuid"]
    return uuid


def settle(api: Api, uuid: str) -> dict[str, Any]:
    """The node once the heartbeat's worker let go of its lock."""
    end = time.monotonic() + 10
    while time.monotonic() < end:
        node: dict[str, Any] = api.get(f"/v1/nodes/{uuid}").json()
        if node["reservation"] is None:
            return node
        time.sleep(0.01)
    raise AssertionError("the node stayed locked")


# ---------------------------------------------------------------------------- lookup


def test_lookup_by_mac_returns_ironics_shape(api: Api) -> None:
    uuid = agent_node(api, properties={"cpus": 4})
    response = api.get(f"/v1/lookup?addresses={OTHER_MAC.upper()},{MAC.upper()}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"node", "config"}
    assert set(body["node"]) == {
        "uuid",
        "properties",
        "instance_info",
        "driver_internal_info",
        "links",
    }
    assert body["node"]["uuid"] == uuid
    assert body["node"]["properties"] == {"cpus": 4}
    assert body["config"]["heartbeat_timeout"] == 300


def test_lookup_by_uuid(api: Api) -> None:
    uuid = agent_node(api, "clean wait")
    assert api.get(f"/v1/lookup?node_uuid={uuid}").json()["node"]["uuid"] == uuid


@pytest.mark.parametrize(
    "state", ["deploying", "cleaning", "inspect wait", "rescue wait", "service wait"]
)
def test_lookup_in_every_agent_state(api: Api, state: str) -> None:
    uuid = agent_node(api, state)
    assert api.get(f"/v1/lookup?addresses={MAC}").json()["node"]["uuid"] == uuid


@pytest.mark.parametrize("state", ["enroll", "available", "active", "deploy failed"])
def test_lookup_outside_agent_states_is_the_same_404_as_no_node(api: Api, state: str) -> None:
    uuid = agent_node(api, state)
    wrong_state = api.get(f"/v1/lookup?node_uuid={uuid}")
    unknown = api.get("/v1/lookup?node_uuid=00000000-0000-4000-8000-000000000000")
    by_mac = api.get(f"/v1/lookup?addresses={MAC}")
    no_port = api.get(f"/v1/lookup?addresses={OTHER_MAC}")
    assert {r.status_code for r in (wrong_state, unknown, by_mac, no_port)} == {404}
    messages = {fault_of(r) for r in (wrong_state, unknown, by_mac, no_port)}
    assert messages == {"No node matching the lookup is waiting for an agent."}


def test_lookup_of_macs_on_two_nodes_is_not_found(api: Api) -> None:
    agent_node(api)
    agent_node(api, mac=OTHER_MAC)
    assert api.get(f"/v1/lookup?addresses={MAC},{OTHER_MAC}").status_code == 404


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("addresses=not-a-mac", "Expected MAC addresses but received not-a-mac"),
        ("addresses=52:54:00:12:34", "Expected MAC addresses"),
        ("", "At least one of 'addresses' and 'node_uuid'"),
        ("node_uuid=node-1", "Expected node_uuid to be a UUID in canonical form"),
        (f"addresses={MAC}&mac={MAC}", "Unknown parameter(s) for a lookup: mac"),
    ],
)
def test_bad_lookups_are_400(api: Api, query: str, needle: str) -> None:
    response = api.get(f"/v1/lookup?{query}")
    assert response.status_code == 400
    assert needle in fault_of(response)


def test_lookup_ignores_invalid_macs_next_to_a_valid_one(api: Api) -> None:
    uuid = agent_node(api)
    assert api.get(f"/v1/lookup?addresses=junk,{MAC}").json()["node"]["uuid"] == uuid


def test_lookup_never_returns_secrets(api: Api) -> None:
    uuid = agent_node(
        api,
        driver_info={"ipmi_password": "hunter2", "ipmi_address": "10.0.0.1"},
        instance_info={"image_source": "http://img", "configdrive": "c2VjcmV0", "x_token": "t0k"},
    )
    with api.db.begin() as conn:
        node = repo.get_node(conn, uuid)
        info = {**node.driver_internal_info, "agent_secret_token": "s3cr3t"}
        repo.update_node(conn, node.id, {"driver_internal_info": info})
    body = api.get(f"/v1/lookup?addresses={MAC}").json()
    text = orjson.dumps(body).decode()
    for secret in ("hunter2", "c2VjcmV0", "t0k", "s3cr3t", "10.0.0.1"):
        assert secret not in text
    assert "driver_info" not in body["node"]
    assert body["node"]["instance_info"]["configdrive"] == "******"
    assert body["node"]["instance_info"]["image_source"] == "http://img"
    assert body["node"]["driver_internal_info"]["agent_secret_token"] == "******"


def test_lookup_needs_1_22(api: Api) -> None:
    agent_node(api)
    assert api.get(f"/v1/lookup?addresses={MAC}", version="1.21").status_code == 404
    assert api.get(f"/v1/lookup?addresses={MAC}", version=None).status_code == 404
    assert api.get(f"/v1/lookup?addresses={MAC}", version="1.22").status_code == 200
    assert api.get(f"/v1/lookup?addresses={MAC}", version="1.116").status_code == 406


def test_v1_links_the_agent_endpoints_from_1_22(api: Api) -> None:
    assert {"lookup", "heartbeat"} <= set(api.get("/v1", version="1.22").json())
    assert "lookup" not in api.get("/v1", version="1.21").json()


# ------------------------------------------------------------------------- heartbeat


def test_heartbeat_is_recorded_and_shown_on_the_node(api: Api) -> None:
    uuid = agent_node(api)
    body = {"callback_url": URL, "agent_version": "9.1.0"}
    response = api.post(f"/v1/heartbeat/{uuid}", body)
    assert response.status_code == 202, response.text
    node = settle(api, uuid)
    info = node["driver_internal_info"]
    assert info["agent_url"] == URL
    assert info["agent_version"] == "9.1.0"
    assert info["agent_last_heartbeat"]
    assert node["provision_state"] == "wait call-back"


def test_heartbeat_by_name(api: Api) -> None:
    uuid = agent_node(api, name="node-7")
    assert api.post("/v1/heartbeat/node-7", {"callback_url": URL}).status_code == 202
    assert settle(api, uuid)["driver_internal_info"]["agent_version"] == "3.0.0"


def test_heartbeat_naming_its_node_in_the_body(api: Api) -> None:
    # Ironic takes POST /v1/heartbeat with node_ident in the body too (its tempest
    # plugin's client heartbeats that way)
    uuid = agent_node(api, name="node-8")
    body = {"node_ident": "node-8", "callback_url": URL, "agent_version": "9.2.0"}
    assert api.post("/v1/heartbeat", body).status_code == 202
    assert settle(api, uuid)["driver_internal_info"]["agent_version"] == "9.2.0"
    missing = api.post("/v1/heartbeat", {"callback_url": URL})
    assert missing.status_code == 400
    assert "node_ident" in fault_of(missing)
    assert api.post("/v1/heartbeat", {"node_ident": "nope", "callback_url": URL}).status_code == 404
    assert api.post("/v1/heartbeat", body, version="1.21").status_code == 404


def test_heartbeat_on_a_locked_node_is_409(api: Api) -> None:
    uuid = agent_node(api)
    with api.db.begin() as conn:
        repo.reserve_node(conn, repo.get_node(conn, uuid).id, "other-conductor")
    response = api.post(f"/v1/heartbeat/{uuid}", {"callback_url": URL})
    assert response.status_code == 409
    assert "locked" in fault_of(response)


def test_heartbeat_outside_agent_states_is_409(api: Api) -> None:
    uuid = agent_node(api, "active")
    response = api.post(f"/v1/heartbeat/{uuid}", {"callback_url": URL})
    assert response.status_code == 409
    assert "is not expecting an agent heartbeat" in fault_of(response)
    assert "agent_url" not in settle(api, uuid)["driver_internal_info"]


def test_heartbeat_of_an_unknown_node_is_404(api: Api) -> None:
    assert api.post("/v1/heartbeat/nope", {"callback_url": URL}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"callback_url": None},
        {"callback_url": 7},
        {"callback_url": "not a url"},
        {"callback_url": "ftp://10.0.0.5/"},
        {"callback_url": "http://"},
        {"callback_url": "http://10.0.0.5:99999"},
        {"agent_token": 7},
        {"agent_token": "t", "results": {"id": 1}},
        {"agent_token": "t", "progress": []},
    ],
)
def test_heartbeat_needs_a_callback_url_or_a_token(api: Api, body: Any) -> None:
    uuid = agent_node(api)
    assert api.post(f"/v1/heartbeat/{uuid}", body).status_code == 400


def test_heartbeat_with_a_token_nobody_issued_is_refused(api: Api) -> None:
    uuid = agent_node(api)
    response = api.post(f"/v1/heartbeat/{uuid}", {"agent_token": "guessed"})
    assert response.status_code == 403
    assert "agent token" in fault_of(response)


def test_heartbeat_version_gating(api: Api) -> None:
    uuid = agent_node(api)
    plain = {"callback_url": URL}
    versioned = {"callback_url": URL, "agent_version": "9.1.0"}
    assert api.post(f"/v1/heartbeat/{uuid}", plain, version="1.21").status_code == 404
    old = api.post(f"/v1/heartbeat/{uuid}", versioned, version="1.35")
    assert old.status_code == 400
    assert fault_of(old) == 'Field "agent_version" not recognised.'
    assert api.post(f"/v1/heartbeat/{uuid}", plain, version="1.22").status_code == 202
    settle(api, uuid)
    assert api.post(f"/v1/heartbeat/{uuid}", versioned, version="1.36").status_code == 202


def test_an_agent_speaking_1_22_is_served(api: Api) -> None:
    # ironic-tempest-plugin's TestUtilityMicroversions heartbeats at 1.22 with a
    # callback URL and a token: the endpoint exists there (only agent_version is too
    # new, a 400 as in Ironic), and 404 below it
    uuid = agent_node(api)
    found = api.get(f"/v1/lookup?addresses={MAC}", version="1.22").json()
    token = found["config"]["agent_token"]
    beat = {"callback_url": URL, "agent_token": token}
    for version in ("1.21", "1.12"):
        response = api.post(f"/v1/heartbeat/{uuid}", beat, version=version)
        assert response.status_code == 404
        assert fault_of(response) == "The resource could not be found."
    with_version = {**beat, "agent_version": "1.0"}
    response = api.post(f"/v1/heartbeat/{uuid}", with_version, version="1.22")
    assert response.status_code == 400
    assert fault_of(response) == 'Field "agent_version" not recognised.'
    assert api.post(f"/v1/heartbeat/{uuid}", beat, version="1.22").status_code == 202
    node = settle(api, uuid)
    assert node["driver_internal_info"]["agent_url"] == URL


# ---------------------------------------------------------------------------- policy


def test_agent_endpoints_need_no_credentials(secured: Api) -> None:
    uuid = agent_node(secured.as_("admin"))
    anonymous = secured.as_("")
    assert anonymous.get("/v1/nodes").status_code == 403
    found = anonymous.get(f"/v1/lookup?addresses={MAC}").json()
    assert found["node"]["uuid"] == uuid
    token = found["config"]["agent_token"]
    beat = {"callback_url": URL, "agent_token": token}
    assert anonymous.post(f"/v1/heartbeat/{uuid}", beat).status_code == 202
