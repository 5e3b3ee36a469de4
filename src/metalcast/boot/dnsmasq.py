"""dnsmasq's configuration and host entries: DHCP, TFTP and the iPXE chainload.

What a booting machine gets:

* firmware that is not iPXE yet (BIOS PXE ROM, UEFI PXE) gets iPXE over TFTP:
  ``undionly.kpxe`` for BIOS, ``snponly.efi`` (or ``ipxe.efi``) for UEFI, told apart
  by the client architecture (DHCP option 93: 7 and 9 are x86-64 UEFI);
* iPXE (it sends DHCP option 175) gets ``http://ADDR:PORT/boot/boot.ipxe``, which
  chains the per-MAC script of a node being provisioned or boots the local disk;
* an iPXE client whose host entry carries the ``metalcast-tftp`` tag (a node with
  the ``pxe`` boot interface) gets the same over TFTP (``tftp://ADDR/boot-tftp.ipxe``);
* but a BIOS client with that tag, iPXE or not, gets PXELINUX (``pxelinux.0``), which
  loads everything over TFTP without iPXE (:mod:`metalcast.boot.pxelinux`).  UEFI
  clients with the tag take the iPXE-over-TFTP path.

dnsmasq evaluates ``dhcp-boot`` lines from the last to the first and takes the first
match, so the more specific a line, the later it comes.

Host entries live in ``dhcp-hostsdir``: one file per node, named by the node's UUID,
holding one ``<mac>,set:<tag>[,<ipv4>]`` line per port (the ``dhcp-host=`` value
without the option name; dnsmasq rejects the option name there: "bad hex constant").
dnsmasq reads a new or renamed file through inotify, without a restart.  It does not
forget the entries of a deleted or rewritten file, and which of an old and a new
entry for one MAC wins is not reliable; the way to make it forget, SIGHUP, crashes
dnsmasq 2.90 (SIGSEGV or abort) once a ``set:``-tagged entry from the directory
has served a lease.  So entries are only ever *added* live; removing or changing
them restarts dnsmasq (:meth:`metalcast.boot.dnsmasq_process.Dnsmasq.restart`).
"""

from __future__ import annotations

import errno
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address

from metalcast.boot.layout import BootLayout
from metalcast.boot.netns import run_in_netns
from metalcast.boot.pxelinux import BOOTFILE as PXELINUX_BOOTFILE
from metalcast.boot.settings import BootSettings

#: host-entry tags: which generic script an iPXE client is given
TAG_HTTP = "metalcast"
TAG_TFTP = "metalcast-tftp"
#: generic scripts, at the root of the boot directory
BOOT_SCRIPT = "boot.ipxe"
TFTP_BOOT_SCRIPT = "boot-tftp.ipxe"

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def normalize_mac(mac: str) -> str:
    """``AA-BB-CC-DD-EE-FF`` or ``aa:bb:…`` as dnsmasq and Ironic write it: lower case,
    colon separated.

    Raises:
        ValueError: ``mac`` is not a 48-bit MAC address.
    """
    normal = mac.strip().lower().replace("-", ":")
    if not _MAC.match(normal):
        raise ValueError(f"{mac!r} is not a MAC address")
    return normal


@dataclass(frozen=True, slots=True)
class HostEntry:
    """One port of a node as dnsmasq's ``dhcp-host`` sees it."""

    mac: str
    tag: str = TAG_HTTP
    #: a fixed address for this MAC; None: one from the DHCP range
    address: IPv4Address | None = None

    def render(self) -> str:
        """The line for the node's file in ``dhcp-hostsdir``."""
        fields = [normalize_mac(self.mac), f"set:{self.tag}"]
        if self.address is not None:
            fields.append(str(self.address))
        return ",".join(fields)


def render_host_entries(entries: Iterable[HostEntry]) -> str:
    """A node's host-entries file: one line per port.

    Raises:
        ValueError: a MAC address is invalid.
    """
    return "".join(f"{entry.render()}\n" for entry in entries)


