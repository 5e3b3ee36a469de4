"""Fixtures for the agent tests: a fake machine and a loopback file server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_machine import FakeMachine, FileServer


@pytest.fixture
def machine(tmp_path: Path) -> FakeMachine:
    """An empty fake machine: add disks and NICs to it."""
    return FakeMachine(tmp_path / "machine")


@pytest.fixture
def files() -> Iterator[FileServer]:
    """A file server on 127.0.0.1: put bytes in ``files.files["/path"]``."""
    with FileServer().running() as server:
        yield server
