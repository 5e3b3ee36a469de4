"""``metalcast lab image build``: the bootable test disk where the server reads local
images from (images.file_roots), with the sha256 a node's ``instance_info`` needs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from metalcast.cli.main import app

TOOLS = ("sfdisk", "mkfs.vfat", "mcopy", "syslinux", "qemu-img", "apt-get")


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)
def test_image_build_prints_the_path_and_sha256(
    tmp_path: Path, lab_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir = tmp_path / "state"
    (state_dir / "cache").mkdir(parents=True)
    (state_dir / "cache" / "debs").symlink_to(lab_cache)  # the session's package cache
    monkeypatch.setenv("METALCAST_STATE_DIR", str(state_dir))
    monkeypatch.setenv("METALCAST_IMAGES__FILE_ROOTS", str(tmp_path / "images"))
    monkeypatch.setenv("COLUMNS", "400")

    done = CliRunner().invoke(app, ["lab", "image", "build", "--qcow2"])

    assert done.exit_code == 0, done.output
    raw = tmp_path / "images" / "metalcast-test-disk.raw"
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    assert f"{raw}  sha256 {digest}" in done.output
    assert f"image_source=file://{raw} --instance-info image_checksum={digest}" in done.output
    assert raw.with_suffix(".qcow2").is_file()
