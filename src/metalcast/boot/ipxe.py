"""iPXE scripts and the files a node needs to network-boot the deploy ramdisk.

Any machine iPXE-booting on the provisioning network loads the generic script
(``boot.ipxe``, or ``boot-tftp.ipxe`` for nodes tagged for TFTP; BIOS machines of
those boot PXELINUX instead, see :mod:`metalcast.boot.pxelinux`).  It chains
``nodes/<mac>.ipxe`` for the MAC that booted (``${netX/mac:hexhyp}``, the NIC iPXE
last opened; it is ``net0`` on a one-NIC machine) and, when there is none, boots the
local disk: an unknown machine, or a node whose files were removed after its deploy,
boots what is on its disk.  With ``boot.discovery`` on, the generic script chains
``discovery.ipxe`` first: the deploy ramdisk with ``metalcast.discovery=1``, whose
agent reports the machine's inventory to be enrolled
(:mod:`metalcast.conductor.discovery`).

A node being provisioned has (see :func:`write_node_files`)::

    dhcp-hosts/<uuid>            its host entries (written last: once DHCP answers
                                 with the node's tag, its script is there)
    files/nodes/<uuid>/boot.ipxe its script: deploy kernel, ramdisk and command line
    files/nodes/<uuid>/deploy.kernel, deploy.initramfs
                                 links to the node's own deploy images, if it has any
    files/nodes/<mac>.ipxe       -> <uuid>/boot.ipxe, one link per port MAC

With TLS every node also loads ``files/tls-ca.cpio.gz``, the CA its agent verifies
the boot server with (:mod:`metalcast.boot.trust`), and its agent is given the boot
server's HTTPS URL.

Booting over TFTP (the ``pxe`` boot interface), a node also has its PXELINUX config::

    files/nodes/<uuid>/pxelinux.cfg
    files/pxelinux.cfg/01-<mac>  -> ../nodes/<uuid>/pxelinux.cfg, one link per port MAC
"""

from __future__ import annotations

import enum
import os
import shutil
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass
from ipaddress import IPv4Address
from pathlib import Path

from metalcast.boot import pxelinux
from metalcast.boot.dnsmasq import (
    BOOT_SCRIPT,
    TAG_HTTP,
    TAG_TFTP,
    TFTP_BOOT_SCRIPT,
    HostEntry,
    normalize_mac,
    render_host_entries,
)
from metalcast.boot.errors import BootSetupError
from metalcast.boot.layout import BootLayout, copy_if_changed, link_atomic, write_atomic
from metalcast.boot.settings import BootSettings
from metalcast.boot.trust import CA_INITRD, ca_initrd

KERNEL = "deploy.kernel"
RAMDISK = "deploy.initramfs"
NODE_SCRIPT = "boot.ipxe"
#: at the root of the boot directory, with ``boot.discovery`` on
DISCOVERY_SCRIPT = "discovery.ipxe"
#: iPXE expands these when it runs the script; the MAC is the one that booted
IPXE_MAC_HYPHENS = "${netX/mac:hexhyp}"
IPXE_MAC = "${netX/mac}"


class BootProtocol(enum.StrEnum):
    """How a node fetches its script, kernel and ramdisk."""

    HTTP = "http"
    #: TFTP only, for networks or firmware where HTTP cannot be used
    TFTP = "tftp"


@dataclass(frozen=True, slots=True)
class NodePort:
    mac: str
    #: a fixed address for this port; None: one from the DHCP range
    address: IPv4Address | None = None


