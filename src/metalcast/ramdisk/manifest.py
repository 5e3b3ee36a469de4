"""What a build was made from, and whether the files on disk are still that build.

A build is current when ``manifest.json`` records the same *inputs hash* and every
output file still has the recorded size and SHA256.  The inputs hash covers:

* each Debian package's name, version and archive SHA256 (from the apt lists, so
  checking needs no download);
* the agent's source files (``__pycache__`` and ``.pyc`` excluded);
* the build code itself (the ``metalcast.ramdisk`` modules, which hold ``/init``);
* the build parameters (module list, compression level).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from metalcast.ramdisk.debs import DebPackage, file_sha256

MANIFEST_FORMAT = 1
MANIFEST_FILE = "manifest.json"
#: never part of an input tree's digest: bytecode and editor/VCS droppings
IGNORED_PARTS = frozenset({"__pycache__", ".git", ".mypy_cache", ".ruff_cache"})
IGNORED_SUFFIXES = frozenset({".pyc", ".pyo", ".swp"})


@dataclass(frozen=True, slots=True)
class PackagePin:
    """A Debian package exactly as it went into a build."""

    name: str
    version: str
    sha256: str

    @classmethod
    def of(cls, package: DebPackage) -> PackagePin:
        return cls(package.name, package.version, package.sha256)


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A built file: its name in the output directory, size and SHA256."""

    name: str
    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> OutputFile:
        return cls(path.name, path.stat().st_size, file_sha256(path))

    def matches(self, directory: Path) -> bool:
        """Whether ``directory`` still holds this very file."""
        path = directory / self.name
        return (
            path.is_file() and path.stat().st_size == self.size and file_sha256(path) == self.sha256
        )


@dataclass(frozen=True, slots=True)
class RamdiskManifest:
    """What ``manifest.json`` records about a deploy ramdisk build."""

    inputs_hash: str
    kernel_version: str
    packages: tuple[PackagePin, ...]
    modules: tuple[str, ...]
    python_files: int
    kernel: OutputFile
    initramfs: OutputFile
    built_at: str
    build_seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The manifest as JSON-able data (what ``manifest.json`` holds)."""
        return {"format": MANIFEST_FORMAT, **asdict(self)}

    def to_json(self) -> str:
        """The manifest as indented JSON."""
        return json.dumps(self.as_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RamdiskManifest:
        """Parse :meth:`to_json` output.

        Raises:
            ValueError: not a manifest of this format.
        """
        try:
            data = json.loads(text)
            if data.pop("format") != MANIFEST_FORMAT:
                raise ValueError("unknown manifest format")
            return cls(
                **{
                    **data,
                    "packages": tuple(PackagePin(**p) for p in data["packages"]),
                    "modules": tuple(data["modules"]),
                    "kernel": OutputFile(**data["kernel"]),
                    "initramfs": OutputFile(**data["initramfs"]),
                }
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a ramdisk manifest: {exc}") from exc


def tree_digests(root: Path) -> list[tuple[str, str]]:
    """(relative path, SHA256) of every file under ``root``, sorted; bytecode,
    caches and editor files left out."""
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if IGNORED_PARTS.intersection(relative.parts) or path.suffix in IGNORED_SUFFIXES:
            continue
        if path.is_file():
            found.append((relative.as_posix(), file_sha256(path)))
    return found


def files_digests(paths: Iterable[Path]) -> list[tuple[str, str]]:
    """(file name, SHA256) of each file, sorted by name."""
    return sorted((path.name, file_sha256(path)) for path in paths)


def inputs_hash(
    packages: Iterable[PackagePin],
    *,
    trees: Mapping[str, list[tuple[str, str]]],
    params: Mapping[str, Any],
) -> str:
    """One SHA256 over everything a build depends on.

    ``trees`` maps a name (``agent``, ``code``) to the digests of its files;
    ``params`` holds JSON-able build parameters.  Package order does not matter.
    """
    document = {
        "format": MANIFEST_FORMAT,
        "packages": sorted([p.name, p.version, p.sha256] for p in packages),
        "trees": {name: [list(item) for item in digests] for name, digests in trees.items()},
        "params": params,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def read_manifest(out_dir: Path) -> RamdiskManifest | None:
    """The manifest in ``out_dir``, or None if there is none or it is unreadable."""
    try:
        return RamdiskManifest.from_json((out_dir / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def current_manifest(out_dir: Path, expected_hash: str) -> RamdiskManifest | None:
    """The manifest in ``out_dir`` if it was built from ``expected_hash`` and its files
    are intact; None when a build is needed."""
    manifest = read_manifest(out_dir)
    if manifest is None or manifest.inputs_hash != expected_hash:
        return None
    if not (manifest.kernel.matches(out_dir) and manifest.initramfs.matches(out_dir)):
        return None
    return manifest
