"""Fixtures: the app with noauth (``api``), header auth (``secured``) and builtin
auth (``builtin``)."""

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


@pytest.fixture
def builtin(tmp_path: Path) -> Iterator[Api]:
    """The app with metalcast's own users (no credentials on its own: see
    ``identity_harness``)."""
    for api in build(tmp_path, "builtin"):
        yield Api(api.client, api.db, api.service, api.version, {})
