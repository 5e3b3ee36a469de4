"""Which Debian package versions a build uses, from ``apt-cache show`` output."""

from __future__ import annotations

from pathlib import Path

import pytest
from ramdisk_fakes import KERNEL, META, FakeApt, package

from metalcast.ramdisk import debs
from metalcast.ramdisk.debs import DebPackage, kernel_dependency, parse_show, pick
from metalcast.ramdisk.errors import RamdiskError

SHOW = """\
Package: linux-image-amd64
Source: linux-signed-amd64 (6.1.192+2)
Version: 6.1.192-2
Architecture: amd64
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
Description: Linux for 64-bit PCs (meta-package)
 This package depends on the latest Linux kernel
 Version: 9.9 is a continuation line, not a field
SHA256: 45457bcfc86c87585800b5656bdf2773b063a3bb95486b0e820d51e870491f8d

Package: libc6
Version: 2.36-9+deb12u14
Architecture: i386
SHA256: 1111

Package: libc6
Version: 2.36-9+deb12u14
Architecture: amd64
Depends: libgcc-s1
SHA256: ba4f88f73dbc3ae9055f3c20f4523bfdbaf1ad13ff95e258924f77d20b4fbedf
"""


def test_parse_show_reads_fields_not_continuation_lines() -> None:
    meta, libc_i386, libc = parse_show(SHOW)

    assert meta == DebPackage(
        "linux-image-amd64",
        "6.1.192-2",
        "amd64",
        "45457bcfc86c87585800b5656bdf2773b063a3bb95486b0e820d51e870491f8d",
        "linux-image-6.1.0-56-amd64 (= 6.1.192-2)",
    )
    assert libc_i386.architecture == "i386"
    assert libc.sha256.startswith("ba4f88")


def test_pick_prefers_amd64_and_keeps_the_order_asked() -> None:
    libc, meta = pick(parse_show(SHOW), ["libc6", "linux-image-amd64"])

    assert (libc.name, libc.architecture) == ("libc6", "amd64")
    assert meta.name == "linux-image-amd64"


def test_pick_names_what_apt_does_not_know() -> None:
    with pytest.raises(RamdiskError, match=r"no amd64 package busybox-static; .*apt-get update"):
        pick(parse_show(SHOW), ["libc6", "busybox-static"])


def test_kernel_dependency() -> None:
    assert kernel_dependency(META) == "linux-image-6.1.0-56-amd64"
    broken = package("linux-image-amd64", depends="firmware-linux-free")
    with pytest.raises(RamdiskError, match="depends on no linux-image package"):
        kernel_dependency(broken)


def test_file_names_spell_the_epoch_as_apt_does() -> None:
    busybox = package("busybox-static", "1:1.35.0-4+deb12u1+b1")

    assert busybox.filename == "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64.deb"
    assert busybox.stem == "busybox-static_1%3a1.35.0-4+deb12u1+b1_amd64"


def test_the_kernel_takes_two_lookups_without_a_hint() -> None:
    apt = FakeApt()

    kernel, busybox = debs.resolve_with_kernel(apt, ["busybox-static"])

    assert (kernel, busybox.name) == (KERNEL, "busybox-static")
    assert apt.calls == [["linux-image-amd64", "busybox-static"], [KERNEL.name]]


def test_a_right_hint_saves_a_lookup() -> None:
    apt = FakeApt()

    kernel, _ = debs.resolve_with_kernel(apt, ["busybox-static"], kernel_hint=KERNEL.name)

    assert kernel == KERNEL
    assert len(apt.calls) == 1


def test_a_stale_hint_falls_back_to_the_metapackage() -> None:
    newer = package("linux-image-6.1.0-57-amd64", "6.1.200-1")
    apt = FakeApt()
    apt.upgrade(newer)
    apt.upgrade(package("linux-image-amd64", "6.1.200-1", depends=f"{newer.name} (= 6.1.200-1)"))

    kernel, _ = debs.resolve_with_kernel(apt, ["busybox-static"], kernel_hint=KERNEL.name)

    assert kernel == newer


def test_a_hint_no_longer_in_the_archive_falls_back() -> None:
    apt = FakeApt()

    kernel, _ = debs.resolve_with_kernel(apt, ["busybox-static"], kernel_hint="linux-image-5.10")

    assert kernel == KERNEL


def test_prune_removes_other_versions_of_the_same_packages_only(tmp_path: Path) -> None:
    current = package("busybox-static", "2.0-1")
    for name in [
        current.filename,
        package("busybox-static", "1.0-1").filename,
        package("zlib1g", "1.0-1").filename,
    ]:
        (tmp_path / name).write_bytes(b"deb")
    (tmp_path / "unpacked" / package("busybox-static", "1.0-1").stem).mkdir(parents=True)
    removed: list[str] = []

    debs.prune(tmp_path, {"busybox-static": current}, removed.append)

    assert sorted(p.name for p in tmp_path.glob("*.deb")) == [
        current.filename,
        package("zlib1g", "1.0-1").filename,
    ]
    assert list((tmp_path / "unpacked").iterdir()) == []
    assert len(removed) == 2
