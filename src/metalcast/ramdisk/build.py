"""Assembling the deploy ramdisk: ``deploy.kernel``, ``deploy.initramfs``, ``manifest.json``.

Steps (each reported through ``progress``): resolve package versions with apt, stop
if the output is current, download and unpack what is missing, stage the initramfs
(busybox, kernel modules in load order, the slim Python with the agent, the tools it
runs: mdadm, dropbear for rescue, nvme-cli and hdparm for erasing disks; ``/init``),
pack it as a newc cpio compressed with zstd, copy the kernel (the package's bzImage,
unchanged: SYSLINUX, iPXE and QEMU all boot it), write the manifest last.
"""

from __future__ import annotations

import importlib.util
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import metalcast
from metalcast import cpio
from metalcast.ramdisk import debs, initscripts, kmod, python_runtime, tools
from metalcast.ramdisk.commands import run_tool
from metalcast.ramdisk.debs import AptPackages, DebPackage, PackageSource, Progress
from metalcast.ramdisk.errors import RamdiskError
from metalcast.ramdisk.manifest import (
    MANIFEST_FILE,
    OutputFile,
    PackagePin,
    RamdiskManifest,
    current_manifest,
    files_digests,
    inputs_hash,
    read_manifest,
    tree_digests,
)

RAMDISK_DIR = "ramdisk"
KERNEL_FILE = "deploy.kernel"
INITRAMFS_FILE = "deploy.initramfs"
BUSYBOX_PACKAGE = "busybox-static"
#: what the ramdisk loads (with their dependencies): NICs and disks of the lab's VMs,
#: the ACPI power button (a soft power off) through evdev, and software RAID
#: the md RAID levels the agent builds with mdadm: 0, 1 and 1+0 (md_mod comes as their dependency)
MD_MODULES = ("raid0", "raid1", "raid10")
#: the disks and NICs of real servers: NVMe and SATA/AHCI disks (nvme-cli and hdparm
#: erase them), the common SAS/RAID HBAs, and the common server NICs; a kernel without
#: one of them builds a ramdisk all the same
HARDWARE_MODULES = (
    "nvme", "ahci", "sd_mod", "virtio_scsi", "megaraid_sas", "mpt3sas",
    "e1000e", "igb", "ixgbe", "i40e", "bnxt_en", "tg3", "mlx5_core",
)  # fmt: skip
MODULES = (
    "virtio_pci", "virtio_net", "virtio_blk", "e1000", "button", "evdev",
    *MD_MODULES, *HARDWARE_MODULES,
)  # fmt: skip
OPTIONAL_MODULES = frozenset({"e1000", "button", "evdev", *HARDWARE_MODULES})
ZSTD_LEVEL = 19
#: directories every initramfs has, whatever is staged into it
BASE_DIRS = ("dev", "proc", "sys", "run", "tmp", "root", "mnt", "etc/metalcast", "lib/modules")


def _silent(_line: str) -> None:
    """The default progress callback: say nothing."""


def find_ramdisk(state_dir: Path) -> tuple[Path, Path] | None:
    """(kernel, initramfs) of the ramdisk built in ``<state_dir>/ramdisk``, or None."""
    directory = state_dir / RAMDISK_DIR
    kernel, initramfs = directory / KERNEL_FILE, directory / INITRAMFS_FILE
    return (kernel, initramfs) if kernel.is_file() and initramfs.is_file() else None


def default_agent_source() -> Path:
    """The ``metalcast_agent`` package directory installed next to metalcast.

    Raises:
        RamdiskError: it is not installed.
    """
    spec = importlib.util.find_spec("metalcast_agent")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    beside = Path(metalcast.__file__).resolve().parents[1] / "metalcast_agent"
    if beside.is_dir():
        return beside
    raise RamdiskError(
        f"the agent package metalcast_agent is not installed (nor in {beside.parent}); "
        "give its directory with --agent-source"
    )


@dataclass(frozen=True, slots=True)
class RamdiskPlan:
    """Everything a build is made from, resolved; ``inputs_hash`` identifies it."""

    kernel: DebPackage
    packages: tuple[DebPackage, ...]
    agent_dir: Path
    inputs_hash: str


