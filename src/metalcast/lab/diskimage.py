"""The lab's bootable test disk image: what the agent writes and a machine then boots.

A raw whole-disk image (64 MiB) that boots under BIOS and under UEFI: an MBR with
SYSLINUX's boot code and one bootable FAT partition at 1 MiB holding the Debian
kernel, a tiny busybox initramfs and two boot loaders reading one ``syslinux.cfg``:

* BIOS: the MBR code chains SYSLINUX (``ldlinux.sys``, ``syslinux --install``);
* UEFI: the firmware's removable-media path ``EFI/BOOT/BOOTX64.EFI`` is SYSLINUX's
  EFI build (Debian package ``syslinux-efi``) with its ``LDLINUX.E64``.  The
  partition's MBR type is ``0xEF`` (EFI system partition); the MBR code boots the
  active partition whatever its type.

It is built without loop devices or root: ``sfdisk`` on the image file, ``mkfs.vfat``
on a separate partition file, ``mmd``/``mcopy``, ``syslinux --install`` on that file,
then the partition copied into place.  Identical inputs give identical bytes.

Booted, its ``/init`` prints (on ``ttyS0``)::

    METALCAST-DISK-BOOTED root=/dev/vda
    METALCAST-DISK-FIRMWARE uefi          (or bios: how the firmware started Linux)
    METALCAST-CONFIGDRIVE hostname=<hostname> uuid=<uuid> keys=<number of public keys>
    METALCAST-USERDATA <first line of user_data, or "none">

or ``METALCAST-CONFIGDRIVE none`` when no filesystem labelled ``config-2`` (the
ISO 9660 config drive, as a partition or a disk) exists; then it takes the config
drive's host name (else ``metalcast-lab``) and shows busybox's ``getty`` login prompt
on ``ttyS0`` for ever (the machine is "active"; nobody can log in).

The image is rebuilt only when its inputs change (the kernel and busybox packages,
this code, SYSLINUX's BIOS and EFI files): ``<image>.inputs`` holds the inputs hash
(and the kernel package, which saves an apt lookup next time).

Errors: :class:`~metalcast.ramdisk.errors.RamdiskError` (a tool failed or is missing).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from metalcast.ramdisk import debs, kmod
from metalcast.ramdisk.build import (
    BUSYBOX_PACKAGE,
    check_zstd_support,
    pack_initramfs,
    stage_busybox,
    stage_modules,
)
from metalcast.ramdisk.build import write_file as write_staged
from metalcast.ramdisk.commands import run_tool
from metalcast.ramdisk.debs import AptPackages, PackageSource
from metalcast.ramdisk.errors import RamdiskError
from metalcast.ramdisk.initscripts import POWER_BUTTON_HANDLER, POWER_BUTTON_SCRIPT
from metalcast.ramdisk.manifest import PackagePin, files_digests, inputs_hash

Progress = Callable[[str], None]

MIB = 1 << 20
IMAGE_SIZE = 64 * MIB
PARTITION_START = 1 * MIB
BOOT_LABEL = "MCBOOT"
#: the MBR disk identifier and the FAT volume id (fixed: reproducible images)
DISK_ID = "0x4d434453"
VOLUME_ID = "4d434453"
#: mtools and SYSLINUX timestamps (2020-01-01T00:00:00Z; FAT cannot hold 1970)
EPOCH = 1577836800
MBR_CANDIDATES = (Path("/usr/lib/syslinux/mbr/mbr.bin"), Path("/usr/share/syslinux/mbr.bin"))
#: SYSLINUX for x86-64 UEFI (package syslinux-efi) and its core module (syslinux-common)
EFI_LOADER = Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi")
EFI_CORE = Path("/usr/lib/syslinux/modules/efi64/ldlinux.e64")
#: where UEFI firmware looks on a disk that has no boot entry of its own
EFI_BOOT_DIR = "EFI/BOOT"
#: the MBR partition type of an EFI system partition (OVMF boots FAT16 ``0x0e`` too,
#: but other firmware looks for its loader on an ESP only)
PARTITION_TYPE = "ef"
#: the lab's machines have virtio disks (SATA would add ahci, sd_mod, sr_mod: 1.5 s
#: more of every boot under TCG)
MODULES = ("virtio_pci", "virtio_blk", "isofs", "button", "evdev")
#: the ACPI power button (a soft power off) is a bonus
OPTIONAL_MODULES = frozenset({"button", "evdev"})
KERNEL_APPEND = f"console=tty0 console=ttyS0 panic=-1 metalcast.bootlabel={BOOT_LABEL}"

SYSLINUX_CFG = f"""DEFAULT metalcast
PROMPT 0
TIMEOUT 0
SERIAL 0 115200
LABEL metalcast
  LINUX /vmlinuz
  INITRD /initrd.img
  APPEND {KERNEL_APPEND}
