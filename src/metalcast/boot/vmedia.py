"""Virtual media: a bootable ISO of the deploy ramdisk for one node, for BMCs that
insert it as a virtual CD (the ``redfish-virtual-media`` boot interface).

The ISO boots under BIOS and under UEFI without DHCP, TFTP or a boot script: every
setting the agent needs is inside it.  It holds (ISO 9660, El Torito)::

    boot/bios.img    BIOS: hard-disk emulation of a disk with SYSLINUX's MBR code and
                     one FAT partition (``syslinux --install``)
    boot/efi.img     UEFI: that FAT partition alone (``EFI/BOOT/BOOTX64.EFI`` is
                     SYSLINUX's EFI build), the El Torito EFI entry
    boot/boot.catalog the El Torito boot catalog

The FAT partition holds the deploy kernel, one initrd and a ``syslinux.cfg`` whose
``APPEND`` line is the kernel command line the iPXE script would give
(:func:`metalcast.boot.ipxe.kernel_command_line`: ``metalcast.api=``, ``BOOTIF=`` of
the node's first port).  The initrd is the deploy ramdisk with, appended (Linux
unpacks concatenated archives in order), a small archive of the node's own files:
with TLS the agent CA, and when the node has ``network_data``
``/etc/metalcast/network_data.json`` and ``/etc/metalcast/static-net``, the static
addresses the ramdisk's ``/init`` configures instead of asking DHCP
(:func:`static_network`).  No token is inside: the agent gets its token at its first
lookup, as it does after a network boot.

ISOs are written to ``<boot dir>/vmedia/<random>.iso`` and served by the boot HTTP
server like the other boot files; the name is 32 random hex digits (unguessable),
replaced at every build, removed when the node leaves the ramdisk.

Errors: :class:`~metalcast.boot.errors.BootSetupError` (a tool is missing or failed,
``network_data`` cannot be used).
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import json
import os
import secrets
import shutil
import stat
import subprocess
import tempfile
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from metalcast import cpio, cpus
from metalcast.boot.dnsmasq import normalize_mac
from metalcast.boot.errors import BootSetupError
from metalcast.boot.ipxe import NodeBoot, NodePort, kernel_command_line
from metalcast.boot.layout import BootLayout, write_atomic
from metalcast.boot.settings import BootSettings
from metalcast.boot.trust import CA_INITRD, CA_PATH

VMEDIA_DIR = "vmedia"
STATIC_NET_PATH = "etc/metalcast/static-net"
NETWORK_DATA_PATH = "etc/metalcast/network_data.json"
MIB = 1 << 20
#: the BIOS image's partition starts at 1 MiB, as a partitioned disk's does
PARTITION_START = MIB
#: the BIOS image's geometry (a cylinder is 1 MiB): its partition entry and FAT agree
HEADS = 64
SECTORS = 32
VOLUME_LABEL = "METALCAST"
MBR_CANDIDATES = (Path("/usr/lib/syslinux/mbr/mbr.bin"), Path("/usr/share/syslinux/mbr.bin"))
EFI_LOADER = Path("/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi")
EFI_CORE = Path("/usr/lib/syslinux/modules/efi64/ldlinux.e64")
_TOOLS = {
    "genisoimage": "genisoimage",
    "mkfs.vfat": "dosfstools",
    "mcopy": "mtools",
    "mmd": "mtools",
    "syslinux": "syslinux",
}
_TOOL_TIMEOUT = 300.0


def iso_name() -> str:
    """A fresh unguessable file name for one node's ISO."""
    return f"{secrets.token_hex(16)}.iso"


def static_network(network_data: Mapping[str, Any]) -> str:
    """The ramdisk's static network settings from Ironic's ``network_data`` (the
    OpenStack ``network_data.json`` shape: ``links`` with ``ethernet_mac_address``,
    ``networks`` of type ``ipv4`` with ``ip_address``, ``netmask`` and ``routes``,
    ``services`` of type ``dns``), one setting a line, for ``/init``::

        addr <mac> <address>/<prefix>
        route <mac> <network>/<prefix> <gateway>
        dns <address>

    ``ipv4_dhcp`` networks give ``dhcp <mac>`` (that NIC asks DHCP); IPv6 networks
    are left to the instance (the ramdisk's agent reaches metalcast over IPv4).

    Raises:
        BootSetupError: a network names an unknown link, or an address is invalid.
    """
    links = _links(network_data.get("links"))
    lines: list[str] = []
    for network in _list(network_data.get("networks"), "networks"):
        kind = str(network.get("type", ""))
        mac = links.get(str(network.get("link", "")))
        if mac is None:
            raise BootSetupError(
                f"network_data: network {network.get('id')!r} names link "
                f"{network.get('link')!r}, which no link with an ethernet_mac_address has"
            )
        if kind == "ipv4_dhcp":
            lines.append(f"dhcp {mac}")
        elif kind == "ipv4":
            lines += _ipv4_lines(network, mac)
    for service in _list(network_data.get("services"), "services"):
        if service.get("type") == "dns":
            lines.append(f"dns {_address(service.get('address'), 'services/address')}")
    return "".join(f"{line}\n" for line in lines)


