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


def test_nested_and_non_string_secrets_are_masked(json_logs: io.StringIO) -> None:
    structlog.get_logger("t").info(
        "stored",
        info={"bmc": {"ipmi_password": 12345678, "creds": ["a-b-c-d"]}, "ok": 1},
        images=[{"image_source": "http://alice:Open-Sesame-9@images.example/os.raw"}],
    )
    (record,) = records(json_logs)
    text = json.dumps(record)
    assert "12345678" not in text and "a-b-c-d" not in text and "Open-Sesame-9" not in text
    assert record["info"] == {"bmc": {"ipmi_password": "******", "creds": "******"}, "ok": 1}
    assert record["images"] == [{"image_source": "http://alice:******@images.example/os.raw"}]


def test_url_credentials_in_messages_and_exceptions_are_masked(
    json_logs: io.StringIO,
) -> None:
    log = logging.getLogger("metalcast.images")
    log.warning("fetching %s", "https://bob:Pa55-Word-7@mirror.example/img.qcow2?token=T0k-3n")
    try:
        raise RuntimeError("cannot open http://carol:Hidden-Key-1@bmc.example/redfish/v1")
    except RuntimeError:
        log.exception("deploy failed")
    structlog.get_logger("t").error("boom", exc_info=ValueError("password=Swordfish-42"))
    password = 4242424242  # a traceback shows the raising line: not the literal
    try:
        raise KeyError({"ipmi_password": password})
    except KeyError:
        log.exception("lookup failed")
    text = json_logs.getvalue()
    for secret in ("Pa55-Word-7", "T0k-3n", "Hidden-Key-1", "Swordfish-42", "4242424242"):
        assert secret not in text
    first, second, third, fourth = records(json_logs)  # each line still valid JSON
    assert "{'ipmi_password': '******'}" in str(fourth["exception"])
    assert first["event"] == "fetching https://bob:******@mirror.example/img.qcow2?token=******"
    assert "http://carol:******@bmc.example/redfish/v1" in str(second["exception"])
    assert "password=******" in str(third["exception"])


def test_console_lines_are_scrubbed_too() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging(level="INFO", json=False, stream=stream)
    try:
        logging.getLogger("metalcast").error("GET http://u:Console-Pw-3@h/x failed")
    finally:
        structlog.reset_defaults()
        root.handlers, level = saved
        root.setLevel(level)
    assert "Console-Pw-3" not in stream.getvalue()
    assert "http://u:******@h/x" in stream.getvalue()
