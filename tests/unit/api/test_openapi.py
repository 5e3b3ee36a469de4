"""The OpenAPI description: valid OpenAPI 3.1, every route described, served once per app.

The live check of every answer against the description is schemathesis'
(tests/integration/server/test_openapi_conformance.py); these tests check the document
itself and the declarations it is made of.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import orjson
import pytest
from api_harness import Api, fault_of
from openapi_spec_validator import validate
from starlette.routing import Route

from metalcast.api import app as api_app
from metalcast.api import openapi
from metalcast.api.endpoint import Call, endpoint
from metalcast.api.operations import Operation, body, field_schema
from metalcast.api.policy.rules import RULES
from metalcast.api.routes import nodes
from metalcast.api.schema import Field, check_choice
from metalcast.api.versions import MAX_VERSION

DOCUMENT = openapi.describe(api_app.routes())


def test_the_description_is_valid_openapi_3_1() -> None:
    validate(copy.deepcopy(DOCUMENT))
    assert DOCUMENT["openapi"] == "3.1.0"
    assert DOCUMENT["info"]["version"] == str(MAX_VERSION)


def test_every_route_is_described() -> None:
    """A route added without doc=... fails here (and makes the description fail)."""
    assert openapi.undescribed(api_app.routes()) == []
    described = {
        (method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item
    }
    for route in api_app.routes():
        assert isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}:
            assert (method, route.path) in described, f"{method} {route.path}"


def test_a_route_without_a_description_is_refused() -> None:
    @endpoint("api:discovery")
    def undocumented(call: Call) -> object:
        return {}

    routes = [*api_app.routes(), Route("/v1/new-thing", undocumented, methods=["GET", "POST"])]
    assert openapi.undescribed(routes) == ["GET /v1/new-thing", "POST /v1/new-thing"]
    with pytest.raises(openapi.Undescribed, match="GET /v1/new-thing has no description"):
        openapi.describe(routes)


def test_every_operation_names_its_policy_rules() -> None:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            guarding = {
                rule.name
                for rule in RULES
                for m, p in rule.operations
                if m in (method.upper(), "*") and p.split("?")[0] == path
            }
            assert operation["x-policy-rule"] in operation["x-policy-rules"]
            assert guarding <= set(operation["x-policy-rules"]), f"{method} {path}"
            assert operation["x-policy-rule"] in operation["description"]


def test_public_paths_need_no_credentials_and_others_say_401() -> None:
    public = {
        "/", "/v1", "/v1/lookup", "/v1/heartbeat", "/v1/heartbeat/{node}",
        "/v1/continue_inspection", "/v1/openapi.json",
    }  # fmt: skip
    for path, item in DOCUMENT["paths"].items():
        for operation in item.values():
            if path in public:
                assert operation["security"] == []
                assert "401" not in operation["responses"]
            else:
                assert "security" not in operation  # the document's: Basic or a token
                assert "401" in operation["responses"]
    schemes = DOCUMENT["components"]["securitySchemes"]
    assert schemes["basic"] == {**schemes["basic"], "type": "http", "scheme": "basic"}
    assert schemes["token"]["name"] == "X-Auth-Token"


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = DOCUMENT["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def test_version_gated_fields_say_from_which_version() -> None:
    node = _resolve({"$ref": "#/components/schemas/Node"})["properties"]
    assert node["traits"]["x-metalcast-min-version"] == "1.37"
    assert "From API version 1.37." in node["traits"]["description"]
    assert "x-metalcast-min-version" not in node["uuid"]
    assert node["lessee"]["x-metalcast-min-version"] == "1.65"
    assert "From API version 1.65." in node["lessee"]["description"]
    assert node["firmware_interface"]["x-metalcast-min-version"] == "1.86"
    assert "From API version 1.86." in node["firmware_interface"]["description"]
    assert node["shard"]["x-metalcast-min-version"] == "1.82"
    traits = DOCUMENT["paths"]["/v1/nodes/{node}/traits"]["get"]
    assert traits["x-metalcast-min-version"] == "1.37"


def test_request_bodies_come_from_the_field_declarations() -> None:
    create = _resolve(
        DOCUMENT["paths"]["/v1/nodes"]["post"]["requestBody"]["content"]["application/json"][
            "schema"
        ]
    )
    assert set(create["properties"]) == set(nodes.node_fields.CREATABLE)
    assert create["required"] == ["driver"]
    assert create["additionalProperties"] is False
    assert create["properties"]["driver"]["type"] == "string"  # required: not null
    assert create["properties"]["resource_class"]["maxLength"] == 80
    assert create["properties"]["uuid"]["format"] == "uuid"
    patch = _resolve(
        DOCUMENT["paths"]["/v1/nodes/{node}"]["patch"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
    )
    assert patch["type"] == "array"
    assert patch["items"]["properties"]["op"]["enum"] == ["add", "remove", "replace"]


def test_field_schemas_accept_what_the_checks_accept() -> None:
    cases: list[tuple[Field, object, bool]] = [
        (Field("string", max_length=3), "abc", True),
        (Field("string", max_length=3), "abcd", False),
        (Field("string", nullable=False), None, False),
        (Field("string"), None, True),
        (Field("integer"), True, False),  # JSON Schema too: a boolean is no integer
        (Field("integer"), 2**31 - 1, True),
        (Field("object"), [], False),
        (Field(check=check_choice(["iqn", "ip"])), "iqn", True),
        (Field(check=check_choice(["iqn", "ip"])), "wwn", False),
    ]
    for spec, value, accepted in cases:
        schema = field_schema(spec)
        assert isinstance(schema, dict)
        valid = jsonschema.Draft202012Validator(schema).is_valid(value)
        assert valid is accepted, (spec, value)


def test_named_bodies_are_components() -> None:
    named = body({"name": Field()}, name="Thing")
    operation = Operation("make a thing", body=named)
    assert operation.body is named
    assert "NodeCreate" in DOCUMENT["components"]["schemas"]
    assert "Error" in DOCUMENT["components"]["schemas"]


def test_list_parameters_are_the_accepted_ones(api: Api) -> None:
    """What the description lists for GET /v1/nodes is what the API accepts."""
    listed = {
        p["name"] for p in DOCUMENT["paths"]["/v1/nodes"]["get"]["parameters"] if p["in"] == "query"
    }
    assert listed == set(nodes.FILTERS) | {
        "limit",
        "marker",
        "sort_key",
        "sort_dir",
        "fields",
        "detail",
    }
    assert api.get("/v1/nodes?description_contains=x&retired=false").status_code == 200
    refused = api.get("/v1/nodes?colour=blue")
    assert refused.status_code == 400
    accepted = fault_of(refused).split("Accepted: ")[1].rstrip(".").split(", ")
    assert set(accepted) == listed


def test_served_at_v1_openapi_json_without_credentials(builtin: Api) -> None:
    first = builtin.get("/v1/openapi.json", version=None)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/json"
    assert orjson.loads(first.content) == orjson.loads(orjson.dumps(DOCUMENT))
    # one document per application, built once
    deps = builtin.client.app.state.deps
    assert deps.openapi() is deps.openapi()
    assert builtin.get("/v1/nodes", version=None).status_code == 401


def _conforms(name: str, document: object) -> list[str]:
    """What is wrong with ``document`` as components/schemas/<name> describes it."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for error in validator.iter_errors(document)]


def test_rendered_documents_are_as_described(api: Api) -> None:
    """Found by schemathesis: history events with detail show the caller's project,
    which their description lacked (it is now typed by the history table)."""
    node = api.node(name="described")
    assert _conforms("Node", api.get("/v1/nodes/described").json()) == []
    assert (
        api.put(f"/v1/nodes/{node['uuid']}/states/provision", {"target": "manage"}).status_code
        == 202
    )
    assert api.service.rt.workers.wait_idle(10)
    events = api.get("/v1/nodes/described/history?detail=true").json()["history"]
    assert events and "project" in events[0]
    for event in events:
        assert _conforms("HistoryEvent", event) == []
    assert _conforms("HistoryEvent", {**events[0], "colour": "blue"}) != []
