"""Fixtures for conductor tests (see conductor_env)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conductor_env import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    yield from make_env(tmp_path)
