"""What an image source may make the server read: local files and internal hosts.

Image URLs, checksum file URLs and config drive URLs come from ``instance_info`` and
provision requests, so from whoever may update or deploy a node.  Two rules hold
whoever set them:

- **Local files** (``file://`` URLs, absolute paths) only if a *system administrator*
  set them, and only inside ``images.file_roots`` once symlinks and ``..`` are
  resolved; never inside a private path (the state directory with the secret key
  and the database, the image cache, the config drives), even when a root would
  include one (:class:`LocalFiles`).  The check is repeated on the file actually
  opened, so a symlink swapped in between does not escape.
- **Internal hosts**: an http(s) URL set by anyone else may not reach a loopback,
  link-local (``169.254.169.254``, ``fe80::/10``), unspecified, multicast or reserved
  address, unless it is in ``images.allowed_internal_networks``.  Every address a
  name resolves to is checked, at each connection the download makes (redirects
  included) and to the very address then connected to, so a name that changes its
  answer between check and use gains nothing (:class:`AddressGuard`).

The API refuses what it can tell without a DNS lookup (:func:`literal_host_reason`);
the conductor enforces both rules when it fetches.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: "this network" (0.0.0.0/8): Linux connects to the local host for these
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
#: ``instance_info`` keys whose values the conductor fetches; the first three
#: describe the image, the last the config drive
FETCHED_KEYS = ("image_source", "image_checksum", "image_os_hash_value", "configdrive")
IMAGE_KEYS = frozenset(FETCHED_KEYS[:3])
TENANT_LOCAL_REFUSED = (
    "only system administrators may give a local file (file:// URL or path) as an "
    "image, checksum or config drive source"
)


class AccessRefused(Exception):
    """A source this rule does not allow; ``reason`` says which rule and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------- local files


@dataclass(frozen=True, slots=True)
class LocalFiles:
    """The directories local image files may be read from, and the private paths
    they may never lead into."""

    roots: tuple[Path, ...] = ()
    private: tuple[Path, ...] = ()

    def check(self, path: Path) -> Path:
        """``path`` resolved (symlinks, ``..``), if it may be read.

        Raises:
            AccessRefused: outside every root, or inside a private path.
        """
        resolved = path.resolve()
        if any(_within(resolved, private) for private in self.private):
            raise AccessRefused(
                "the server's own files (state directory, image cache, config drives) "
                "are never images"
            )
        if not any(_within(resolved, root) for root in self.roots):
            roots = ", ".join(str(r) for r in self.roots) or "none configured"
            raise AccessRefused(
                f"outside the directories images may be read from (images.file_roots: {roots})"
            )
        return resolved

    def open(self, path: Path) -> BinaryIO:
        """Open ``path`` for reading if :meth:`check` allows it, then check again
        the file actually opened (a symlink may have been swapped in meanwhile).

        Raises:
            AccessRefused: see :meth:`check`; not a regular file; missing.
            OSError: the file cannot be opened.
        """
        resolved = self.check(path)
        if not resolved.exists():
            raise AccessRefused("no such file")
        if not resolved.is_file():  # checked before opening: opening a FIFO blocks
            raise AccessRefused("not a regular file")
        handle = resolved.open("rb")
        try:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise AccessRefused("not a regular file")
            self.check(Path(os.readlink(f"/proc/self/fd/{handle.fileno()}")))
        except BaseException:
            handle.close()
            raise
        return handle


def _within(path: Path, directory: Path) -> bool:
    return path.is_relative_to(directory.resolve())


def is_local_source(value: object) -> bool:
    """Whether an ``instance_info`` value names a local file: a ``file://`` URL or an
    absolute path (what :func:`metalcast.images.source.parse_image_url` reads so)."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text.startswith("/") or urlsplit(text).scheme.lower() == "file"


# -------------------------------------------------------------------- internal hosts


def internal_kind(address: IPAddress) -> str | None:
    """What makes ``address`` internal ("loopback", "link-local", ...), or None."""
    mapped = _embedded_ipv4(address)
    if mapped is not None:
        return internal_kind(mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified or address in _THIS_NETWORK),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
    )
    return next((kind for kind, hit in checks if hit), None)


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """CIDR networks (``images.allowed_internal_networks``, validated by the settings)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _refusal(host: str, kind: str) -> AccessRefused:
    return AccessRefused(
        f"{host} is a {kind} address: image and config drive URLs set by "
        "non-administrators may not reach loopback, link-local or unspecified addresses"
    )


def literal_host_reason(url: str, allowed: tuple[Network, ...]) -> str | None:
    """Why a non-administrator may not give ``url``, judged without DNS: its host is
    a loopback name or an internal address literal.  None when nothing is wrong so far
    (the conductor checks the addresses a name resolves to when it fetches)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").rstrip(".").lower()
    except ValueError:
        return None  # not a URL: the source's own parsing says what is wrong
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return _refusal(host, "loopback").reason
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    kind = internal_kind(address)
    if kind is None or any(address in network for network in allowed):
        return None
    return _refusal(host, kind).reason


@dataclass(frozen=True, slots=True)
class AddressGuard:
    """Resolves a host and refuses it if any of its addresses is internal (and not in
    ``allowed``)."""

    allowed: tuple[Network, ...] = ()

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``, all of them acceptable.

        Raises:
            AccessRefused: one of them is internal.
            OSError: the name does not resolve.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            kind = internal_kind(address)
            if kind is not None and not any(address in net for net in self.allowed):
                raise _refusal(host, kind)
        return addresses


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's network backend, connecting only to addresses the guard accepts,
    and to exactly the address it checked (TLS still verifies the host name)."""

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._guard.resolve(host, port)
        except AccessRefused as exc:
            raise httpcore.ConnectError(exc.reason) from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        failure: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # getaddrinfo never answers with no address
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("image downloads do not use unix sockets")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a :class:`GuardedBackend`.  Environment proxies are not
    used (the guard must see the addresses really connected to)."""

    def __init__(self, *, verify: bool | ssl.SSLContext, guard: AddressGuard) -> None:
        super().__init__(verify=verify, trust_env=False)
        context = verify if isinstance(verify, ssl.SSLContext) else None
        # httpx takes no network backend: give its pool one, with the same TLS context
        self._pool = httpcore.ConnectionPool(
            ssl_context=context or httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=GuardedBackend(guard),
        )
