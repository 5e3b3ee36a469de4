"""The log buffer shipped in heartbeats and the console lines of the serial log."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest

from metalcast_agent.log import LogBuffer, get_logger, redact_url, setup_logging


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, LogBuffer, io.StringIO]]:
    buffer, console = LogBuffer(capacity=50), io.StringIO()
    logger = setup_logging(buffer, console=console)
    yield logger, buffer, console
    for handler in list(logger.handlers):
        logger.removeHandler(handler)


def test_lines_go_to_console_and_buffer(
    logged: tuple[logging.Logger, LogBuffer, io.StringIO],
) -> None:
    _, buffer, console = logged

    get_logger("imagewrite").info("write_image: %s chosen", "/dev/vda")

    assert re.match(
        r"^METALCAST-AGENT .* INFO write_image: /dev/vda chosen$", console.getvalue().strip()
    )
    lines, _ = buffer.pending()
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ write_image: /dev/vda chosen$", lines[0])


def test_oldest_lines_first_and_only_the_newest_kept(
    logged: tuple[logging.Logger, LogBuffer, io.StringIO],
) -> None:
    logger, buffer, _ = logged
    for number in range(70):
        logger.info("line %d", number)

    lines, mark = buffer.pending(limit=20)

    assert len(buffer) == 50
    assert [line.split()[-1] for line in lines] == [str(n) for n in range(20, 40)]
    buffer.commit(mark)
    lines, _ = buffer.pending(limit=200)
    assert [line.split()[-1] for line in lines] == [str(n) for n in range(40, 70)]


def test_commit_survives_lines_dropped_meanwhile(
    logged: tuple[logging.Logger, LogBuffer, io.StringIO],
) -> None:
    logger, buffer, _ = logged
    for number in range(10):
        logger.info("early %d", number)
    _, mark = buffer.pending(limit=5)
    for number in range(60):  # pushes every early line out
        logger.info("late %d", number)

    buffer.commit(mark)

    assert len(buffer) == 50


def test_a_traceback_becomes_lines(logged: tuple[logging.Logger, LogBuffer, io.StringIO]) -> None:
    logger, buffer, _ = logged
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("write_image failed unexpectedly")

    lines, _ = buffer.pending()
    assert lines[0].endswith("ERROR: write_image failed unexpectedly")
    assert lines[-1] == "ValueError: boom"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://10.0.0.1:8080/image.raw", "http://10.0.0.1:8080/image.raw"),
        ("http://u:pw@10.0.0.1/i.raw", "http://u:***@10.0.0.1/i.raw"),
        (
            "http://swift/v1/i.raw?temp_url_sig=abc&temp_url_expires=9",
            "http://swift/v1/i.raw?temp_url_sig=***&temp_url_expires=9",
        ),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