"""

#: shell functions reading ``$json`` (meta_data.json on one line): ``field NAME`` (a
#: top-level string) and ``count_keys`` (entries of ``public_keys``)
META_DATA_FUNCTIONS = r"""# one "key": value a line; the first "$1" wins (top-level, not meta's)
field() {
    echo "$json" | tr ',{}' '\n\n\n' |
        sed -n "s/^[[:space:]]*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p" | head -n 1
}
count_keys() {
    echo "$json" | sed -n 's/.*"public_keys"[[:space:]]*:[[:space:]]*{\([^}]*\)}.*/\1/p' |
        grep -o '"[[:space:]]*:' | wc -l
}
"""

#: the test disk's /init (busybox sh)
DISK_INIT = (
    r"""#!/bin/busybox sh
# /init of metalcast's lab test disk: which disk booted, what the config drive says.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
while read -r name; do
    insmod "/lib/modules/$name.ko" 2>/dev/null
done </etc/metalcast/modules
# the ACPI power button (QEMU system_powerdown, IPMI "power soft") powers off cleanly
ls /dev/input/event* >/dev/null 2>&1 && acpid -c /etc/acpi -l /tmp/acpid.log -p /tmp/acpid.pid

label=$(sed -n 's/.*metalcast.bootlabel=\([^ ]*\).*/\1/p' /proc/cmdline)
tries=0
until part=$(findfs "LABEL=${label:-MCBOOT}" 2>/dev/null); do
    tries=$((tries + 1))
    [ "$tries" -ge 50 ] && break
    usleep 200000
done
if [ -n "$part" ]; then
    disk=$(readlink -f "/sys/class/block/${part#/dev/}/..")
    echo "METALCAST-DISK-BOOTED root=/dev/${disk##*/}"
else
    echo "METALCAST-DISK-BOOTED root=unknown"
fi
if [ -d /sys/firmware/efi ]; then
    echo "METALCAST-DISK-FIRMWARE uefi"
else
    echo "METALCAST-DISK-FIRMWARE bios"
fi

"""
    + META_DATA_FUNCTIONS
    + r"""
mkdir -p /mnt/config
drive=$(findfs LABEL=config-2 2>/dev/null)
if [ -n "$drive" ] && mount -t iso9660 -o ro "$drive" /mnt/config; then
    json=$(tr -d '\n' </mnt/config/openstack/latest/meta_data.json 2>/dev/null)
    hostname=$(field hostname)
    uuid=$(field uuid)
    echo "METALCAST-CONFIGDRIVE hostname=${hostname:-none} uuid=${uuid:-none} keys=$(count_keys)"
    user_data=/mnt/config/openstack/latest/user_data
    if [ -f "$user_data" ]; then
        echo "METALCAST-USERDATA $(head -n 1 "$user_data")"
    else
        echo "METALCAST-USERDATA none"
    fi
else
    echo "METALCAST-CONFIGDRIVE none"
