"""What the machine has, read from /proc, /sys and udev's /dev/disk links: the
``get_inventory`` result, in Ironic's inventory format (``protocol.Inventory``).

Everything here reads files under the :class:`~metalcast_agent.environment.Environment`
roots, so it works on a fake tree. A file that cannot be read is a missing value
(``None``), never an error: firmware and drivers differ in what they expose. LLDP is
heard only when the conductor allows listening for it (:mod:`metalcast_agent.lldp`).
Not reported: the BMC address (it needs ipmitool and the IPMI kernel driver): ``None``.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from metalcast_agent import lldp
from metalcast_agent.environment import Environment
from metalcast_agent.protocol import (
    Disk,
    Inventory,
    InventoryCpu,
    InventoryInterface,
    InventoryMemory,
    InventorySystem,
)

SECTOR = 512  # /sys/block/*/size counts 512-byte sectors whatever the disk's sector size
#: block devices that are never a deploy target: loop, RAM, CD-ROM, floppy, virtual ones
_NOT_DISKS = ("loop", "ram", "zram", "sr", "fd", "dm-", "md", "nbd", "zd")
_ARPHRD_LOOPBACK = "772"
_SIOCGIFADDR = 0x8915


@dataclass(frozen=True, slots=True)
class Interface:
    """A network interface with a hardware address."""

    name: str
    mac: str
    ipv4: str | None
    has_carrier: bool
    speed_mbps: int | None = None

    def to_json(self, *, lldp: list[list[object]] | None = None) -> InventoryInterface:
        """The interface as the inventory reports it."""
        return InventoryInterface(
            name=self.name,
            mac_address=self.mac,
            ipv4_address=self.ipv4,
            ipv6_address=None,
            has_carrier=self.has_carrier,
            speed_mbps=self.speed_mbps,
            lldp=lldp,
        )


def read_attr(path: Path) -> str | None:
    """The stripped text of a sysfs/procfs file, or ``None`` when absent, unreadable or empty."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


def list_disks(env: Environment) -> list[Disk]:
    """Every writable whole disk in ``/sys/block``, by name."""
    root = env.sys_root / "block"
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    disks = (_disk(root / name) for name in names if not name.startswith(_NOT_DISKS))
    return [disk for disk in disks if disk is not None]


def _disk(block: Path) -> Disk | None:
    sectors = read_attr(block / "size")
    if sectors is None or not sectors.isdigit() or int(sectors) == 0:
        return None
    if read_attr(block / "ro") == "1":
        return None
    return Disk(
        name=f"/dev/{block.name}",
        size=int(sectors) * SECTOR,
        model=read_attr(block / "device" / "model"),
        serial=_serial(block),
        wwn=_wwn(block),
        vendor=read_attr(block / "device" / "vendor"),
        rotational=read_attr(block / "queue" / "rotational") == "1",
    )


def _serial(block: Path) -> str | None:
    serial = read_attr(block / "serial") or read_attr(block / "device" / "serial")
    if serial is not None:
        return serial
    try:  # SCSI: the unit serial number VPD page, after its 4-byte header
        page = (block / "device" / "vpd_pg80").read_bytes()
    except OSError:
        return None
    return page[4:].decode("ascii", "replace").strip("\x00 ") or None


def _wwn(block: Path) -> str | None:
    wwid = read_attr(block / "wwid") or read_attr(block / "device" / "wwid")
    if wwid is None:
        return None
    if wwid.startswith("naa."):  # as lsblk and udev show it, and as hints give it
        return "0x" + wwid[4:].lower()
    return wwid


def list_interfaces(env: Environment) -> list[Interface]:
    """Every non-loopback interface with a MAC address, by name."""
    root = env.sys_root / "class" / "net"
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    found = (_interface(root / name) for name in names)
    return [nic for nic in found if nic is not None]


def _interface(path: Path) -> Interface | None:
    mac = (read_attr(path / "address") or "").lower()
    if read_attr(path / "type") == _ARPHRD_LOOPBACK or path.name == "lo":
        return None
    if not mac or mac.strip("0:") == "":
        return None
    return Interface(
        name=path.name,
        mac=mac,
        ipv4=interface_ipv4(path.name),
        has_carrier=read_attr(path / "carrier") == "1",
        speed_mbps=_speed(path),
    )


def _speed(path: Path) -> int | None:
    speed = read_attr(path / "speed")  # -1 (or unreadable) without a link
    return int(speed) if speed is not None and speed.isdigit() and int(speed) > 0 else None


