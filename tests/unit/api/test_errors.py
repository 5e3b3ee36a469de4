"""Error rendering: Ironic's body for every failure, a generic 500, no leaks."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import orjson
import pytest
import sqlalchemy as sa
import structlog
from api_harness import Api, Client, fault_of, make_settings

from metalcast.api import errors
from metalcast.api.app import create_app
from metalcast.calls import Call, CreateNode
from metalcast.context import RequestContext
from metalcast.db.engine import Database
from metalcast.errors import Conflict, NodeLocked
from metalcast.rpc.local import LocalConductorClient

T = TypeVar("T")


def test_error_body_is_a_json_string_inside_json() -> None:
    body = orjson.loads(errors.error_body(409, "taken"))
    assert body == {
        "error_message": '{"faultstring":"taken","faultcode":"Client","debuginfo":null}'
    }
    inner = orjson.loads(orjson.loads(errors.error_body(503, "busy"))["error_message"])
    assert inner["faultcode"] == "Server"


def test_metalcast_errors_keep_their_status_and_message() -> None:
    status, body = errors.from_exception(NodeLocked("n1", "host-a"), request_id="req-1")
    assert status == Conflict.status_code
    assert b"locked by host host-a" in body


def test_malformed_json_is_400(api: Api) -> None:
    response = api.request("POST", "/v1/nodes", raw=b'{"driver": ')
    assert response.status_code == 400
    assert "not valid JSON" in fault_of(response)


def test_body_that_is_not_an_object_is_400(api: Api) -> None:
    response = api.post("/v1/nodes", ["fake-hardware"])
    assert response.status_code == 400
    assert "JSON object" in fault_of(response)


def test_unknown_field_is_400_naming_it(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "colour": "blue"})
    assert response.status_code == 400
    message = fault_of(response)
    assert "colour" in message
    assert "Accepted fields" in message


def test_wrong_type_is_400_naming_field_and_type(api: Api) -> None:
    response = api.post("/v1/nodes", {"driver": "fake-hardware", "properties": "big"})
    assert response.status_code == 400
    assert fault_of(response) == (
        "Invalid value for field 'properties': \"big\" is not of type 'object'."
    )


class ExplodingConductor(LocalConductorClient):
    """The real client, except that creating a node fails unexpectedly."""

    def call(self, request: Call[T], *, context: RequestContext) -> T:
        if isinstance(request, CreateNode):
            raise RuntimeError("ipmi_password=hunter2 leaked into an exception")
        return super().call(request, context=context)


def test_unexpected_error_is_a_generic_500_logged_with_traceback(api: Api, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "other")
    db = Database(settings.database_url)
    db.migrate()
    app = create_app(settings, db, ExplodingConductor(api.service))
    with structlog.testing.capture_logs() as logs:
        response = Client(app).request(
            "POST",
            "/v1/nodes",
            content=b'{"driver": "fake-hardware"}',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 500
    assert fault_of(response) == errors.GENERIC_500
    assert "hunter2" not in response.text
    failures = [entry for entry in logs if entry["event"] == "unexpected error"]
    assert failures and failures[0]["exc_info"] is True
    assert failures[0]["request_id"] == response.headers["X-OpenStack-Request-Id"]
    db.dispose()


def test_access_log_has_one_line_per_request_without_bodies(api: Api) -> None:
    with structlog.testing.capture_logs() as logs:
        api.post("/v1/nodes", {"driver": "fake-hardware", "driver_info": {"ipmi_password": "s3"}})
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["method"] == "POST"
    assert line["path"] == "/v1/nodes"
    assert line["status"] == 201
    assert line["request_id"].startswith("req-")
    assert isinstance(line["duration_ms"], float)
    assert "s3" not in repr(logs)


@pytest.mark.parametrize(
    "path",
    ["/v1/nodes/nope", "/v1/ports/nope", "/v1/chassis/1be26c0b-03f2-4d2e-ae87-c02d7f33c123"],
)
def test_unknown_resources_are_404(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 404
    assert "could not be found" in fault_of(response)


@pytest.mark.parametrize(
    "exc",
    [
        sa.exc.OperationalError("SELECT 1", {"password": "p"}, Exception("connection refused")),
        sa.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sa.exc.DBAPIError("SELECT 1", {}, Exception("reset"), connection_invalidated=True),
        sa.exc.TimeoutError("QueuePool limit of size 20 overflow 40 reached"),
    ],
    ids=["operational", "interface", "invalidated", "pool-timeout"],
)
def test_an_unreachable_database_is_503_without_details(exc: BaseException) -> None:
    status, body = errors.from_exception(exc, request_id="req-1")
    assert status == 503
    inner = orjson.loads(orjson.loads(body)["error_message"])
    assert inner == {
        "faultstring": errors.DATABASE_UNAVAILABLE,
        "faultcode": "Server",
        "debuginfo": None,
    }


def test_other_database_errors_stay_500() -> None:
    exc = sa.exc.ProgrammingError("SELEC 1", {}, Exception("syntax error"))
    status, body = errors.from_exception(exc, request_id="req-1")
    assert status == 500
    assert errors.GENERIC_500.encode() in body
