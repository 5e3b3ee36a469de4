"""``metalcast ramdisk build``: settings, defaults and what it prints (the build itself
is a fake here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from metalcast.cli import ramdisk as ramdisk_cli
from metalcast.ramdisk import build as ramdisk_build
from metalcast.ramdisk.manifest import MANIFEST_FILE, OutputFile, RamdiskManifest


class FakeBuild:
    """Stands in for build_ramdisk: records its arguments, writes a manifest."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, out_dir: Path, **options: Any) -> RamdiskManifest:
        self.calls.append({"out_dir": out_dir, **options})
        options["progress"]("compressing the initramfs (zstd -19)")
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "deploy.kernel").write_bytes(b"k" * 2048)
        (out_dir / "deploy.initramfs").write_bytes(b"i" * 1024)
        manifest = RamdiskManifest(
            inputs_hash="0123456789abcdef",
            kernel_version="6.1.0-56-amd64",
            packages=(),
            modules=("virtio_ring", "virtio"),
            python_files=131,
            kernel=OutputFile.of(out_dir / "deploy.kernel"),
            initramfs=OutputFile.of(out_dir / "deploy.initramfs"),
            built_at="2026-11-21T12:00:00+00:00",
            build_seconds=15.7,
        )
        (out_dir / MANIFEST_FILE).write_text(manifest.to_json())
        return manifest


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> FakeBuild:
    for name in list(os.environ):
        if name.startswith("METALCAST_"):  # every one of them is a setting
            monkeypatch.delenv(name)
    fake = FakeBuild()
    monkeypatch.setattr(ramdisk_build, "build_ramdisk", fake)
    return fake


def run(*args: str, state_dir: Path) -> Any:
    root = typer.Typer()
    root.add_typer(ramdisk_cli.app, name="ramdisk")
    env = {"METALCAST_STATE_DIR": str(state_dir), "METALCAST_CONFIG": ""}
    return CliRunner().invoke(root, ["ramdisk", "build", *args], env=env)


def test_builds_into_the_state_dir_by_default(fake_build: FakeBuild, tmp_path: Path) -> None:
    result = run(state_dir=tmp_path)

    assert result.exit_code == 0, result.output
    [call] = fake_build.calls
    assert call["out_dir"] == tmp_path / "ramdisk"
    assert call["cache_dir"] == tmp_path / "cache" / "debs"
    assert (call["force"], call["agent_source"]) == (False, None)
    assert f"built: {tmp_path / 'ramdisk'} (Linux 6.1.0-56-amd64, inputs 0123456789ab)" in (
        result.stdout
    )
    assert "ramdisk: compressing the initramfs (zstd -19)" in result.stderr


def test_options_reach_the_build(fake_build: FakeBuild, tmp_path: Path) -> None:
    result = run(
        "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "debs"),
        "--agent-source", str(tmp_path / "agent"), "--force",
        state_dir=tmp_path,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    [call] = fake_build.calls
    assert call["out_dir"] == tmp_path / "out"
    assert call["cache_dir"] == tmp_path / "debs"
    assert call["agent_source"] == tmp_path / "agent"
    assert call["force"] is True


def test_an_unchanged_ramdisk_says_up_to_date(fake_build: FakeBuild, tmp_path: Path) -> None:
    run(state_dir=tmp_path)

    result = run(state_dir=tmp_path)

    assert result.stdout.startswith("up to date: ")


def test_json_prints_the_manifest(fake_build: FakeBuild, tmp_path: Path) -> None:
    result = run("--json", state_dir=tmp_path)

    assert '"python_files": 131' in result.stdout
    assert '"format": 1' in result.stdout
