"""Log records never carry a secret, whatever logger they come from."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from metalcast.logs import configure_logging


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(level="INFO", json=True, stream=stream)
    yield stream
    structlog.reset_defaults()
    root.handlers, level = saved
    root.setLevel(level)


def records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


def test_structlog_fields_naming_secrets_are_masked(json_logs: io.StringIO) -> None:
    structlog.get_logger("t").info(
        "enrolled",
        ipmi_password="pw1",
        driver_info={"redfish_password": "pw2", "redfish_address": "x"},
    )
    (record,) = records(json_logs)
    assert record["ipmi_password"] == "******"
    assert record["driver_info"] == {"redfish_password": "******", "redfish_address": "x"}
    assert "pw1" not in json.dumps(record) and "pw2" not in json.dumps(record)


def test_stdlib_extras_are_masked_and_context_kept(json_logs: io.StringIO) -> None:
    logging.getLogger("metalcast.conductor.task").info(
        "%s: deploying", "n1", extra={"node": "n1", "auth_token": "tok"}
    )
    (record,) = records(json_logs)
    assert record["event"] == "n1: deploying"
    assert record["node"] == "n1"
    assert record["auth_token"] == "******"
    assert record["level"] == "info"