@dataclass(frozen=True, slots=True)
class NodeBoot:
    """What the conductor asks for: boot node ``uuid`` into the deploy ramdisk from
    any of its ``ports``.

    Raises:
        ValueError: the UUID, a MAC address or a kernel parameter is invalid, or
            there is no port.
    """

    uuid: str
    ports: tuple[NodePort, ...]
    _: KW_ONLY
    protocol: BootProtocol = BootProtocol.HTTP
    #: the node's own deploy kernel and ramdisk (driver_info); None: the default
    kernel: Path | None = None
    ramdisk: Path | None = None
    #: kernel parameters for this node only
    kernel_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if str(uuidlib.UUID(self.uuid)) != self.uuid:
            raise ValueError(f"{self.uuid!r} is not a lower-case UUID")
        if not self.ports:
            raise ValueError(f"node {self.uuid} has no port to boot from")
        for port in self.ports:
            normalize_mac(port.mac)
        for param in self.kernel_params:
            if not param or any(c.isspace() for c in param):
                raise ValueError(f"kernel parameter {param!r} is empty or has spaces")

    @property
    def tag(self) -> str:
        return TAG_TFTP if self.protocol is BootProtocol.TFTP else TAG_HTTP

    def host_entries(self) -> list[HostEntry]:
        return [HostEntry(port.mac, self.tag, port.address) for port in self.ports]


def files_url(settings: BootSettings, protocol: BootProtocol) -> str:
    """Base URL of the boot directory over ``protocol``."""
    if protocol is BootProtocol.TFTP:
        return f"tftp://{settings.address}"
    return f"{settings.http_url}/boot"


def mac_script_name(mac: str) -> str:
    """``52-54-00-12-34-56.ipxe``: the name iPXE asks for (``${mac:hexhyp}``)."""
    return normalize_mac(mac).replace(":", "-") + ".ipxe"


def render_boot_script(base: str, *, discovery: bool = False) -> str:
    """The generic script: the booting MAC's script under ``base``, else (with
    ``discovery``) the discovery script, else the disk."""
    discover = f"chain --autofree {base}/{DISCOVERY_SCRIPT} ||\n" if discovery else ""
    return (
        "#!ipxe\n"
        "# generated by metalcast: boot a node being provisioned, or the local disk\n"
        f"chain --autofree {base}/nodes/{IPXE_MAC_HYPHENS}.ipxe || goto no_node\n"
        ":no_node\n"
        f"{discover}"
        f"echo metalcast: no boot script for {IPXE_MAC}: booting from the local disk\n"
        "iseq ${platform} efi && goto leave ||\n"
        "sanboot --no-describe --drive 0x80 || goto leave\n"
        ":leave\n"
        "exit\n"
    )


def render_discovery_script(settings: BootSettings, *, api_url: str) -> str:
    """The discovery script (``boot.discovery``): the deploy ramdisk for a machine no
    node knows, its agent told to report its inventory for enrolment
    (``metalcast.discovery=1``; an ironic-python-agent ramdisk reads Ironic's
    ``ipa-inspection-callback-url``).  If it cannot boot, it exits, and the generic
    script boots the local disk."""
    base = files_url(settings, BootProtocol.HTTP)
    initrds = initrd_names(settings)
    params = [f"initrd={name}" for name in initrds]
    if settings.console:
        params.append(f"console={settings.console}")
    params += [
        f"metalcast.api={api_url}",
        f"BOOTIF=01-{IPXE_MAC_HYPHENS}",
        "metalcast.discovery=1",
        f"ipa-api-url={api_url}",
        f"ipa-inspection-callback-url={api_url}/v1/continue_inspection",
        *settings.extra_kernel_params.split(),
    ]
    trust = f"initrd --name {CA_INITRD} {base}/{CA_INITRD} || goto failed\n" if settings.tls else ""
    return (
        "#!ipxe\n"
        "# generated by metalcast: the deploy ramdisk for a machine no node knows "
        "(boot.discovery)\n"
        f"kernel {base}/{KERNEL} {' '.join(params)} || goto failed\n"
        f"initrd --name {RAMDISK} {base}/{RAMDISK} || goto failed\n"
        f"{trust}"
        "boot || goto failed\n"
        ":failed\n"
        "echo metalcast: cannot boot the discovery ramdisk\n"
        "imgfree\n"
        "exit 1\n"
    )