def plan_ramdisk(
    source: PackageSource, agent_dir: Path, *, kernel_hint: str | None = None
) -> RamdiskPlan:
    """Resolve the packages and hash every input (fast: no download, no unpack).

    ``kernel_hint`` is the kernel package of the previous build (saves an apt lookup).

    Raises:
        RamdiskError: apt does not know a package, or the agent directory is missing.
    """
    if not (agent_dir / "__init__.py").is_file():
        raise RamdiskError(f"{agent_dir} is not a Python package (no __init__.py)")
    packages = debs.resolve_with_kernel(
        source,
        [BUSYBOX_PACKAGE, *python_runtime.PACKAGES, *tools.packages()],
        kernel_hint=kernel_hint,
    )
    kernel = packages[0]
    digest = inputs_hash(
        [PackagePin.of(p) for p in packages],
        trees={
            "agent": tree_digests(agent_dir),
            "code": files_digests([*Path(__file__).parent.glob("*.py"), Path(cpio.__file__)]),
        },
        params={"modules": list(MODULES), "zstd": ZSTD_LEVEL},
    )
    return RamdiskPlan(kernel, tuple(packages), agent_dir, digest)


def build_ramdisk(
    out_dir: Path,
    *,
    cache_dir: Path,
    force: bool = False,
    progress: Progress = _silent,
    agent_source: Path | None = None,
    packages: PackageSource | None = None,
) -> RamdiskManifest:
    """Build the deploy kernel and initramfs into ``out_dir`` unless they are current.

    ``cache_dir`` keeps downloaded and unpacked packages between builds;
    ``agent_source`` defaults to the installed ``metalcast_agent`` package.

    Raises:
        RamdiskError: a step failed; the message names it and what to check.
    """
    started = time.monotonic()
    progress("resolving package versions (apt-cache)")
    previous = read_manifest(out_dir)
    plan = plan_ramdisk(
        packages or AptPackages(),
        agent_source or default_agent_source(),
        kernel_hint=previous.packages[0].name if previous and previous.packages else None,
    )
    current = None if force else current_manifest(out_dir, plan.inputs_hash)
    if current is not None:
        progress(f"up to date: {out_dir} (inputs {plan.inputs_hash[:12]})")
        return current
    manifest = _build(plan, out_dir=out_dir, cache_dir=cache_dir, progress=progress)
    manifest = _finish(manifest, out_dir, started)
    debs.prune(cache_dir, {p.name: p for p in plan.packages}, progress)
    progress(f"built {out_dir} in {manifest.build_seconds:.1f} s")
    return manifest


def _build(
    plan: RamdiskPlan, *, out_dir: Path, cache_dir: Path, progress: Progress
) -> RamdiskManifest:
    trees = debs.fetch_and_unpack(plan.packages, cache_dir, progress)
    kernel = kmod.kernel_tree(trees[plan.kernel.name])
    check_zstd_support(kernel)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=cache_dir) as tmp:
        stage = Path(tmp) / "initramfs"
        progress(f"staging busybox and the modules of Linux {kernel.version}")
        _stage_base(stage, trees[BUSYBOX_PACKAGE])
        modules = stage_modules(kernel, stage, MODULES, optional=OPTIONAL_MODULES)
        for name in modules.missing_optional:
            progress(f"kernel {kernel.version} has no module {name}; skipped")
        progress("selecting the Python modules the agent imports")
        python = python_runtime.merge_trees(
            [trees[n] for n in python_runtime.PACKAGES], Path(tmp) / "python"
        )
        staged = python_runtime.stage_python(python, stage, plan.agent_dir)
        progress(f"staging {', '.join(tool.name for tool in tools.TOOLS)}")
        for tool in tools.TOOLS:
            tools.stage_tool(tool, trees, stage, Path(tmp) / "tools")
        progress(f"compressing the initramfs (zstd -{ZSTD_LEVEL})")
        initramfs = pack_initramfs(stage, out_dir / INITRAMFS_FILE, Path(tmp))
    kernel_file = _install(kernel.vmlinuz.read_bytes(), out_dir / KERNEL_FILE)
    return RamdiskManifest(
        inputs_hash=plan.inputs_hash,
        kernel_version=kernel.version,
        packages=tuple(PackagePin.of(p) for p in plan.packages),
        modules=tuple(name for name, _ in modules.order),
        python_files=len(staged.modules),
        kernel=kernel_file,
        initramfs=initramfs,
        built_at="",
        build_seconds=0.0,
    )