def _list(value: object, what: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BootSetupError(f"network_data: {what} must be a list of objects")
    return value


def _links(value: object) -> dict[str, str]:
    links = {}
    for link in _list(value, "links"):
        mac = str(link.get("ethernet_mac_address") or "").lower()
        if mac:
            parts = mac.split(":")
            if len(parts) != 6 or not all(len(p) == 2 and _hex(p) for p in parts):
                raise BootSetupError(f"network_data: {mac!r} is not a MAC address")
            links[str(link.get("id", ""))] = mac
    return links


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _address(value: object, what: str) -> ipaddress.IPv4Address:
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError as exc:
        raise BootSetupError(f"network_data: {what} {value!r} is not an IPv4 address") from exc


def _interface(address: object, netmask: object, what: str) -> ipaddress.IPv4Interface:
    try:
        return ipaddress.IPv4Interface(f"{address}/{netmask or 32}")
    except ValueError as exc:
        raise BootSetupError(
            f"network_data: {what} {address!r} with netmask {netmask!r} is not an IPv4 "
            "address and netmask"
        ) from exc


def _ipv4_lines(network: Mapping[str, Any], mac: str) -> list[str]:
    interface = _interface(network.get("ip_address"), network.get("netmask"), "ip_address")
    lines = [f"addr {mac} {interface.with_prefixlen}"]
    for route in _list(network.get("routes"), "routes"):
        target = _interface(route.get("network"), route.get("netmask"), "routes/network")
        gateway = _address(route.get("gateway"), "routes/gateway")
        lines.append(f"route {mac} {target.network.with_prefixlen} {gateway}")
    return lines


def node_overlay(
    *, network_data: Mapping[str, Any] | None = None, ca_pem: bytes | None = None
) -> bytes:
    """The node's own initrd archive (gzip cpio, no timestamps): its static network
    settings and ``network_data.json`` when it has ``network_data``, and the agent CA
    with TLS.  Raises BootSetupError (unusable ``network_data``)."""
    entries = [cpio.directory("etc"), cpio.directory("etc/metalcast")]
    if network_data:
        text = static_network(network_data).encode()
        entries.append(cpio.Entry(STATIC_NET_PATH, stat.S_IFREG | 0o644, text))
        body = json.dumps(network_data, sort_keys=True).encode()
        entries.append(cpio.Entry(NETWORK_DATA_PATH, stat.S_IFREG | 0o644, body))
    if ca_pem is not None:
        entries.append(cpio.Entry(CA_PATH, stat.S_IFREG | 0o644, ca_pem))
    archive = io.BytesIO()
    cpio.write(archive, entries)
    return gzip.compress(archive.getvalue(), compresslevel=9, mtime=0)


def syslinux_config(cmdline: str) -> str:
    """``syslinux.cfg``: boot the deploy kernel at once with ``cmdline``."""
    if "\n" in cmdline:
        raise BootSetupError("the kernel command line has a line break")
    return (
        "# generated by metalcast: the deploy ramdisk from virtual media\n"
        "DEFAULT deploy\nPROMPT 0\nTIMEOUT 0\n"
        "LABEL deploy\n  KERNEL /vmlinuz\n  INITRD /initrd\n"
        f"  APPEND {cmdline}\n"
    )


def check_tools() -> None:
    """Raises BootSetupError naming the first missing tool or boot loader file."""
    for tool, package in _TOOLS.items():
        if shutil.which(tool) is None:
            raise BootSetupError(
                f"cannot build virtual media: {tool} is not installed (Debian package {package})"
            )
    _mbr_code()
    for path, package in ((EFI_LOADER, "syslinux-efi"), (EFI_CORE, "syslinux-common")):
        if not path.is_file():
            raise BootSetupError(
                f"cannot build virtual media: {path} is missing (Debian package {package})"
            )


def _mbr_code() -> bytes:
    for path in MBR_CANDIDATES:
        if path.is_file():
            return path.read_bytes()[:440]
    raise BootSetupError(
        "cannot build virtual media: SYSLINUX's mbr.bin is missing (Debian package syslinux-common)"
    )


def build_iso(
    target: Path,
    *,
    kernel: Path,
    initrds: Sequence[Path | bytes],
    cmdline: str,
) -> None:
    """Write a bootable ISO to ``target`` (atomically): ``kernel`` booted with
    ``cmdline`` and ``initrds`` concatenated into one initrd (a path or the bytes of
    an archive).

    Raises:
        BootSetupError: a tool or file is missing, a tool failed, or the target
            directory is not writable.
    """
    check_tools()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".iso-") as scratch_name:
            scratch = Path(scratch_name)
            initrd = scratch / "initrd"
            with initrd.open("wb") as out:
                for part in initrds:
                    if isinstance(part, bytes):
                        out.write(part)
                    else:
                        with part.open("rb") as source:
                            shutil.copyfileobj(source, out, MIB)
            partition = _fat_partition(scratch, kernel=kernel, initrd=initrd, cmdline=cmdline)
            tree = scratch / "tree"
            (tree / "boot").mkdir(parents=True)
            _disk_image(partition, tree / "boot" / "bios.img")
            partition.replace(tree / "boot" / "efi.img")
            partial = scratch / "out.iso"
            _run(
                [
                    "genisoimage", "-quiet", "-o", str(partial), "-V", VOLUME_LABEL,
                    "-J", "-r", "-c", "boot/boot.catalog", "-b", "boot/bios.img", "-hard-disk-boot",
                    "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot",
                    str(tree),
                ],
                what="genisoimage",
            )  # fmt: skip
            os.chmod(partial, 0o644)
            partial.replace(target)
    except OSError as exc:
        raise BootSetupError(f"cannot write the virtual media ISO {target}: {exc}") from exc


