"""Fixtures: the app with noauth (``api``) and with header auth (``secured``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_harness import Api, build


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The app with noauth: every caller is an admin."""
    yield from build(tmp_path, "noauth")


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Api]:
    """The app with header auth; call ``secured.as_("member", "p1")``."""
    yield from build(tmp_path, "header")
