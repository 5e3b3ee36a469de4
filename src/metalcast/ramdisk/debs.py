"""Debian packages: which version apt would install, fetching it, unpacking it.

Packages are resolved with ``apt-cache show`` (the candidate version and its archive
SHA256, so an up-to-date check needs no download), fetched with ``apt-get download``
into the cache directory and unpacked with ``dpkg -x`` next to it::

    <cache_dir>/linux-image-6.1.0-56-amd64_6.1.192-2_amd64.deb
    <cache_dir>/unpacked/linux-image-6.1.0-56-amd64_6.1.192-2_amd64/boot/vmlinuz-…

Nothing here needs root.  Both steps are atomic (a temporary name, then a rename),
so an interrupted build never leaves a half-downloaded or half-unpacked package that
a later build would trust.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from metalcast.ramdisk.commands import run_tool
from metalcast.ramdisk.errors import RamdiskError

Progress = Callable[[str], None]

MIRROR_HINT = "is the Debian mirror reachable, and are the apt lists current (apt-get update)?"
LISTS_HINT = "are the apt lists current (apt-get update)?"
#: the architectures whose packages fit an amd64 ramdisk
ARCHITECTURES = frozenset({"amd64", "all"})
_FIELD = re.compile(r"^([A-Za-z0-9-]+):\s*(.*)$")
_KERNEL_DEPENDENCY = re.compile(r"\b(linux-image-[0-9][^\s,(|]*)")


@dataclass(frozen=True, slots=True)
class DebPackage:
    """One version of one Debian package, as the apt lists describe it."""

    name: str
    version: str
    architecture: str
    sha256: str
    depends: str = ""

    @property
    def filename(self) -> str:
        """The file name ``apt-get download`` gives this package."""
        version = self.version.replace(":", "%3a")
        return f"{self.name}_{version}_{self.architecture}.deb"

    @property
    def stem(self) -> str:
        """The file name without ``.deb`` (the name of its unpacked directory)."""
        return self.filename.removesuffix(".deb")


class PackageSource(Protocol):
    """Where package versions come from: apt in real builds, a fake in unit tests."""

    def resolve(self, names: Sequence[str]) -> list[DebPackage]:
        """The candidate version of each named package, in the order given.

        Raises:
            RamdiskError: a package is unknown.
        """
        ...


def parse_show(text: str) -> list[DebPackage]:
    """Parse ``apt-cache show`` output into packages (continuation lines ignored)."""
    packages = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            match = _FIELD.match(line)
            if match and not line[0].isspace():
                fields[match.group(1)] = match.group(2).strip()
        if "Package" in fields and "Version" in fields:
            packages.append(
                DebPackage(
                    name=fields["Package"],
                    version=fields["Version"],
                    architecture=fields.get("Architecture", "all"),
                    sha256=fields.get("SHA256", ""),
                    depends=fields.get("Depends", ""),
                )
            )
    return packages


def pick(packages: Iterable[DebPackage], names: Sequence[str]) -> list[DebPackage]:
    """One amd64 (or arch: all) record for each name, in the order of ``names``.

    Raises:
        RamdiskError: a name has no such record.
    """
    found: dict[str, DebPackage] = {}
    for package in packages:
        if package.architecture in ARCHITECTURES and package.name not in found:
            found[package.name] = package
    missing = [name for name in names if name not in found]
    if missing:
        raise RamdiskError(f"apt-cache knows no amd64 package {', '.join(missing)}; {LISTS_HINT}")
    return [found[name] for name in names]


def kernel_dependency(metapackage: DebPackage) -> str:
    """The versioned kernel package a ``linux-image-<flavour>`` metapackage depends on.

    Raises:
        RamdiskError: its Depends names no linux-image package.
    """
    match = _KERNEL_DEPENDENCY.search(metapackage.depends)
    if match is None:
        raise RamdiskError(
            f"{metapackage.name} {metapackage.version} depends on no linux-image package "
            f"(Depends: {metapackage.depends!r})"
        )
    return match.group(1)


class AptPackages:
    """Package versions from the host's apt lists (``apt-cache show``)."""

    def resolve(self, names: Sequence[str]) -> list[DebPackage]:
        """See :meth:`PackageSource.resolve`."""
        output = run_tool(
            ["apt-cache", "show", "--no-all-versions", *names],
            what=f"apt-cache show {' '.join(names)}",
            hint=LISTS_HINT,
        )
        return pick(parse_show(output.decode(errors="replace")), names)


