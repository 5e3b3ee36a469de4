"""Kernel modules in the order insmod needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.ramdisk.build import check_zstd_support
from metalcast.ramdisk.errors import RamdiskError
from metalcast.ramdisk.kmod import kernel_tree, load_order, module_name

# the real dependencies of Debian 6.1's virtio modules
DEPENDS = {
    "virtio_ring": [],
    "virtio": ["virtio_ring"],
    "virtio_pci_modern_dev": [],
    "virtio_pci_legacy_dev": [],
    "virtio_pci": ["virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio"],
    "failover": [],
    "net_failover": ["failover"],
    "virtio_net": ["virtio_ring", "virtio", "net_failover"],
    "virtio_blk": ["virtio", "virtio_ring"],
    "cdrom": [],
    "isofs": ["cdrom"],
}
INDEX = {name: Path(f"/kernel/{name}.ko") for name in DEPENDS}


def depends(path: Path) -> list[str]:
    return DEPENDS[path.stem]


def test_dependencies_come_first() -> None:
    plan = load_order(["virtio_pci", "virtio_net", "virtio_blk"], INDEX, depends=depends)

    assert [name for name, _ in plan.order] == [
        "virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio",
        "virtio_pci", "failover", "net_failover", "virtio_net", "virtio_blk",
    ]  # fmt: skip
    assert dict(plan.order)["virtio_blk"] == Path("/kernel/virtio_blk.ko")


def test_builtin_modules_are_not_loaded() -> None:
    plan = load_order(["isofs"], INDEX, builtin=frozenset({"cdrom"}), depends=depends)

    assert [name for name, _ in plan.order] == ["isofs"]


def test_a_missing_optional_module_is_reported_not_fatal() -> None:
    plan = load_order(
        ["virtio_blk", "e1000"], INDEX, optional=frozenset({"e1000"}), depends=depends
    )

    assert plan.missing_optional == ("e1000",)
    assert [name for name, _ in plan.order][-1] == "virtio_blk"


def test_a_missing_required_module_is_an_error() -> None:
    with pytest.raises(RamdiskError, match="the kernel has no module e1000"):
        load_order(["e1000"], INDEX, depends=depends)


def test_a_missing_dependency_is_an_error() -> None:
    index = {k: v for k, v in INDEX.items() if k != "failover"}

    with pytest.raises(RamdiskError, match="net_failover needs failover"):
        load_order(["virtio_net"], index, depends=depends)


def test_a_cycle_is_an_error() -> None:
    cyclic = {"a": ["b"], "b": ["a"]}
    index = {name: Path(f"/{name}.ko") for name in cyclic}

    with pytest.raises(RamdiskError, match="cycle: a -> b -> a"):
        load_order(["a"], index, depends=lambda p: cyclic[p.stem])


def test_module_names_use_underscores() -> None:
    assert module_name(Path("drivers/char/hw_random/virtio-rng.ko")) == "virtio_rng"


def test_kernel_tree_finds_the_version(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "vmlinuz-6.1.0-56-amd64").write_bytes(b"bzImage")
    modules = tmp_path / "lib" / "modules" / "6.1.0-56-amd64"
    (modules / "kernel" / "drivers").mkdir(parents=True)
    (modules / "kernel" / "drivers" / "virtio-rng.ko").write_bytes(b"")
    (modules / "modules.builtin").write_text("kernel/fs/nls/nls_base.ko\n")

    tree = kernel_tree(tmp_path)

    assert tree.version == "6.1.0-56-amd64"
    assert tree.vmlinuz.read_bytes() == b"bzImage"
    assert list(tree.index()) == ["virtio_rng"]
    assert tree.builtin() == frozenset({"nls_base"})


@pytest.mark.parametrize("line", ["# CONFIG_RD_ZSTD is not set", "CONFIG_RD_ZSTD=m", ""])
def test_a_kernel_without_zstd_initramfs_support_is_refused(tmp_path: Path, line: str) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "vmlinuz-6.1.0-56-amd64").write_bytes(b"")
    (tmp_path / "boot" / "config-6.1.0-56-amd64").write_text(f"CONFIG_RD_XZ=y\n{line}\n")
    (tmp_path / "lib" / "modules" / "6.1.0-56-amd64").mkdir(parents=True)
    tree = kernel_tree(tmp_path)

    with pytest.raises(RamdiskError, match="cannot unpack a zstd initramfs"):
        check_zstd_support(tree)

    (tmp_path / "boot" / "config-6.1.0-56-amd64").write_text("CONFIG_RD_ZSTD=y\n")
    check_zstd_support(tree)
    assert tree.config("CONFIG_RD_ZSTD") == "y"


def test_kernel_tree_without_a_kernel(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()

    with pytest.raises(RamdiskError, match="expected one boot/vmlinuz-"):
        kernel_tree(tmp_path)