def write_discovery_script(layout: BootLayout, settings: BootSettings, *, api_url: str) -> None:
    """Write the discovery script when ``settings.discovery`` is on, else remove it.

    Raises:
        BootSetupError: the file cannot be written or removed.
    """
    path = layout.boot_dir / DISCOVERY_SCRIPT
    try:
        if settings.discovery:
            _write_text(path, render_discovery_script(settings, api_url=api_url))
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        raise BootSetupError(f"cannot write {path}: {exc}") from exc


def initrd_names(settings: BootSettings) -> tuple[str, ...]:
    """The initrds a node loads: the deploy ramdisk, and the CA initrd with TLS."""
    return (RAMDISK, CA_INITRD) if settings.tls else (RAMDISK,)


def kernel_command_line(
    settings: BootSettings,
    node: NodeBoot,
    *,
    api_url: str,
    initrds: Sequence[str] = (RAMDISK,),
    bootif: bool = True,
) -> str:
    """The deploy kernel's parameters: what the agent needs (docs/agent-protocol.md)
    and Ironic's ``ipa-api-url`` for ironic-python-agent ramdisks.  ``initrds`` are
    the names iPXE loaded them as (the kernel's EFI stub looks them up by these);
    ``bootif`` False leaves ``BOOTIF`` to the boot loader (PXELINUX's ``IPAPPEND 2``)."""
    params = [f"initrd={name}" for name in initrds]
    if settings.console:
        params.append(f"console={settings.console}")
    params.append(f"metalcast.api={api_url}")
    if bootif:
        params.append(f"BOOTIF=01-{IPXE_MAC_HYPHENS}")
    params += [
        f"ipa-api-url={api_url}",
        *settings.extra_kernel_params.split(),
        *node.kernel_params,
    ]
    return " ".join(params)


def render_node_script(settings: BootSettings, node: NodeBoot, *, api_url: str) -> str:
    """The node's script: deploy kernel and ramdisk over the node's protocol.

    On failure it waits and chains the generic script again, which boots the disk
    once the node's files are gone.
    """
    base = files_url(settings, node.protocol)
    own = f"{base}/nodes/{node.uuid}"
    kernel = f"{own}/{KERNEL}" if node.kernel else f"{base}/{KERNEL}"
    ramdisk = f"{own}/{RAMDISK}" if node.ramdisk else f"{base}/{RAMDISK}"
    generic = TFTP_BOOT_SCRIPT if node.protocol is BootProtocol.TFTP else BOOT_SCRIPT
    cmdline = kernel_command_line(settings, node, api_url=api_url, initrds=initrd_names(settings))
    trust = f"initrd --name {CA_INITRD} {base}/{CA_INITRD} || goto failed\n" if settings.tls else ""
    return (
        "#!ipxe\n"
        f"# generated by metalcast: deploy ramdisk of node {node.uuid}\n"
        f"kernel {kernel} {cmdline} || goto failed\n"
        f"initrd --name {RAMDISK} {ramdisk} || goto failed\n"
        f"{trust}"
        "boot || goto failed\n"
        ":failed\n"
        f"echo metalcast: cannot boot the deploy ramdisk of node {node.uuid}; "
        "trying again in 10 s\n"
        "imgfree\n"
        "sleep 10 ||\n"
        f"chain --autofree {base}/{generic} || exit\n"
    )


def render_pxelinux_config(settings: BootSettings, node: NodeBoot, *, api_url: str) -> str:
    """The node's PXELINUX config: deploy kernel and ramdisk by TFTP path."""
    own = f"nodes/{node.uuid}"
    kernel = f"{own}/{KERNEL}" if node.kernel else KERNEL
    ramdisk = f"{own}/{RAMDISK}" if node.ramdisk else RAMDISK
    ramdisks = (ramdisk, CA_INITRD) if settings.tls else (ramdisk,)
    cmdline = kernel_command_line(settings, node, api_url=api_url, initrds=(), bootif=False)
    return pxelinux.render_node_config(
        kernel=kernel, ramdisks=ramdisks, params=cmdline.split(), node_uuid=node.uuid
    )