def resolve_with_kernel(
    source: PackageSource,
    names: Sequence[str],
    *,
    flavour: str = "amd64",
    kernel_hint: str | None = None,
) -> list[DebPackage]:
    """The kernel package ``linux-image-<flavour>`` points at, then ``names``.

    Finding the kernel takes two lookups (the metapackage, then what it depends on);
    ``kernel_hint``, the kernel of the previous build, usually saves the second one
    (each ``apt-cache`` run costs a second where apt keeps no binary cache).

    Raises:
        RamdiskError: the metapackage, its kernel or a named package is unknown to apt.
    """
    meta_name = f"linux-image-{flavour}"
    if kernel_hint:
        try:
            meta, hinted, *others = source.resolve([meta_name, kernel_hint, *names])
        except RamdiskError:
            pass  # the hinted kernel left the archive: look it up the long way
        else:
            if kernel_dependency(meta) == hinted.name:
                return [hinted, *others]
    meta, *others = source.resolve([meta_name, *names])
    [kernel] = source.resolve([kernel_dependency(meta)])
    return [kernel, *others]


def file_sha256(path: Path) -> str:
    """The hex SHA256 of a file's content."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(package: DebPackage, cache_dir: Path, progress: Progress) -> Path:
    """The package's ``.deb`` in ``cache_dir``, downloaded unless already there intact.

    Raises:
        RamdiskError: ``apt-get download`` failed or the file's SHA256 is not the
            archive's.
    """
    target = cache_dir / package.filename
    if target.is_file() and (not package.sha256 or file_sha256(target) == package.sha256):
        return target
    progress(f"downloading {package.name} {package.version}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as tmp:
        run_tool(
            ["apt-get", "download", "-q", f"{package.name}={package.version}"],
            what=f"apt-get download {package.name}",
            hint=MIRROR_HINT,
            cwd=Path(tmp),
        )
        fetched = Path(tmp) / package.filename
        if not fetched.is_file():
            raise RamdiskError(
                f"apt-get download {package.name} did not produce {package.filename}"
            )
        actual = file_sha256(fetched)
        if package.sha256 and actual != package.sha256:
            raise RamdiskError(
                f"{package.filename} has SHA256 {actual}, the archive says {package.sha256}"
            )
        fetched.replace(target)
    return target


def unpack(package: DebPackage, deb: Path, cache_dir: Path, progress: Progress) -> Path:
    """The package's files, unpacked once with ``dpkg -x`` under ``cache_dir/unpacked``.

    Raises:
        RamdiskError: ``dpkg -x`` failed.
    """
    target = cache_dir / "unpacked" / package.stem
    if target.is_dir():
        return target
    progress(f"unpacking {package.name} {package.version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        run_tool(["dpkg", "-x", deb, tmp], what=f"dpkg -x {deb.name}")
        tmp.replace(target)
    except OSError:
        if not target.is_dir():  # else a concurrent build unpacked it first: use theirs
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def fetch_and_unpack(
    packages: Sequence[DebPackage], cache_dir: Path, progress: Progress
) -> dict[str, Path]:
    """Fetch and unpack every package; map each package name to its unpacked tree.

    Raises:
        RamdiskError: a download or an unpack failed.
    """
    trees = {}
    for package in packages:
        unpacked = cache_dir / "unpacked" / package.stem
        deb = None if unpacked.is_dir() else fetch(package, cache_dir, progress)
        trees[package.name] = unpack(package, deb, cache_dir, progress) if deb else unpacked
    return trees


def prune(cache_dir: Path, keep: Mapping[str, DebPackage], progress: Progress) -> None:
    """Delete cached versions of the packages in ``keep`` other than the kept one.

    Only package names in ``keep`` are touched, so builds that share the cache but
    use other packages lose nothing.
    """
    for candidate in [*cache_dir.glob("*.deb"), *(cache_dir / "unpacked").glob("*")]:
        name = candidate.name.split("_", 1)[0]
        kept = keep.get(name)
        if kept is None or candidate.name in (kept.filename, kept.stem):
            continue
        progress(f"removing stale {candidate.name}")
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
