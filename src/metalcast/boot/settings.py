"""Settings of the network-boot services (``[boot]`` in the TOML file,
``METALCAST_BOOT__<KEY>`` in the environment).

This module imports nothing of metalcast so that :mod:`metalcast.config` can hold a
``boot: BootSettings`` area.  Paths left unset default to places in the state
directory; :class:`metalcast.boot.layout.BootLayout` resolves them.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: an interface or namespace name as ``ip`` accepts it (no spaces, no slashes)
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$"
_BOOTFILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class BootSettings(BaseModel):
    """Where and how metalcast answers DHCP, TFTP and boot HTTP requests."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: run dnsmasq and the boot HTTP server with the API (``metalcast server``), from
    #: the moment ``interface`` exists until it goes
    enabled: bool = True
    #: the provisioning network's name, for a machine whose conductors serve more
    #: than one (a conductor group each): its boot state lives in
    #: ``<state_dir>/boot-<network>`` (``<state_dir>/boot`` for the default, ""), and
    #: of the conductors of one database that share a name, one at a time runs the
    #: services (PostgreSQL: :mod:`metalcast.db.leadership`)
    network: str = Field(default="", max_length=40, pattern=r"^$|^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    #: the provisioning network's interface (inside ``netns`` when that is set); the
    #: default is the bridge ``metalcast lab up`` creates
    interface: str = Field(default="mcbr0", max_length=15, pattern=_NAME)
    #: network namespace holding ``interface`` (``ip netns`` name); None or "": this
    #: one (real hardware).  The default is the lab's
    netns: str | None = Field(default="metalcast-lab", pattern=_NAME)
    #: this host's IPv4 address on ``interface``: TFTP, HTTP and the nodes' API
    address: IPv4Address = IPv4Address("192.168.77.1")
    http_port: int = Field(default=8080, ge=1, le=65535)
    dhcp_range_start: IPv4Address = IPv4Address("192.168.77.100")
    dhcp_range_end: IPv4Address = IPv4Address("192.168.77.200")
    #: None: dnsmasq takes the netmask of ``interface``
    dhcp_netmask: IPv4Address | None = None
    #: DHCP lease time in seconds (dnsmasq's minimum is two minutes)
    lease_time: int = Field(default=3600, ge=120)
    #: answer DHCP only for MACs of enrolled nodes being provisioned, so that
    #: metalcast can share a network with another DHCP server
    ignore_unknown: bool = False
    #: auto-discovery: a machine whose MAC no node has that network-boots here gets
    #: the deploy ramdisk (instead of its local disk), whose agent reports its
    #: inventory to ``POST /v1/continue_inspection``, and is enrolled as a node
    #: (``[discovery]`` says how); with ``ignore_unknown`` only machines the other
    #: DHCP server sends here are discovered (docs/discovery.md)
    discovery: bool = False
    #: send IPv6 router advertisements (stateless) on ``interface``: iPXE waits
    #: about 13 s for one otherwise; needs an IPv6 address on the interface
    ipv6_ra: bool = True
    #: TFTP root and HTTP /boot root; None: <state_dir>/boot[-<network>]/files
    boot_dir: Path | None = None
    #: served at /images/ (Range requests supported); None: <state_dir>/images
    images_dir: Path | None = None
    #: deploy kernel and ramdisk; None: <state_dir>/ramdisk/deploy.{kernel,initramfs}
    kernel: Path | None = None
    ramdisk: Path | None = None
    #: where the iPXE binaries are (Debian package ``ipxe``)
    ipxe_dir: Path = Path("/usr/lib/ipxe")
    bios_bootfile: str = "undionly.kpxe"
    #: ``snponly.efi`` drives only the NIC the firmware booted from (Ironic's default);
    #: ``ipxe.efi`` brings its own drivers for every NIC
    uefi_bootfile: str = "snponly.efi"
    #: PXELINUX for BIOS machines of nodes with the ``pxe`` boot interface (Debian
    #: packages ``pxelinux``: pxelinux.0, and ``syslinux-common``: ldlinux.c32)
    pxelinux_dir: Path = Path("/usr/lib/PXELINUX")
    syslinux_modules_dir: Path = Path("/usr/lib/syslinux/modules/bios")
    #: kernel console of the deploy ramdisk; empty: none
    console: str = "ttyS0"
    #: more kernel parameters for every deploy ramdisk, space separated
    extra_kernel_params: str = ""
    #: the API the boot HTTP server relays /v1/lookup and /v1/heartbeat to;
    #: None: metalcast's own API on loopback
    api_url: str | None = None
    #: the API URL given to the nodes' agents; None: the boot HTTP server
    #: (https://<address>:<https_port> with TLS, else http://<address>:<http_port>),
    #: which relays to ``api_url``
    node_api_url: str | None = None
    #: serve images, config drives and the agents' API relay over HTTPS on
    #: ``https_port`` with this certificate chain and key (PEM); boot files stay on
    #: plain ``http_port``, as network-boot firmware cannot verify a certificate.
    #: None: the API's (``api.tls_cert_file``/``api.tls_key_file``), if it has one
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    https_port: int = Field(default=8443, ge=1, le=65535)
    #: the CA certificate(s) the nodes' agents verify this server with, given to them
    #: in a second initrd beside the deploy ramdisk; None: the server certificate
    #: itself (then a new certificate needs the nodes to boot again)
    tls_ca_file: Path | None = None
    #: CA certificate(s) the relay verifies an https ``api_url`` with; None: the
    #: certificate of metalcast's own API when ``api_url`` is unset, else the
    #: system's trust store
    api_ca_file: Path | None = None
    dnsmasq_binary: str = "dnsmasq"
    #: user dnsmasq runs as (with that user's group); None: metalcast's own user and
    #: group.  dnsmasq's own default, nobody/dip, cannot read a private state
    #: directory, and changing user or group clears the parent-death signal that
    #: stops dnsmasq should metalcast be killed
    dnsmasq_user: str | None = None
    #: log every DHCP exchange in detail (dnsmasq's log-dhcp)
    log_dhcp: bool = True

    @field_validator("netns", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        """``METALCAST_BOOT__NETNS=`` (as README says for real hardware) means none."""
        return None if value == "" else value

    @field_validator("bios_bootfile", "uefi_bootfile")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if not _BOOTFILE.match(value):
            raise ValueError(f"{value!r} is not a plain file name")
        return value

    @field_validator("extra_kernel_params", "console")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\n" in value or "\r" in value:
            raise ValueError("must be a single line")
        return value.strip()

    @model_validator(mode="after")
    def _range_in_order(self) -> BootSettings:
        if self.dhcp_range_start > self.dhcp_range_end:
            raise ValueError(
                f"dhcp_range_start {self.dhcp_range_start} is after "
                f"dhcp_range_end {self.dhcp_range_end}"
            )
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> BootSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("set both tls_cert_file and tls_key_file, or neither")
        if self.tls and self.https_port == self.http_port:
            raise ValueError(f"https_port and http_port are both {self.http_port}")
        return self

    @property
    def network_label(self) -> str:
        """The network's name in messages: ``'west'``, or ``the default network``."""
        return f"network {self.network!r}" if self.network else "the default network"

    @property
    def tls(self) -> bool:
        """Whether the boot HTTP server also serves HTTPS (on ``https_port``)."""
        return self.tls_cert_file is not None

    @property
    def http_url(self) -> str:
        """Base URL of the boot HTTP server's plain port as the nodes reach it: boot
        files, and everything else when there is no TLS."""
        return f"http://{self.address}:{self.http_port}"

    @property
    def https_url(self) -> str:
        """Base URL of the boot HTTP server's TLS port as the nodes reach it."""
        return f"https://{self.address}:{self.https_port}"

    @property
    def agent_url(self) -> str:
        """Where the agents reach the relay and the images: HTTPS when there is TLS."""
        return self.https_url if self.tls else self.http_url
