"""Kernel modules from the Debian kernel package, in the order ``insmod`` needs them.

Debian's package ships no ``modules.dep`` (``depmod`` writes it when the package is
installed), so the dependencies come from each module's own ``.modinfo``
``depends=`` field: the same data ``depmod`` reads.  ``virtio_ring`` must be loaded
before ``virtio``, which must be loaded before ``virtio_pci``, and so on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from metalcast.ramdisk import elf
from metalcast.ramdisk.errors import RamdiskError

Depends = Callable[[Path], Sequence[str]]


@dataclass(frozen=True, slots=True)
class KernelTree:
    """An unpacked ``linux-image-*`` package."""

    root: Path
    version: str

    @property
    def vmlinuz(self) -> Path:
        """The compressed kernel (a bzImage, bootable by SYSLINUX, iPXE and QEMU)."""
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def modules_dir(self) -> Path:
        return self.root / "lib" / "modules" / self.version

    def config(self, option: str) -> str | None:
        """The value of a ``CONFIG_*`` option in ``boot/config-*`` (None: not set)."""
        config = self.root / "boot" / f"config-{self.version}"
        lines = config.read_text().splitlines() if config.is_file() else []
        prefix = f"{option}="
        return next((line[len(prefix) :] for line in lines if line.startswith(prefix)), None)

    def builtin(self) -> frozenset[str]:
        """Names of the modules compiled into the kernel (nothing to load)."""
        listing = self.modules_dir / "modules.builtin"
        lines = listing.read_text().splitlines() if listing.is_file() else []
        return frozenset(module_name(Path(line)) for line in lines if line.strip())

    def index(self) -> dict[str, Path]:
        """Every loadable module of this kernel by name (``-`` spelled ``_``)."""
        return {module_name(path): path for path in sorted(self.modules_dir.rglob("*.ko"))}


def module_name(path: Path) -> str:
    """``.../virtio-rng.ko`` → ``virtio_rng``: the name the kernel knows it by."""
    return path.name.split(".", 1)[0].replace("-", "_")


def kernel_tree(root: Path) -> KernelTree:
    """The kernel inside an unpacked ``linux-image-*`` package.

    Raises:
        RamdiskError: the tree holds no ``boot/vmlinuz-*`` or no matching modules.
    """
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise RamdiskError(f"expected one boot/vmlinuz-* in {root}, found {len(kernels)}")
    tree = KernelTree(root=root, version=kernels[0].name.removeprefix("vmlinuz-"))
    if not tree.modules_dir.is_dir():
        raise RamdiskError(f"{root} has no lib/modules/{tree.version}")
    return tree


def modinfo_depends(path: Path) -> list[str]:
    """The modules ``path`` needs loaded first, from its ``.modinfo``."""
    value = elf.modinfo(path).get("depends", "")
    return [name.replace("-", "_") for name in value.split(",") if name]


@dataclass(frozen=True, slots=True)
class ModulePlan:
    """What the ramdisk loads: modules in load order, and the wanted ones not found."""

    order: tuple[tuple[str, Path], ...]
    missing_optional: tuple[str, ...]


def load_order(
    wanted: Sequence[str],
    index: Mapping[str, Path],
    *,
    builtin: frozenset[str] = frozenset(),
    optional: frozenset[str] = frozenset(),
    depends: Depends = modinfo_depends,
) -> ModulePlan:
    """Order ``wanted`` and their dependencies so that each comes after what it needs.

    Built-in modules are skipped; optional ones that this kernel lacks are reported,
    not fatal.  The order is stable: dependencies first, then ``wanted`` as given.

    Raises:
        RamdiskError: a required module or a dependency is neither a module nor
            built in, or the dependencies form a cycle.
    """
    order: dict[str, Path] = {}
    missing = []
    for name in wanted:
        if name in builtin or name in order:
            continue
        if name not in index:
            if name in optional:
                missing.append(name)
                continue
            raise RamdiskError(f"the kernel has no module {name} (not built in either)")
        _visit(name, index, builtin, depends, order, ())
    return ModulePlan(order=tuple(order.items()), missing_optional=tuple(missing))


def _visit(
    name: str,
    index: Mapping[str, Path],
    builtin: frozenset[str],
    depends: Depends,
    order: dict[str, Path],
    path: tuple[str, ...],
) -> None:
    if name in order or name in builtin:
        return
    if name in path:
        raise RamdiskError(f"kernel module dependency cycle: {' -> '.join((*path, name))}")
    if name not in index:
        raise RamdiskError(f"kernel module {path[-1]} needs {name}, which the kernel lacks")
    for dependency in depends(index[name]):
        _visit(dependency, index, builtin, depends, order, (*path, name))
    order[name] = index[name]