def interface_ipv4(name: str) -> str | None:
    """The IPv4 address of interface ``name`` in this network namespace, if it has one."""
    request = struct.pack("256s", name.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
    except OSError:
        return None
    return socket.inet_ntoa(answer[20:24])


def mac_addresses(env: Environment, *, bootif: str | None = None) -> list[str]:
    """The MACs a lookup sends: ``bootif`` first, then every interface's."""
    macs = [bootif] if bootif else []
    macs += [nic.mac for nic in list_interfaces(env) if nic.mac not in macs]
    return macs


def collect_inventory(env: Environment, *, lldp_seconds: float = 0.0) -> Inventory:
    """The ``get_inventory`` result of docs/agent-protocol.md (Ironic's format), with
    the LLDP heard on each NIC within ``lldp_seconds``."""
    paths = _by_path(env)
    nics = list_interfaces(env)
    heard = lldp.listen([nic.name for nic in nics], lldp_seconds)
    efi = (env.sys_root / "firmware" / "efi").is_dir()
    return Inventory(
        cpu=_cpu(env),
        memory=_memory(env),
        disks=[disk.to_json(by_path=paths.get(disk.name)) for disk in list_disks(env)],
        interfaces=[nic.to_json(lldp=heard.get(nic.name)) for nic in nics],
        system_vendor=_system(env),
        boot={"current_boot_mode": "uefi" if efi else "bios", "pxe_interface": _bootif(env)},
        bmc_address=None,
        hostname=socket.gethostname(),
    )


def _cpu(env: Environment) -> InventoryCpu:
    count, model, mhz = 0, None, None
    flags: list[str] = []
    for line in (read_attr(env.proc_root / "cpuinfo") or "").splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "processor":
            count += 1
        elif key in ("model name", "Model", "cpu model", "cpu") and model is None:
            model = value or None
        elif key in ("flags", "Features") and not flags:
            flags = value.split()
        elif key == "cpu MHz" and mhz is None:
            mhz = value or None
    return InventoryCpu(
        count=count or os.cpu_count() or 1,
        model_name=model,
        architecture=os.uname().machine,
        flags=flags,
        frequency=mhz,
    )


def _memory(env: Environment) -> InventoryMemory:
    total = None
    for line in (read_attr(env.proc_root / "meminfo") or "").splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "MemTotal:" and fields[1].isdigit():
            total = int(fields[1]) * 1024
    return InventoryMemory(total=total, physical_mb=_physical_mb(env))


def _physical_mb(env: Environment) -> int | None:
    """The installed memory: every online memory block (the kernel's own total leaves
    out what the firmware and the kernel keep)."""
    root = env.sys_root / "devices" / "system" / "memory"
    size = read_attr(root / "block_size_bytes")
    try:
        blocks = [p for p in root.iterdir() if p.name.startswith("memory")]
    except OSError:
        return None
    if size is None or not blocks:
        return None
    online = sum(1 for block in blocks if read_attr(block / "online") == "1")
    return online * int(size, 16) // 2**20 or None


def _by_path(env: Environment) -> dict[str, str]:
    """The /dev/disk/by-path name of each whole disk: disk name -> link.  udev's links
    when it made them; else (the ramdisk runs no udev) the name udev's ``path_id``
    gives, derived from sysfs, for the buses whose naming is simple: virtio-blk,
    NVMe and virtio-scsi."""
    found = _udev_by_path(env)
    for disk in list_disks(env):
        if disk.name not in found:
            derived = _sysfs_path_id(env.sys_root / "block" / disk.name.removeprefix("/dev/"))
            if derived is not None:
                found[disk.name] = f"/dev/disk/by-path/{derived}"
    return found


_PCI = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_HCTL = re.compile(r"^\d+:\d+:\d+:\d+$")
_NVME_NAMESPACE = re.compile(r"^nvme\d+(?:c\d+)?n(\d+)$")


def _sysfs_path_id(block: Path) -> str | None:
    """What udev's path_id (systemd 252) calls the disk at sysfs ``block``, for
    virtio-blk (``virtio-pci-ADDR``), NVMe (``pci-ADDR-nvme-NS``) and virtio-scsi
    (``pci-ADDR-scsi-H:C:T:L``); ``None`` for other buses."""
    try:
        parts = block.resolve(strict=True).parts
    except OSError:
        return None
    pci = [i for i, part in enumerate(parts) if _PCI.match(part)]
    if not pci:
        return None
    address, rest = parts[pci[-1]], parts[pci[-1] + 1 :]
    namespace = _NVME_NAMESPACE.match(block.name)
    if namespace is not None and any(p.startswith("nvme") for p in rest[:-1]):
        return f"pci-{address}-nvme-{namespace.group(1)}"
    hctl = [p for p in rest if _HCTL.match(p)]
    if rest and rest[0].startswith("virtio"):
        return f"pci-{address}-scsi-{hctl[-1]}" if hctl else f"virtio-pci-{address}"
    return None


def _udev_by_path(env: Environment) -> dict[str, str]:
    root = env.dev_root / "disk" / "by-path"
    try:
        links = sorted(root.iterdir())
    except OSError:
        return {}
    found: dict[str, str] = {}
    for link in links:
        try:
            target = os.readlink(link)
        except OSError:
            continue
        name = f"/dev/{Path(target).name}"
        found.setdefault(name, f"/dev/disk/by-path/{link.name}")
    return found


def _bootif(env: Environment) -> str | None:
    """The MAC the machine booted from (``BOOTIF=01-aa-bb-…`` on the kernel command line)."""
    for word in (read_attr(env.proc_root / "cmdline") or "").split():
        if word.startswith("BOOTIF="):
            value = word.removeprefix("BOOTIF=").lower()
            return value[3:].replace("-", ":") if value.startswith("01-") else None
    return None


def _system(env: Environment) -> InventorySystem:
    dmi = env.sys_root / "class" / "dmi" / "id"
    return InventorySystem(
        manufacturer=read_attr(dmi / "sys_vendor"),
        product_name=read_attr(dmi / "product_name"),
        serial_number=read_attr(dmi / "product_serial"),
        uuid=read_attr(dmi / "product_uuid"),
        firmware={
            "vendor": read_attr(dmi / "bios_vendor"),
            "version": read_attr(dmi / "bios_version"),
            "build_date": read_attr(dmi / "bios_date"),
        },
    )
