"""Deciding whether to build, and what goes into the ramdisk's Python (no I/O beyond
temporary files: apt is the in-memory fake)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ramdisk_fakes import KERNEL, FakeApt, package

from metalcast.ramdisk import build_ramdisk, find_ramdisk
from metalcast.ramdisk.build import plan_ramdisk
from metalcast.ramdisk.errors import RamdiskError
from metalcast.ramdisk.manifest import MANIFEST_FILE, OutputFile, PackagePin, RamdiskManifest
from metalcast.ramdisk.python_runtime import AGENT_PACKAGE, agent_modules, source_imports

AGENT_MAIN = """\
import sys
from metalcast_agent.client import ApiClient
from . import log

def main():
    import hashlib
    from urllib import request as _request
    from http.client import HTTPConnection
"""


@pytest.fixture
def agent(tmp_path: Path) -> Path:
    package_dir = tmp_path / "src" / AGENT_PACKAGE
    (package_dir / "sub").mkdir(parents=True)
    (package_dir / "__init__.py").write_text('"""agent"""\n')
    (package_dir / "__main__.py").write_text(AGENT_MAIN)
    (package_dir / "client.py").write_text("import json\nimport urllib.request\n")
    (package_dir / "sub" / "__init__.py").write_text("")
    (package_dir / "sub" / "disks.py").write_text(
        "try:\n    import fcntl\nexcept ImportError:\n    pass\n"
    )
    return package_dir


def install(out_dir: Path, inputs_hash: str) -> RamdiskManifest:
    """Pretend a build from ``inputs_hash`` is in ``out_dir``."""
    out_dir.mkdir(parents=True)
    (out_dir / "deploy.kernel").write_bytes(b"bzImage")
    (out_dir / "deploy.initramfs").write_bytes(b"zstd")
    manifest = RamdiskManifest(
        inputs_hash=inputs_hash,
        kernel_version="6.1.0-56-amd64",
        packages=(PackagePin.of(KERNEL),),
        modules=("virtio_ring",),
        python_files=1,
        kernel=OutputFile.of(out_dir / "deploy.kernel"),
        initramfs=OutputFile.of(out_dir / "deploy.initramfs"),
        built_at="2026-11-21T12:00:00+00:00",
        build_seconds=1.0,
    )
    (out_dir / MANIFEST_FILE).write_text(manifest.to_json())
    return manifest


def test_an_up_to_date_ramdisk_is_not_rebuilt(tmp_path: Path, agent: Path) -> None:
    out_dir, cache = tmp_path / "state" / "ramdisk", tmp_path / "cache"
    manifest = install(out_dir, plan_ramdisk(FakeApt(), agent).inputs_hash)
    apt, progress = FakeApt(), list[str]()

    result = build_ramdisk(
        out_dir, cache_dir=cache, progress=progress.append, agent_source=agent, packages=apt
    )

    assert result == manifest
    assert progress[-1].startswith(f"up to date: {out_dir}")
    assert not cache.exists()  # nothing downloaded, nothing unpacked
    assert len(apt.calls) == 1  # the previous build's kernel saved a lookup


def test_the_plan_changes_with_the_agent_and_the_packages(agent: Path) -> None:
    apt = FakeApt()
    before = plan_ramdisk(apt, agent)

    (agent / "client.py").write_text("import json\n")
    edited = plan_ramdisk(apt, agent)
    apt.upgrade(package("libc6", "2.36-9+deb12u15"))
    upgraded = plan_ramdisk(apt, agent)

    assert len({before.inputs_hash, edited.inputs_hash, upgraded.inputs_hash}) == 3
    assert before.kernel == KERNEL


def test_bytecode_next_to_the_agent_changes_nothing(agent: Path) -> None:
    before = plan_ramdisk(FakeApt(), agent).inputs_hash
    (agent / "__pycache__").mkdir()
    (agent / "__pycache__" / "client.cpython-311.pyc").write_bytes(b"\0")

    assert plan_ramdisk(FakeApt(), agent).inputs_hash == before


def test_the_agent_must_be_a_package(tmp_path: Path) -> None:
    with pytest.raises(RamdiskError, match="is not a Python package"):
        plan_ramdisk(FakeApt(), tmp_path)


def test_find_ramdisk(tmp_path: Path) -> None:
    assert find_ramdisk(tmp_path) is None

    install(tmp_path / "ramdisk", "h")

    assert find_ramdisk(tmp_path) == (
        tmp_path / "ramdisk" / "deploy.kernel",
        tmp_path / "ramdisk" / "deploy.initramfs",
    )


def test_the_agents_own_modules_except_main(agent: Path) -> None:
    assert agent_modules(agent) == [
        "metalcast_agent",
        "metalcast_agent.client",
        "metalcast_agent.sub",
        "metalcast_agent.sub.disks",
    ]


def test_imports_anywhere_in_the_source_are_found(agent: Path) -> None:
    names = source_imports(agent)

    for expected in ["sys", "hashlib", "json", "urllib.request", "fcntl", "http.client"]:
        assert expected in names
    assert "urllib" in names  # from urllib import request: the package and maybe a module
    assert "metalcast_agent.client.ApiClient" in names  # a candidate; its failure is fine
    assert not [n for n in names if n.startswith(".") or n == "log"]  # relative imports


def test_an_agent_that_does_not_parse(agent: Path) -> None:
    (agent / "broken.py").write_text("def (:\n")

    with pytest.raises(RamdiskError, match="the agent does not parse"):
        source_imports(agent)
