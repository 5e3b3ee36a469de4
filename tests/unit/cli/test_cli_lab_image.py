"""``metalcast lab image build`` says where a deployable image must go."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from metalcast.cli.main import app


def test_without_file_roots_it_says_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METALCAST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("METALCAST_IMAGES__FILE_ROOTS", raising=False)
    monkeypatch.setenv("COLUMNS", "400")

    done = CliRunner().invoke(app, ["lab", "image", "build"])

    assert done.exit_code == 2
    assert "METALCAST_IMAGES__FILE_ROOTS" in done.output
    assert not (tmp_path / "state").exists()  # nothing built where it could not be deployed