def _dhcp_lines(settings: BootSettings, layout: BootLayout) -> list[str]:
    netmask = f",{settings.dhcp_netmask}" if settings.dhcp_netmask else ""
    lines = [
        f"dhcp-range={settings.dhcp_range_start},{settings.dhcp_range_end}"
        f"{netmask},{settings.lease_time}s",
        f"dhcp-leasefile={layout.leases}",
        f"dhcp-hostsdir={layout.hosts_dir}",
    ]
    if settings.ignore_unknown:
        lines += [
            "# another DHCP server serves this network: answer enrolled nodes only",
            "dhcp-ignore=tag:!known",
        ]
    else:
        lines.append("dhcp-authoritative")
    if settings.log_dhcp:
        lines.append("log-dhcp")
    return lines


def _ipv6_lines(settings: BootSettings) -> list[str]:
    if not settings.ipv6_ra:
        return []
    return [
        "# iPXE waits ~13 s for a router advertisement when none comes",
        "enable-ra",
        f"dhcp-range=::,constructor:{settings.interface},ra-stateless",
    ]


def _boot_lines(settings: BootSettings) -> list[str]:
    http_script = f"{settings.http_url}/boot/{BOOT_SCRIPT}"
    tftp_script = f"tftp://{settings.address}/{TFTP_BOOT_SCRIPT}"
    return [
        "dhcp-match=set:ipxe,175",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
        "# dhcp-boot lines are evaluated last to first: the most specific comes last",
        f"dhcp-boot=tag:!ipxe,{settings.bios_bootfile}",
        f"dhcp-boot=tag:!ipxe,tag:efi64,{settings.uefi_bootfile}",
        f"dhcp-boot=tag:ipxe,{http_script}",
        f"dhcp-boot=tag:ipxe,tag:{TAG_TFTP},{tftp_script}",
        f"dhcp-boot=tag:{TAG_TFTP},tag:!efi64,{PXELINUX_BOOTFILE}",
    ]


def render_config(settings: BootSettings, layout: BootLayout, *, user: str, group: str) -> str:
    """dnsmasq's main configuration file for ``settings``.

    ``user`` and ``group`` are what dnsmasq runs as once it has bound its sockets.
    When they are metalcast's own, dnsmasq keeps the parent-death signal the
    supervisor gave it (any change of user or group clears it).
    dnsmasq logs to standard error (``log-facility=-``), which the supervisor sends
    to ``layout.dnsmasq_log`` together with its start-up errors.
    """
    lines: list[str] = [
        "# generated by metalcast from its [boot] settings; changes are overwritten",
        "port=0",
        f"interface={settings.interface}",
        "except-interface=lo",
        f"listen-address={settings.address}",
        "bind-interfaces",
        f"user={user}",
        f"group={group}",
        "pid-file=",
        "log-facility=-",
        *_dhcp_lines(settings, layout),
        *_ipv6_lines(settings),
        "enable-tftp",
        f"tftp-root={layout.boot_dir}",
        *_boot_lines(settings),
    ]
    return "\n".join(lines) + "\n"


def command(conf_file: str, *, binary: str = "dnsmasq", netns: str | None = None) -> Sequence[str]:
    """The command line that runs dnsmasq in the foreground (inside ``netns``)."""
    argv = [binary, "--keep-in-foreground", f"--conf-file={conf_file}"]
    return ["ip", "netns", "exec", netns, *argv] if netns else argv


def dhcp_port_in_use(interface: str, *, netns: str | None = None) -> bool:
    """Whether something on this host already listens for DHCP on ``interface``
    (another DHCP server, or a dnsmasq left over from an earlier run).

    dnsmasq binds its DHCP socket with SO_REUSEADDR, so a second one would start
    and fight the first; this probe binds without it and so finds either.
    """

    def probe() -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
                sock.bind(("0.0.0.0", 67))
            except OSError as exc:
                return exc.errno == errno.EADDRINUSE
            return False

    return run_in_netns(netns, probe) if netns else probe()
