"""Fixtures for image tests: an HTTP image server on loopback.

``image_server``
    a running :class:`ImageServer` (plain HTTP) for one test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from image_http_server import ImageServer


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    with ImageServer().running() as server:
        yield server