def install_boot_files(
    layout: BootLayout, settings: BootSettings, *, agent_ca: bytes | None = None
) -> list[str]:
    """Create the boot directory: iPXE binaries, generic scripts, PXELINUX, links to
    the deploy kernel and ramdisk, and with TLS the CA initrd holding ``agent_ca``
    (PEM).  Returns warnings (a deploy image or PXELINUX is missing).

    Raises:
        BootSetupError: an iPXE binary is missing, a directory is not writable, or
            there is TLS but no ``agent_ca``.
    """
    if settings.tls and agent_ca is None:
        raise BootSetupError("the boot server serves TLS but no CA was given for the agents")
    try:
        _install_ca_initrd(layout, agent_ca if settings.tls else None)
        layout.make_dirs()
        for name in dict.fromkeys((settings.bios_bootfile, settings.uefi_bootfile)):
            source = settings.ipxe_dir / name
            if not source.is_file():
                raise BootSetupError(
                    f"iPXE binary {source} is missing: install the Debian package "
                    "'ipxe' or set boot.ipxe_dir"
                )
            copy_if_changed(source, layout.boot_dir / name)
        _write_text(
            layout.boot_dir / BOOT_SCRIPT,
            render_boot_script(
                files_url(settings, BootProtocol.HTTP), discovery=settings.discovery
            ),
        )
        _write_text(
            layout.boot_dir / TFTP_BOOT_SCRIPT,
            render_boot_script(files_url(settings, BootProtocol.TFTP)),
        )
        link_atomic(layout.boot_dir / KERNEL, layout.kernel)
        link_atomic(layout.boot_dir / RAMDISK, layout.ramdisk)
        warnings = pxelinux.install_files(layout, settings)
    except OSError as exc:
        raise BootSetupError(f"cannot prepare the boot directory {layout.boot_dir}: {exc}") from exc
    return [
        f"deploy {what} {path} does not exist yet: nodes cannot boot the deploy ramdisk"
        for what, path in (("kernel", layout.kernel), ("ramdisk", layout.ramdisk))
        if not path.is_file()
    ] + warnings


def _install_ca_initrd(layout: BootLayout, pem: bytes | None) -> None:
    """The CA initrd for ``pem``; none without TLS (a stale one would be loaded by
    nothing, but would say something untrue)."""
    path = layout.boot_dir / CA_INITRD
    if pem is None:
        path.unlink(missing_ok=True)
    else:
        layout.boot_dir.mkdir(parents=True, exist_ok=True)
        _write_bytes(path, ca_initrd(pem))


