"""The inputs hash and manifest.json: when a build is current."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from metalcast.ramdisk.debs import file_sha256
from metalcast.ramdisk.manifest import (
    MANIFEST_FILE,
    OutputFile,
    PackagePin,
    RamdiskManifest,
    current_manifest,
    inputs_hash,
    read_manifest,
    tree_digests,
)

PINS = [PackagePin("libc6", "2.36-9", "aa"), PackagePin("zlib1g", "1:1.2.13", "bb")]
TREES: dict[str, list[tuple[str, str]]] = {
    "agent": [("__init__.py", "cc")],
    "code": [("build.py", "dd")],
}
PARAMS: dict[str, object] = {"modules": ["virtio_net"], "zstd": 19}


def digest(
    packages: list[PackagePin] = PINS,
    trees: dict[str, list[tuple[str, str]]] = TREES,
    params: dict[str, object] = PARAMS,
) -> str:
    return inputs_hash(packages, trees=trees, params=params)


def test_the_hash_is_stable_and_ignores_package_order() -> None:
    assert digest() == digest()
    assert digest(packages=list(reversed(PINS))) == digest()


@pytest.mark.parametrize(
    "changes",
    [
        {"packages": [PackagePin("libc6", "2.36-10", "aa"), PINS[1]]},
        {"packages": [PackagePin("libc6", "2.36-9", "a2"), PINS[1]]},
        {"trees": {**TREES, "agent": [("__init__.py", "c2")]}},
        {"trees": {**TREES, "code": [("build.py", "dd"), ("init.py", "ee")]}},
        {"params": {**PARAMS, "zstd": 3}},
    ],
    ids=["package version", "package sha256", "agent file", "code file", "parameter"],
)
def test_the_hash_changes_with_every_input(changes: dict[str, Any]) -> None:
    assert digest(**changes) != digest()


def test_tree_digests_leave_out_bytecode_and_caches(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "__pycache__").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "pkg" / "old.pyc").write_bytes(b"\0")

    digests = tree_digests(tmp_path / "pkg")

    assert [name for name, _ in digests] == ["__init__.py", "mod.py"]
    assert dict(digests)["mod.py"] == file_sha256(tmp_path / "pkg" / "mod.py")


def built(out_dir: Path, inputs: str = "h1") -> RamdiskManifest:
    out_dir.mkdir(exist_ok=True)
    (out_dir / "deploy.kernel").write_bytes(b"kernel")
    (out_dir / "deploy.initramfs").write_bytes(b"initramfs")
    manifest = RamdiskManifest(
        inputs_hash=inputs,
        kernel_version="6.1.0-56-amd64",
        packages=tuple(PINS),
        modules=("virtio_ring", "virtio"),
        python_files=131,
        kernel=OutputFile.of(out_dir / "deploy.kernel"),
        initramfs=OutputFile.of(out_dir / "deploy.initramfs"),
        built_at="2026-11-21T12:00:00+00:00",
        build_seconds=18.2,
    )
    (out_dir / MANIFEST_FILE).write_text(manifest.to_json())
    return manifest


def test_the_manifest_round_trips(tmp_path: Path) -> None:
    manifest = built(tmp_path)

    assert RamdiskManifest.from_json(manifest.to_json()) == manifest
    assert read_manifest(tmp_path) == manifest


@pytest.mark.parametrize("text", ["", "[]", '{"format": 99}', '{"format": 1, "inputs_hash": 1}'])
def test_garbage_is_no_manifest(tmp_path: Path, text: str) -> None:
    (tmp_path / MANIFEST_FILE).write_text(text)

    assert read_manifest(tmp_path) is None


def test_an_intact_build_of_the_same_inputs_is_current(tmp_path: Path) -> None:
    manifest = built(tmp_path)

    assert current_manifest(tmp_path, "h1") == manifest


def test_other_inputs_need_a_build(tmp_path: Path) -> None:
    built(tmp_path)

    assert current_manifest(tmp_path, "h2") is None


@pytest.mark.parametrize("damage", ["changed", "same size", "missing"])
def test_a_damaged_output_needs_a_build(tmp_path: Path, damage: str) -> None:
    built(tmp_path)
    initramfs = tmp_path / "deploy.initramfs"
    if damage == "changed":
        initramfs.write_bytes(b"something else")
    elif damage == "same size":
        initramfs.write_bytes(b"INITRAMFS")
    else:
        initramfs.unlink()

    assert current_manifest(tmp_path, "h1") is None


def test_no_manifest_needs_a_build(tmp_path: Path) -> None:
    assert current_manifest(tmp_path, "h1") is None


def test_the_manifest_is_plain_data(tmp_path: Path) -> None:
    manifest = built(tmp_path)

    data = manifest.as_dict()

    assert data["format"] == 1
    assert data["kernel"] == dataclasses.asdict(manifest.kernel)