def _finish(manifest: RamdiskManifest, out_dir: Path, started: float) -> RamdiskManifest:
    finished = replace(
        manifest,
        built_at=datetime.now(UTC).isoformat(timespec="seconds"),
        build_seconds=round(time.monotonic() - started, 2),
    )
    _install(finished.to_json().encode(), out_dir / MANIFEST_FILE)
    return finished


def _install(content: bytes, target: Path) -> OutputFile:
    """Write ``target`` atomically (a temporary file, then a rename)."""
    partial = target.with_name(f".{target.name}.partial")
    partial.write_bytes(content)
    partial.replace(target)
    return OutputFile.of(target)


def _stage_base(stage: Path, busybox_tree: Path) -> None:
    for directory in BASE_DIRS:
        (stage / directory).mkdir(parents=True, exist_ok=True)
    write_file(stage / "init", initscripts.RAMDISK_INIT, executable=True)
    write_file(stage / initscripts.UDHCPC_HOOK, initscripts.UDHCPC_SCRIPT, executable=True)
    write_file(stage / "etc/hosts", initscripts.HOSTS)
    write_file(stage / "etc/nsswitch.conf", initscripts.NSSWITCH)
    write_file(stage / "etc/passwd", initscripts.PASSWD)
    write_file(stage / "etc/group", initscripts.GROUP)
    handler = initscripts.POWER_BUTTON_SCRIPT.format(who="RAMDISK")
    write_file(stage / initscripts.POWER_BUTTON_HANDLER, handler, executable=True)
    stage_busybox(busybox_tree, stage)


def write_file(path: Path, text: str, *, executable: bool = False) -> None:
    """Write a staged text file (0755 if ``executable``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755 if executable else 0o644)


def stage_busybox(busybox_tree: Path, stage: Path) -> None:
    """Put the static busybox at ``/bin/busybox`` (``/init`` installs its applets).

    Raises:
        RamdiskError: the package holds no ``bin/busybox``.
    """
    binary = busybox_tree / "bin" / "busybox"
    if not binary.is_file():
        raise RamdiskError(f"{busybox_tree} holds no bin/busybox")
    target = stage / "bin" / "busybox"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(binary.read_bytes())
    target.chmod(0o755)


def stage_modules(
    kernel: kmod.KernelTree,
    stage: Path,
    wanted: Sequence[str],
    *,
    optional: frozenset[str] = frozenset(),
) -> kmod.ModulePlan:
    """Copy ``wanted`` modules and their dependencies to ``/lib/modules/<name>.ko`` and
    list them in load order in ``/etc/metalcast/modules``.

    Raises:
        RamdiskError: a required module is missing from the kernel.
    """
    plan = kmod.load_order(wanted, kernel.index(), builtin=kernel.builtin(), optional=optional)
    target = stage / "lib" / "modules"
    target.mkdir(parents=True, exist_ok=True)
    for name, path in plan.order:
        (target / f"{name}.ko").write_bytes(path.read_bytes())
    listing = "".join(f"{name}\n" for name, _ in plan.order)
    write_file(stage / initscripts.MODULES_LIST, listing)
    return plan


def check_zstd_support(kernel: kmod.KernelTree) -> None:
    """Make sure the kernel can unpack a zstd initramfs.

    Raises:
        RamdiskError: its config lacks ``CONFIG_RD_ZSTD=y``.
    """
    if kernel.config("CONFIG_RD_ZSTD") != "y":
        raise RamdiskError(
            f"Linux {kernel.version} cannot unpack a zstd initramfs (CONFIG_RD_ZSTD is not y)"
        )


def pack_initramfs(
    stage: Path, target: Path, scratch: Path, *, level: int = ZSTD_LEVEL
) -> OutputFile:
    """Pack ``stage`` (plus ``/dev/console``) into a zstd-compressed newc cpio.

    Raises:
        RamdiskError: zstd failed or is not installed.
    """
    archive = scratch / "initramfs.cpio"
    with archive.open("wb") as stream:
        entries = cpio.tree_entries(stage)
        cpio.write(stream, [*entries, cpio.char_device("dev/console", 5, 1)])
    partial = target.with_name(f".{target.name}.partial")
    run_tool(
        ["zstd", f"-{level}", "-T0", "-q", "-f", archive, "-o", partial],
        what="zstd (compressing the initramfs)",
    )
    partial.replace(target)
    return OutputFile.of(target)
