"""Hostile input: oversized bodies, UUID spellings, forged proxy headers, and the
inputs that used to end in a 500.  Each refusal is checked for its status, its
message (Ironic's error body) and for nothing being written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import orjson
import pytest
from api_harness import BASE, LATEST, Api, Client, build, fault_of

from metalcast.api.limits import MAX_DEPTH, body_limit
from metalcast.config import ApiSettings, ImagesSettings, Settings

MiB = 1024 * 1024


def node_count(api: Api) -> int:
    return len(api.get("/v1/nodes").json()["nodes"])


def nested(depth: int) -> bytes:
    """A JSON object nested ``depth`` levels deep."""
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


# ----------------------------------------------------------------------- body size


def test_a_10_mb_extra_is_413_in_ironics_shape_and_nothing_is_created(api: Api) -> None:
    body = {"driver": "fake-hardware", "extra": {"blob": "x" * (10 * MiB)}}
    response = api.post("/v1/nodes", body)
    assert response.status_code == 413
    assert "larger than the 1048576 bytes" in fault_of(response)
    assert node_count(api) == 0


def test_a_body_just_under_the_limit_is_read(api: Api) -> None:
    body = {"driver": "fake-hardware", "extra": {"blob": "x" * (MiB - 100)}}
    assert api.post("/v1/nodes", body).status_code == 201


def chunked_request(api: Api, path: str, *, chunks: int, size: int) -> tuple[int, int]:
    """PUT ``chunks`` pieces of ``size`` bytes without a Content-Length (chunked);
    the status and how many pieces the app pulled before answering."""
    pulled = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal pulled
        yield b'{"target": "manage", "x": "'
        for _ in range(chunks):
            pulled += 1
            yield b"x" * size
        yield b'"}'

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=api.client.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            headers = {"X-OpenStack-Ironic-API-Version": LATEST}
            return await client.put(path, content=body(), headers=headers)

    response = anyio.run(send)
    assert "content-length" not in response.request.headers
    return response.status_code, pulled


def test_a_chunked_body_is_cut_off_at_the_limit_not_buffered(api: Api) -> None:
    node = api.node()
    status, pulled = chunked_request(
        api, f"/v1/nodes/{node['uuid']}/maintenance", chunks=160, size=64 * 1024
    )
    assert status == 413
    # 1 MiB is 16 pieces of 64 KiB: the app stopped reading right after them
    assert pulled <= 17
    assert api.get(f"/v1/nodes/{node['uuid']}").json()["maintenance"] is False


def test_the_provision_endpoint_takes_a_config_drive_sized_body(api: Api) -> None:
    node = api.node()
    drive = {"user_data": "#cloud-config\n" + "x" * (3 * MiB)}
    response = api.put(
        f"/v1/nodes/{node['uuid']}/states/provision", {"target": "manage", "configdrive": drive}
    )
    # past the body limit of other endpoints, and judged on its content
    assert response.status_code == 400
    assert '"configdrive" is only valid' in fault_of(response)


def test_the_provision_body_limit_grows_with_the_config_drive_limit() -> None:
    settings = Settings(
        api=ApiSettings(max_request_bytes=MiB),
        images=ImagesSettings(configdrive_max_bytes=3 * MiB),
    )
    provision = "/v1/nodes/n1/states/provision"
    assert body_limit(settings, method="PUT", path=provision) == MiB + 4 * MiB
    assert body_limit(settings, method="PUT", path="/v1/nodes/n1/states/power") == MiB
    assert body_limit(settings, method="POST", path="/v1/nodes") == MiB


# --------------------------------------------------------------------------- UUIDs


def shuffled(value: str) -> str:
    """The same 32 hex digits with the dashes moved."""
    digits = value.replace("-", "")
    return f"{digits[:7]}-{digits[7:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def test_an_upper_case_uuid_is_the_same_node(api: Api) -> None:
    node = api.node(name="n1")
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "uuid": node["uuid"].upper()})
    assert response.status_code == 409
    assert node_count(api) == 1
    found = api.get(f"/v1/nodes/{node['uuid'].upper()}")
    assert found.status_code == 200
    assert found.json()["name"] == "n1"


def test_a_uuid_given_in_upper_case_is_stored_in_lower_case(api: Api) -> None:
    wanted = str(uuid.uuid4())
    created = api.post("/v1/nodes", {"driver": "fake-hardware", "uuid": wanted.upper()})
    assert created.json()["uuid"] == wanted
    assert api.get(f"/v1/nodes/{wanted}").status_code == 200
    assert created.headers["Location"].endswith(wanted)


def test_a_dash_shuffled_uuid_is_refused_everywhere(api: Api) -> None:
    node = api.node()
    odd = shuffled(node["uuid"])
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "uuid": odd})
    assert response.status_code == 400
    assert "canonical form (8-4-4-4-12 hexadecimal digits" in fault_of(response)
    assert node_count(api) == 1
    for path in (f"/v1/nodes/{odd}", f"/v1/nodes/{odd.replace('-', '')}"):
        response = api.get(path)
        assert response.status_code == 400, path
        assert "canonical form" in fault_of(response)


def test_names_that_read_as_uuids_are_refused(api: Api) -> None:
    node = api.node()
    for name in (shuffled(node["uuid"]), node["uuid"].replace("-", ""), node["uuid"].upper()):
        response = api.post("/v1/nodes", {"driver": "fake-hardware", "name": name})
        assert response.status_code == 400, name
        assert "not a valid logical name" in fault_of(response)
    assert node_count(api) == 1


def test_uuids_in_bodies_filters_and_markers_compare_in_any_case(api: Api) -> None:
    instance = str(uuid.uuid4())
    node = api.node(instance_uuid=instance.upper())
    assert node["instance_uuid"] == instance
    listed = api.get(f"/v1/nodes?instance_uuid={instance.upper()}").json()["nodes"]
    assert [n["uuid"] for n in listed] == [node["uuid"]]
    second = api.node()
    page = api.get(f"/v1/nodes?marker={node['uuid'].upper()}").json()["nodes"]
    assert [n["uuid"] for n in page] == [second["uuid"]]
    again = api.post("/v1/nodes", {"driver": "fake-hardware", "instance_uuid": instance.upper()})
    assert again.status_code == 409


def test_ports_name_their_node_and_are_found_in_any_case(api: Api) -> None:
    node = api.node()
    port_uuid = str(uuid.uuid4())
    body = {"address": "52:54:00:aa:bb:01", "node_uuid": node["uuid"].upper(), "uuid": port_uuid}
    created = api.post("/v1/ports", body)
    assert created.status_code == 201, created.text
    assert created.json()["node_uuid"] == node["uuid"]
    assert api.get(f"/v1/ports/{port_uuid.upper()}").json()["uuid"] == port_uuid
    odd = {**body, "node_uuid": shuffled(node["uuid"]), "address": "52:54:00:aa:bb:02"}
    refused = api.post("/v1/ports", odd)
    assert refused.status_code == 400
    assert "canonical form" in fault_of(refused)


def test_path_lookups_refuse_what_is_neither_a_uuid_nor_a_name(api: Api) -> None:
    for ident in ("a" * 300, "bad name", "caf%C3%A9"):
        response = api.get(f"/v1/nodes/{ident}")
        assert response.status_code == 400, ident
        assert "Expected a logical name or UUID" in fault_of(response)
    response = api.get("/v1/chassis/not-a-uuid")
    assert response.status_code == 400
    assert "Expected a UUID in canonical form" in fault_of(response)


# ---------------------------------------------------------------- proxy headers


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[Api]:
    """The app believing X-Forwarded-* from 10.1.2.3 only."""
    yield from build(tmp_path, "noauth", trusted_proxies=("10.1.2.3",))


FORGED = {"X-Forwarded-Host": "evil.example:443", "X-Forwarded-Proto": "https"}


def self_link(api: Api, *, peer: str) -> str:
    client = Client(api.client.app, peer=peer)
    peered = Api(client, api.db, api.service, api.version)
    href: str = peered.get("/v1", headers=FORGED).json()["links"][0]["href"]
    return href


def test_forwarded_headers_are_ignored_from_anyone_but_a_trusted_proxy(
    behind_proxy: Api,
) -> None:
    assert self_link(behind_proxy, peer="127.0.0.1") == "http://testserver/v1/"
    assert self_link(behind_proxy, peer="10.1.2.4") == "http://testserver/v1/"
    assert self_link(behind_proxy, peer="10.1.2.3") == "https://evil.example:443/v1/"


def test_without_trusted_proxies_no_forwarded_header_is_believed(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware"}, headers=FORGED)
    assert response.headers["Location"].startswith("http://testserver/v1/nodes/")
    assert "evil.example" not in response.text


def test_a_trusted_proxy_cannot_inject_a_malformed_host(behind_proxy: Api) -> None:
    client = Client(behind_proxy.client.app, peer="10.1.2.3")
    peered = Api(client, behind_proxy.db, behind_proxy.service, behind_proxy.version)
    headers = {"X-Forwarded-Host": "a/b@evil", "X-Forwarded-Proto": "javascript"}
    href = peered.get("/v1", headers=headers).json()["links"][0]["href"]
    assert href == "http://testserver/v1/"


# ------------------------------------------------------------- what used to be 500s


def test_a_5000_digit_microversion_is_400(api: Api) -> None:
    response = api.get("/v1/nodes", version="1." + "9" * 5000)
    assert response.status_code == 400
    message = fault_of(response)
    assert message.startswith("Invalid value for X-OpenStack-Ironic-API-Version header")
    assert len(message) < 200


def test_json_nested_500_deep_is_400_on_create_and_patch(api: Api) -> None:
    raw = b'{"driver": "fake-hardware", "extra": ' + nested(500) + b"}"
    response = api.post("/v1/nodes", raw=raw)
    assert response.status_code == 400
    assert f"nested deeper than {MAX_DEPTH} levels" in fault_of(response)
    node = api.node()
    patch = b'[{"op": "add", "path": "/extra/deep", "value": ' + nested(500) + b"}]"
    response = api.patch(f"/v1/nodes/{node['uuid']}", raw=patch)
    assert response.status_code == 400
    assert api.get(f"/v1/nodes/{node['uuid']}").json()["extra"] == {}


def test_patches_cannot_pile_up_a_document_too_deep_to_render(api: Api) -> None:
    node = api.node()
    path = "/extra" + "/a" * 20
    first = orjson.loads(nested(20))
    assert api.patch(f"/v1/nodes/{node['uuid']}", [
        {"op": "add", "path": "/extra/a", "value": first},
    ]).status_code == 200  # fmt: skip
    response = api.patch(f"/v1/nodes/{node['uuid']}", [
        {"op": "add", "path": path[: len("/extra") + 2 * 19] + "/b", "value": first},
    ])  # fmt: skip
    assert response.status_code == 400
    assert f"Invalid value for field 'extra': it is nested deeper than {MAX_DEPTH}" in fault_of(
        response
    )
    assert api.get(f"/v1/nodes/{node['uuid']}").status_code == 200


def target_body(node: str, boot_index: int) -> dict[str, Any]:
    return {"node_uuid": node, "volume_type": "iscsi", "boot_index": boot_index, "volume_id": "v1"}


@pytest.mark.parametrize("boot_index", [2**63, 2**31, -(2**31) - 1])
def test_a_boot_index_the_database_cannot_hold_is_400_with_the_range(
    api: Api, boot_index: int
) -> None:
    node = api.node()
    response = api.post("/v1/volume/targets", target_body(node["uuid"], boot_index))
    assert response.status_code == 400
    assert "must be an integer from -2147483648 to 2147483647" in fault_of(response)
    assert api.get("/v1/volume/targets").json()["targets"] == []
    created = api.post("/v1/volume/targets", target_body(node["uuid"], 2**31 - 1))
    assert created.status_code == 201
    patch = [{"op": "replace", "path": "/boot_index", "value": 2**63}]
    response = api.patch(f"/v1/volume/targets/{created.json()['uuid']}", patch)
    assert response.status_code == 400


def test_a_power_timeout_past_an_hour_is_400(api: Api) -> None:
    node = api.node()
    body = {"target": "power off", "timeout": 2**63}
    response = api.put(f"/v1/nodes/{node['uuid']}/states/power", body)
    assert response.status_code == 400
    assert "must be an integer from 1 to 3600" in fault_of(response)


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("limit=" + "9" * 5000, "Invalid value for limit"),
        ("limit=-1", "Limit must be positive"),
        ("marker=" + "A" * 36, "Expected the marker to be a UUID"),
        ("instance_uuid=1234", "Expected instance_uuid to be a UUID"),
        ("owner=a%00b", "The request query string holds control characters"),
    ],
)
def test_bad_list_parameters_are_400(api: Api, query: str, needle: str) -> None:
    response = api.get(f"/v1/nodes?{query}")
    assert response.status_code == 400
    message = fault_of(response)
    assert needle in message
    assert len(message) < 400


def test_a_huge_limit_is_capped(api: Api) -> None:
    api.node()
    assert len(api.get(f"/v1/nodes?limit={2**70}").json()["nodes"]) == 1


def test_nul_characters_are_refused_in_paths_and_bodies(api: Api) -> None:
    response = api.get("/v1/nodes/a%00b")
    assert response.status_code == 400
    assert "The request path holds control characters" in fault_of(response)
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "extra": {"k\u0000": "v"}})
    assert response.status_code == 400
    assert "NUL character" in fault_of(response)
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "description": "a\u0000b"})
    assert response.status_code == 400
    assert node_count(api) == 0


def test_a_body_that_is_not_utf8_is_400(api: Api) -> None:
    response = api.post("/v1/nodes", raw=b'{"driver": "fake-hardware", "name": "\xff\xfe"}')
    assert response.status_code == 400
    assert "not valid JSON" in fault_of(response)


@pytest.mark.parametrize("index", ["\u00b2", "9" * 5000, "01"])
def test_odd_list_indexes_in_a_patch_are_400(api: Api, index: str) -> None:
    node = api.node(extra={"list": [1, 2]})
    patch = [{"op": "replace", "path": f"/extra/list/{index}", "value": 3}]
    response = api.patch(f"/v1/nodes/{node['uuid']}", patch)
    assert response.status_code == 400
    assert "Invalid list index" in fault_of(response)


def test_a_history_event_that_is_not_a_uuid_is_400(api: Api) -> None:
    node = api.node()
    response = api.get(f"/v1/nodes/{node['uuid']}/history/" + "A" * 36)
    assert response.status_code == 400
    assert "canonical form" in fault_of(response)


def test_an_empty_fields_parameter_is_as_if_absent(api: Api) -> None:
    node = api.node(name="n1")
    shown = api.get(f"/v1/nodes/{node['uuid']}?fields=")
    assert shown.status_code == 200
    assert shown.json()["name"] == "n1"
    assert api.get("/v1/nodes?fields=,").status_code == 200
