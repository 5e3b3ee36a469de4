"""An in-memory apt for ramdisk unit tests."""

from __future__ import annotations

from collections.abc import Sequence

from metalcast.ramdisk.debs import DebPackage
from metalcast.ramdisk.errors import RamdiskError


def package(name: str, version: str = "1.0-1", depends: str = "") -> DebPackage:
    return DebPackage(name, version, "amd64", f"sha256-of-{name}-{version}", depends)


KERNEL = package("linux-image-6.1.0-56-amd64", "6.1.192-2")
META = package("linux-image-amd64", "6.1.192-2", depends=f"{KERNEL.name} (= 6.1.192-2)")
OTHERS = [
    package(name, version)
    for name, version in [
        ("busybox-static", "1:1.35.0-4+deb12u1+b1"),
        ("python3.11-minimal", "3.11.2-6+deb12u9"),
        ("libpython3.11-minimal", "3.11.2-6+deb12u9"),
        ("libpython3.11-stdlib", "3.11.2-6+deb12u9"),
        ("libc6", "2.36-9+deb12u14"),
        ("zlib1g", "1:1.2.13.dfsg-1"),
        ("libexpat1", "2.5.0-1+deb12u5"),
        ("libssl3", "3.0.17-1~deb12u2"),
        ("mdadm", "4.2-5"),
        ("libudev1", "252.39-1~deb12u2"),
        ("dropbear-bin", "2022.83-1+deb12u3"),
        ("libcrypt1", "1:4.4.33-2"),
        ("libtomcrypt1", "1.18.2+dfsg-7+b1"),
        ("libtommath1", "1.2.0-6+deb12u1"),
        ("libgmp10", "2:6.2.1+dfsg1-1.1"),
        ("nvme-cli", "2.4+really2.3-3"),
        ("libnvme1", "1.3-1+deb12u1"),
        ("libjson-c5", "0.16-2"),
        ("hdparm", "9.65+ds-1"),
        ("libdbus-1-3", "1.14.10-1~deb12u1"),
        ("libsystemd0", "252.39-1~deb12u2"),
        ("libcap2", "1:2.66-4"),
        ("libgcrypt20", "1.10.1-3"),
        ("libgpg-error0", "1.46-1"),
        ("liblzma5", "5.4.1-1"),
        ("libzstd1", "1.5.4+dfsg2-5"),
        ("liblz4-1", "1.9.4-1"),
    ]
]


class FakeApt:
    """A :class:`~metalcast.ramdisk.debs.PackageSource` over fixed packages, counting
    lookups (each ``apt-cache`` run costs a second on some machines)."""

    def __init__(self, packages: Sequence[DebPackage] = (META, KERNEL, *OTHERS)) -> None:
        self.packages = {p.name: p for p in packages}
        self.calls: list[list[str]] = []

    def resolve(self, names: Sequence[str]) -> list[DebPackage]:
        self.calls.append(list(names))
        missing = [name for name in names if name not in self.packages]
        if missing:
            raise RamdiskError(f"apt-cache knows no amd64 package {', '.join(missing)}")
        return [self.packages[name] for name in names]

    def upgrade(self, new: DebPackage) -> None:
        self.packages[new.name] = new