fi
hostname "${hostname:-metalcast-lab}"
echo "METALCAST-DISK: active, idle"
# a login prompt on the serial console, as a deployed system shows one (no account
# can log in: the image has no /etc/passwd)
while :; do getty -L 115200 ttyS0 vt100; sleep 1; done
"""
)


def _silent(_line: str) -> None:
    """The default progress callback: say nothing."""


def mbr_boot_code() -> Path:
    """SYSLINUX's ``mbr.bin`` (from the syslinux-common package).

    Raises:
        RamdiskError: it is not installed.
    """
    for candidate in MBR_CANDIDATES:
        if candidate.is_file():
            return candidate
    raise RamdiskError("SYSLINUX's mbr.bin not found; install the Debian package syslinux-common")


def efi_loader_files() -> dict[str, Path]:
    """SYSLINUX's EFI loader and core module, by their names under ``EFI/BOOT``.

    Raises:
        RamdiskError: they are not installed.
    """
    files = {"BOOTX64.EFI": EFI_LOADER, "LDLINUX.E64": EFI_CORE}
    for path, package in ((EFI_LOADER, "syslinux-efi"), (EFI_CORE, "syslinux-common")):
        if not path.is_file():
            raise RamdiskError(f"{path} not found; install the Debian package {package}")
    return files


def _syslinux_binary() -> Path:
    found = shutil.which("syslinux")
    if found is None:
        raise RamdiskError("syslinux not found; install the Debian package syslinux")
    return Path(found)


def _inputs_file(image: Path) -> Path:
    return image.with_name(image.name + ".inputs")


def image_inputs_hash(packages: list[debs.DebPackage]) -> str:
    """The inputs hash of the test image built from ``packages`` (kernel, busybox)."""
    code = [Path(__file__), *(Path(debs.__file__).parent.glob("*.py"))]
    return inputs_hash(
        [PackagePin.of(p) for p in packages],
        trees={
            "code": files_digests(code),
            "host": files_digests(
                [mbr_boot_code(), _syslinux_binary(), *efi_loader_files().values()]
            ),
        },
        params={
            "size": IMAGE_SIZE,
            "modules": list(MODULES),
            "append": KERNEL_APPEND,
            "partition_type": PARTITION_TYPE,
        },
    )


def build_test_image(
    out: Path,
    *,
    cache_dir: Path,
    progress: Progress = _silent,
    force: bool = False,
    packages: PackageSource | None = None,
) -> Path:
    """Build the bootable raw test disk image at ``out`` unless it is current.

    Raises:
        RamdiskError: a package, host tool or build step failed.
    """
    progress("resolving package versions (apt-cache)")
    marker = _inputs_file(out)
    recorded = marker.read_text().split() if marker.is_file() else []
    resolved = debs.resolve_with_kernel(
        packages or AptPackages(),
        [BUSYBOX_PACKAGE],
        kernel_hint=recorded[1] if len(recorded) > 1 else None,
    )
    digest = image_inputs_hash(resolved)
    if not force and out.is_file() and recorded[:1] == [digest]:
        progress(f"up to date: {out}")
        return out
    trees = debs.fetch_and_unpack(resolved, cache_dir, progress)
    kernel = kmod.kernel_tree(trees[resolved[0].name])
    check_zstd_support(kernel)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".disk-", dir=out.parent) as tmp:
        scratch = Path(tmp)
        progress("building the test disk's initramfs")
        initrd = _initramfs(kernel, trees[BUSYBOX_PACKAGE], scratch)
        progress("building the FAT boot partition (mkfs.vfat, mcopy, syslinux, EFI loader)")
        partition = _boot_partition(kernel.vmlinuz, initrd, scratch)
        progress("assembling the disk image (sfdisk, mbr.bin)")
        _assemble(partition, scratch / "disk.raw")
        (scratch / "disk.raw").replace(out)
    marker.write_text(f"{digest}\n{resolved[0].name}\n")  # the kernel: a hint for next time
    progress(f"built {out} ({IMAGE_SIZE // MIB} MiB, Linux {kernel.version})")
    return out


def _initramfs(kernel: kmod.KernelTree, busybox_tree: Path, scratch: Path) -> Path:
    stage = scratch / "initramfs"
    for directory in ("dev", "proc", "sys", "mnt", "tmp", "etc/metalcast"):
        (stage / directory).mkdir(parents=True, exist_ok=True)
    write_staged(stage / "init", DISK_INIT, executable=True)
    stage_busybox(busybox_tree, stage)
    stage_modules(kernel, stage, MODULES, optional=OPTIONAL_MODULES)
    write_staged(
        stage / POWER_BUTTON_HANDLER, POWER_BUTTON_SCRIPT.format(who="DISK"), executable=True
    )
    target = scratch / "initrd.img"
    pack_initramfs(stage, target, scratch)
    return target


def _boot_partition(vmlinuz: Path, initrd: Path, scratch: Path) -> Path:
    partition = scratch / "boot.fat"
    with partition.open("wb") as stream:
        stream.truncate(IMAGE_SIZE - PARTITION_START)
    fixed_ids = ["--invariant", "-i", VOLUME_ID]  # no random volume id, no timestamps
    hidden_sectors = ["-h", str(PARTITION_START // 512)]
    run_tool(
        ["mkfs.vfat", *fixed_ids, *hidden_sectors, "-n", BOOT_LABEL, partition],
        what="mkfs.vfat (the boot partition)",
    )
    (scratch / "syslinux.cfg").write_text(SYSLINUX_CFG)
    files = {"vmlinuz": vmlinuz, "initrd.img": initrd, "syslinux.cfg": scratch / "syslinux.cfg"}
    # SYSLINUX's EFI build reads the syslinux.cfg next to it
    files |= {f"{EFI_BOOT_DIR}/syslinux.cfg": scratch / "syslinux.cfg"}
    files |= {f"{EFI_BOOT_DIR}/{name}": path for name, path in efi_loader_files().items()}
    env = {"MTOOLS_SKIP_CHECK": "1", "SOURCE_DATE_EPOCH": str(EPOCH)}
    efi, boot = EFI_BOOT_DIR.split("/")
    run_tool(["mmd", "-i", partition, f"::{efi}", f"::{efi}/{boot}"], what="mmd EFI/BOOT", env=env)
    for name, source in files.items():
        staged = scratch / f"copy-{name.replace('/', '-')}"
        shutil.copyfile(source, staged)
        os.utime(staged, (EPOCH, EPOCH))
        run_tool(
            ["mcopy", "-m", "-i", partition, staged, f"::{name}"], what=f"mcopy {name}", env=env
        )
    run_tool(["syslinux", "--install", partition], what="syslinux --install", env=env)
    return partition


def _assemble(partition: Path, image: Path) -> None:
    with image.open("wb") as stream:
        stream.truncate(IMAGE_SIZE)
    start = PARTITION_START // 512
    script = (
        f"label: dos\nlabel-id: {DISK_ID}\nunit: sectors\n\n"
        f"start={start}, type={PARTITION_TYPE}, bootable\n"
    )
    run_tool(
        ["sfdisk", "--no-reread", "--no-tell-kernel", "-q", image],
        what="sfdisk (the test disk's partition table)",
        stdin=script.encode(),
    )
    boot_code = mbr_boot_code().read_bytes()[:440]
    with image.open("r+b") as stream:
        stream.write(boot_code)
        _copy_sparse(partition, stream, PARTITION_START)


def _copy_sparse(source: Path, stream: BinaryIO, offset: int) -> None:
    """Copy ``source`` into ``stream`` at ``offset``, skipping all-zero blocks (the
    image is zero there already, and stays sparse)."""
    zero = bytes(MIB)
    with source.open("rb") as data:
        position = offset
        for block in iter(lambda: data.read(MIB), b""):
            if block != zero[: len(block)]:
                stream.seek(position)
                stream.write(block)
            position += len(block)


def qcow2_variant(raw: Path, out: Path | None = None) -> Path:
    """A qcow2 copy of a raw image (``qemu-img convert``), redone only when the raw
    image was rebuilt (its ``.inputs`` hash changed).

    Raises:
        RamdiskError: qemu-img failed or is not installed.
    """
    target = out or raw.with_suffix(".qcow2")
    source_marker, marker = _inputs_file(raw), _inputs_file(target)
    digest = source_marker.read_text() if source_marker.is_file() else None
    current = digest is not None and marker.is_file() and marker.read_text() == digest
    if current and target.is_file():
        return target
    partial = target.with_name(f".{target.name}.partial")
    run_tool(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, partial],
        what=f"qemu-img convert {raw.name} to qcow2",
    )
    partial.replace(target)
    if digest is not None:
        marker.write_text(digest)
    return target