def _write_text(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` atomically unless it is there already; returns
    whether it was different (or absent)."""
    return _write_bytes(path, text.encode())


def _write_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


def _remove_mac_links(layout: BootLayout, node_uuid: str, *, keep: frozenset[str]) -> None:
    for entry in layout.nodes_dir.glob("*.ipxe"):
        if entry.name in keep or not entry.is_symlink():
            continue
        if os.readlink(entry).startswith(f"{node_uuid}/"):
            entry.unlink(missing_ok=True)


def _pxelinux_link(node_uuid: str) -> str:
    return f"../nodes/{node_uuid}/{pxelinux.NODE_CONFIG}"


def _remove_pxelinux_links(layout: BootLayout, node_uuid: str, *, keep: frozenset[str]) -> None:
    directory = layout.boot_dir / pxelinux.CONFIG_DIR
    if not directory.is_dir():
        return
    for entry in directory.glob("01-*"):
        if entry.name in keep or not entry.is_symlink():
            continue
        if os.readlink(entry) == _pxelinux_link(node_uuid):
            entry.unlink(missing_ok=True)


def _write_pxelinux_files(
    layout: BootLayout, node: NodeBoot, *, settings: BootSettings, api_url: str
) -> None:
    """The node's PXELINUX config and per-MAC links when it boots over TFTP; else
    none (a node that changed from ``pxe`` to ``ipxe`` loses them)."""
    own = layout.nodes_dir / node.uuid / pxelinux.NODE_CONFIG
    names: frozenset[str] = frozenset()
    if node.protocol is BootProtocol.TFTP:
        names = frozenset(pxelinux.config_name(normalize_mac(p.mac)) for p in node.ports)
        _write_text(own, render_pxelinux_config(settings, node, api_url=api_url))
        directory = layout.boot_dir / pxelinux.CONFIG_DIR
        directory.mkdir(parents=True, exist_ok=True)
        for name in names:
            link_atomic(directory / name, _pxelinux_link(node.uuid))
    else:
        own.unlink(missing_ok=True)
    _remove_pxelinux_links(layout, node.uuid, keep=names)


def _link_own_image(directory: Path, name: str, *, image: Path | None) -> None:
    if image is not None:
        link_atomic(directory / name, image)
    else:
        (directory / name).unlink(missing_ok=True)


def _release_macs(layout: BootLayout, node_uuid: str, *, macs: frozenset[str]) -> bool:
    """Drop ``macs`` from the host entries of every other node (a port moved to this
    node), so that no two files name one MAC.  Returns whether a file changed."""
    changed = False
    for path in layout.hosts_dir.iterdir():
        if path.name == node_uuid or path.name.startswith("."):
            continue
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines if line.split(",", 1)[0] not in macs]
        if kept == lines:
            continue
        changed = True
        if kept:
            write_atomic(path, "".join(kept).encode())
        else:
            path.unlink(missing_ok=True)
    return changed


def write_node_files(
    layout: BootLayout, node: NodeBoot, *, settings: BootSettings, api_url: str
) -> bool:
    """Write everything ``node`` needs to boot the deploy ramdisk, replacing what an
    earlier call wrote.  The host entries come last, so that DHCP hands out the
    node's tag only once its script is in place.

    Returns whether host entries dnsmasq may have loaded changed (this node's, or
    another node's that had one of these MACs): dnsmasq then needs a restart to
    forget the old ones.  New entries need none.

    Raises:
        BootSetupError: a file cannot be written.
    """
    own = layout.nodes_dir / node.uuid
    script = render_node_script(settings, node, api_url=api_url)
    macs = frozenset(normalize_mac(port.mac) for port in node.ports)
    names = frozenset(mac_script_name(mac) for mac in macs)
    hosts = layout.hosts_dir / node.uuid
    try:
        own.mkdir(parents=True, exist_ok=True)
        _link_own_image(own, KERNEL, image=node.kernel)
        _link_own_image(own, RAMDISK, image=node.ramdisk)
        _write_text(own / NODE_SCRIPT, script)
        _remove_mac_links(layout, node.uuid, keep=names)
        for name in names:
            link_atomic(layout.nodes_dir / name, f"{node.uuid}/{NODE_SCRIPT}")
        _write_pxelinux_files(layout, node, settings=settings, api_url=api_url)
        existed = hosts.exists()
        changed = _write_text(hosts, render_host_entries(node.host_entries()))
        moved = _release_macs(layout, node.uuid, macs=macs)
    except OSError as exc:
        raise BootSetupError(f"cannot write the boot files of node {node.uuid}: {exc}") from exc
    return (existed and changed) or moved


def remove_node_files(layout: BootLayout, node_uuid: str) -> bool:
    """Remove the host entries, scripts, MAC links and image links of a node (what
    is already gone is no error).  Returns whether host entries were removed:
    dnsmasq then needs a restart to forget them.

    Raises:
        BootSetupError: a file cannot be removed.
    """
    hosts = layout.hosts_dir / node_uuid
    own = layout.nodes_dir / node_uuid
    try:
        existed = hosts.exists()
        hosts.unlink(missing_ok=True)
        if layout.nodes_dir.is_dir():
            _remove_mac_links(layout, node_uuid, keep=frozenset())
        _remove_pxelinux_links(layout, node_uuid, keep=frozenset())
        if own.exists():
            shutil.rmtree(own)
    except OSError as exc:
        raise BootSetupError(f"cannot remove the boot files of node {node_uuid}: {exc}") from exc
    return existed