def _fat_partition(scratch: Path, *, kernel: Path, initrd: Path, cmdline: str) -> Path:
    """The FAT file system both firmwares boot: kernel, initrd, SYSLINUX for both."""
    size = kernel.stat().st_size + initrd.stat().st_size
    # room for the files, the loaders and FAT's own overhead, in whole MiB
    total = (size * 11 // 10 + 4 * MIB + MIB - 1) // MIB * MIB
    partition = scratch / "boot.fat"
    with partition.open("wb") as stream:
        stream.truncate(total)
    geometry = ["-h", str(PARTITION_START // 512), "-g", f"{HEADS}/{SECTORS}"]
    _run(["mkfs.vfat", "-n", VOLUME_LABEL, *geometry, str(partition)], what="mkfs.vfat")
    config = scratch / "syslinux.cfg"
    config.write_text(syslinux_config(cmdline))
    env = {"MTOOLS_SKIP_CHECK": "1"}
    _run(["mmd", "-i", str(partition), "::EFI", "::EFI/BOOT"], what="mmd", env=env)
    files = {
        "vmlinuz": kernel,
        "initrd": initrd,
        "syslinux.cfg": config,
        "EFI/BOOT/syslinux.cfg": config,
        "EFI/BOOT/BOOTX64.EFI": EFI_LOADER,
        "EFI/BOOT/ldlinux.e64": EFI_CORE,
    }
    for name, source in files.items():
        _run(["mcopy", "-i", str(partition), str(source), f"::{name}"], what="mcopy", env=env)
    _run(["syslinux", "--install", str(partition)], what="syslinux --install", env=env)
    return partition


def _disk_image(partition: Path, image: Path) -> None:
    """A disk of SYSLINUX's MBR code and ``partition`` (active) at 1 MiB, its
    partition entry in the geometry the FAT file system was made with
    (:data:`HEADS` x :data:`SECTORS`): the firmware's hard-disk emulation takes its
    geometry from the entry and SYSLINUX's boot sector reads by it."""
    size = partition.stat().st_size
    cylinder = HEADS * SECTORS * 512
    start = PARTITION_START // 512
    last_cylinder = (PARTITION_START + size) // cylinder - 1
    if last_cylinder > 1023:
        raise BootSetupError("the deploy kernel and ramdisk are too large for virtual media")
    entry = (
        bytes([0x80])
        + _chs(PARTITION_START // cylinder, 0, 1)
        + bytes([0xEF])
        + _chs(last_cylinder, HEADS - 1, SECTORS)
        + start.to_bytes(4, "little")
        + (size // 512).to_bytes(4, "little")
    )
    with image.open("wb") as stream, partition.open("rb") as source:
        stream.write(_mbr_code())
        stream.write(bytes(446 - 440))
        stream.write(entry + bytes(48) + b"\x55\xaa")
        stream.seek(PARTITION_START)
        shutil.copyfileobj(source, stream, MIB)


def _chs(cylinder: int, head: int, sector: int) -> bytes:
    return bytes([head, sector | ((cylinder >> 2) & 0xC0), cylinder & 0xFF])


def _run(
    command: list[str], *, what: str, env: Mapping[str, str] | None = None, stdin: bytes = b""
) -> None:
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            env={**os.environ, **(env or {})},
            timeout=_TOOL_TIMEOUT,
            check=False,
            preexec_fn=cpus.child_setup(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BootSetupError(f"building virtual media: {what} failed: {exc}") from exc
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip()[-500:]
        raise BootSetupError(
            f"building virtual media: {what} failed (exit {done.returncode}): {said}"
        )


def iso_path(boot_dir: Path, name: str) -> Path:
    """Where ISO ``name`` lives in the boot directory."""
    return boot_dir / VMEDIA_DIR / name


def remove_iso(boot_dir: Path, name: str | None) -> None:
    """Remove ISO ``name`` (gone already: no error).  Raises BootSetupError."""
    if not name:
        return
    if "/" in name or name.startswith("."):
        raise BootSetupError(f"{name!r} is not a virtual media file name")
    try:
        iso_path(boot_dir, name).unlink(missing_ok=True)
    except OSError as exc:
        raise BootSetupError(f"cannot remove the virtual media ISO {name}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class VmediaNode:
    """What the conductor asks for: a virtual media ISO booting node ``uuid``'s
    deploy ramdisk, its agent told the MAC of its first port (``BOOTIF``), with the
    node's ``network_data`` (empty: the ramdisk asks DHCP)."""

    uuid: str
    macs: tuple[str, ...]
    network_data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if str(uuidlib.UUID(self.uuid)) != self.uuid:
            raise ValueError(f"{self.uuid!r} is not a lower-case UUID")
        if not self.macs:
            raise ValueError(f"node {self.uuid} has no port")


def _index(layout: BootLayout, node_uuid: str) -> Path:
    """Where the name of the node's ISO is kept: outside the served boot directory."""
    return layout.state_dir / VMEDIA_DIR / node_uuid


def publish_node_iso(
    layout: BootLayout, settings: BootSettings, node: VmediaNode, *, api_url: str
) -> str:
    """Build ``node``'s ISO under a fresh random name, remove its previous one, and
    return the URL the BMC fetches it from (the boot HTTP server, plain HTTP: a BMC
    need not trust metalcast's CA).

    Raises:
        BootSetupError: the ISO cannot be built, or ``network_data`` cannot be used.
    """
    bootif = normalize_mac(node.macs[0]).replace(":", "-")
    boot = NodeBoot(node.uuid, tuple(NodePort(mac) for mac in node.macs))
    cmdline = kernel_command_line(settings, boot, api_url=api_url, initrds=(), bootif=False)
    cmdline = f"{cmdline} BOOTIF=01-{bootif}"
    initrds: list[Path | bytes] = [layout.ramdisk]
    if settings.tls:
        initrds.append(layout.boot_dir / CA_INITRD)
    initrds.append(node_overlay(network_data=node.network_data or None))
    name = iso_name()
    build_iso(
        iso_path(layout.boot_dir, name), kernel=layout.kernel, initrds=initrds, cmdline=cmdline
    )
    index = _index(layout, node.uuid)
    previous = _read_index(index)
    try:
        index.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(index, name.encode(), mode=0o600)
    except OSError as exc:
        remove_iso(layout.boot_dir, name)
        raise BootSetupError(f"cannot record the virtual media of node {node.uuid}: {exc}") from exc
    if previous != name:
        remove_iso(layout.boot_dir, previous)
    return f"{settings.http_url}/boot/{VMEDIA_DIR}/{name}"


def withdraw_node_iso(layout: BootLayout, node_uuid: str) -> None:
    """Remove the node's ISO (none: nothing happens).  Raises BootSetupError."""
    index = _index(layout, node_uuid)
    remove_iso(layout.boot_dir, _read_index(index))
    try:
        index.unlink(missing_ok=True)
    except OSError as exc:
        raise BootSetupError(f"cannot remove {index}: {exc}") from exc


def _read_index(index: Path) -> str | None:
    try:
        return index.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BootSetupError(f"cannot read {index}: {exc}") from exc
