"""Fixtures for CLI unit tests: the in-memory API and a runner bound to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cli_fake_api import BASE, FakeIronic, Invocation
from typer.testing import CliRunner

from metalcast.cli import waiting
from metalcast.cli.main import app, normalize_argv
from metalcast.cli.session import Session


@pytest.fixture
def fake_api(monkeypatch: pytest.MonkeyPatch) -> FakeIronic:
    monkeypatch.setattr(waiting, "POLL_INTERVAL", 0.0)
    return FakeIronic()


@pytest.fixture
def run_cli(fake_api: FakeIronic) -> Iterator[Callable[..., Invocation]]:
    """Run ``metalcast --url BASE <args>`` against the fake API."""
    runner = CliRunner()

    def run(*args: str) -> Invocation:
        argv = normalize_argv(["--url", BASE, *args])
        obj = Session(BASE, transport=fake_api.transport())
        result = runner.invoke(app, argv, obj=obj, env={"COLUMNS": "200"})
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Invocation(result.exit_code, result.stdout, result.stderr)

    yield run
