"""Network namespaces, bridges, veth pairs and taps for the boot network.

Every function is idempotent (creating what exists or deleting what is gone is not
an error) and works inside a named namespace, so nothing here touches the
namespace metalcast itself runs in.  Links are made with ``ip`` (iproute2);
sockets are opened inside a namespace by a short-lived thread that joins it with
``setns(2)`` (Python 3.11 has no ``os.setns``).
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from metalcast.boot.errors import NetnsError

NETNS_DIR = Path("/run/netns")
_CLONE_NEWNET = 0x40000000
_IP_TIMEOUT = 30.0

T = TypeVar("T")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["ip", *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_IP_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(command, str(exc)) from exc
    if check and done.returncode != 0:
        raise NetnsError(command, done.stderr.strip() or f"exit {done.returncode}")
    return done


def netns_exists(name: str) -> bool:
    """Whether ``ip netns`` knows a namespace called ``name``."""
    return (NETNS_DIR / name).exists()


def create_netns(name: str) -> None:
    """Create namespace ``name`` (with its loopback up) unless it exists.

    Raises:
        NetnsError: ``ip netns add`` failed.
    """
    if not netns_exists(name):
        _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")


def delete_netns(name: str) -> None:
    """Delete namespace ``name`` if it exists.  Its links go once no process is
    left inside it.

    Raises:
        NetnsError: ``ip netns delete`` failed for another reason than absence.
    """
    if netns_exists(name):
        done = _ip("netns", "delete", name, check=False)
        if done.returncode != 0 and netns_exists(name):
            raise NetnsError(["ip", "netns", "delete", name], done.stderr.strip())


def link_exists(netns: str, name: str) -> bool:
    """Whether namespace ``netns`` has a link called ``name``."""
    return _ip("-n", netns, "link", "show", "dev", name, check=False).returncode == 0


def addresses(netns: str, dev: str) -> set[str]:
    """The addresses of ``dev`` in ``netns`` as ``address/prefix`` strings.

    Raises:
        NetnsError: the link does not exist.
    """
    shown = json.loads(_ip("-j", "-n", netns, "addr", "show", "dev", dev).stdout or "[]")
    return {
        f"{info['local']}/{info['prefixlen']}"
        for link in shown
        for info in link.get("addr_info", [])
    }


def add_address(netns: str, dev: str, *, cidr: str) -> None:
    """Give ``dev`` the address ``cidr`` (``192.168.77.1/24``, ``fd77::1/64``) unless
    it has it.  IPv6 addresses skip duplicate detection, to be usable at once.

    Raises:
        NetnsError: ``ip addr add`` failed.
    """
    if cidr in addresses(netns, dev):
        return
    extra = ["nodad"] if ":" in cidr else []
    _ip("-n", netns, "addr", "add", cidr, "dev", dev, *extra)


def add_bridge(netns: str, name: str, *, cidrs: tuple[str, ...] = ()) -> None:
    """Create bridge ``name`` in ``netns`` (up, with ``cidrs``) unless it exists.

    Raises:
        NetnsError: an ``ip`` command failed.
    """
    if not link_exists(netns, name):
        _ip("-n", netns, "link", "add", name, "type", "bridge")
    for cidr in cidrs:
        add_address(netns, name, cidr=cidr)
    _ip("-n", netns, "link", "set", name, "up")


def add_veth(
    netns: str,
    name: str,
    *,
    peer_netns: str,
    peer_name: str,
    bridge: str | None = None,
    peer_mac: str | None = None,
) -> None:
    """Create a veth pair: ``name`` in ``netns`` (enslaved to ``bridge``) and
    ``peer_name`` in ``peer_netns`` (with ``peer_mac``), both up.

    Raises:
        NetnsError: an ``ip`` command failed.
    """
    if not link_exists(netns, name):
        _ip("-n", netns, "link", "add", name, "type", "veth",
            "peer", "name", peer_name, "netns", peer_netns)  # fmt: skip
    if peer_mac is not None:
        _ip("-n", peer_netns, "link", "set", peer_name, "address", peer_mac)
    if bridge is not None:
        _ip("-n", netns, "link", "set", name, "master", bridge)
    _ip("-n", netns, "link", "set", name, "up")
    _ip("-n", peer_netns, "link", "set", peer_name, "up")


def add_tap(netns: str, name: str, *, bridge: str) -> None:
    """Create tap ``name`` in ``netns``, enslaved to ``bridge`` and up (for a VM
    started inside the namespace).

    Raises:
        NetnsError: an ``ip`` command failed.
    """
    if not link_exists(netns, name):
        _ip("-n", netns, "tuntap", "add", "dev", name, "mode", "tap")
    _ip("-n", netns, "link", "set", name, "master", bridge)
    _ip("-n", netns, "link", "set", name, "up")


def delete_link(netns: str, name: str) -> None:
    """Delete link ``name`` from ``netns`` if it is there (a veth takes its peer along).

    Raises:
        NetnsError: ``ip link delete`` failed for another reason than absence.
    """
    if netns_exists(netns) and link_exists(netns, name):
        _ip("-n", netns, "link", "delete", name)


@functools.cache
def _setns() -> Callable[[int, int], int]:
    func: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).setns
    return func


def _enter(fd: int, name: str) -> None:
    if _setns()(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(["setns", name], os.strerror(err))


def _open_netns(name: str) -> int:
    try:
        return os.open(NETNS_DIR / name, os.O_RDONLY)
    except OSError as exc:
        raise NetnsError(["setns", name], f"no network namespace {name}: {exc}") from exc


def run_in_netns(name: str, func: Callable[[], T]) -> T:
    """Call ``func`` in a thread that has joined network namespace ``name``.

    Sockets ``func`` creates belong to that namespace for their whole life; the rest
    of the process stays where it is.

    Raises:
        NetnsError: the namespace does not exist or cannot be joined (needs
            CAP_SYS_ADMIN).
        Exception: whatever ``func`` raises.
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = _open_netns(name)
            try:
                _enter(target, name)
            finally:
                os.close(target)
            try:
                outcome.append(func())
            finally:
                _enter(own, "<own>")
        except BaseException as exc:  # handed over to the calling thread
            failure.append(exc)
        finally:
            os.close(own)

    thread = threading.Thread(target=work, name=f"netns-{name}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening.

    Raises:
        OSError: the address is not local or the port is taken.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def socket_in_netns(name: str | None, host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` inside namespace ``name`` (None:
    this process's namespace), ready for ``uvicorn.Server.serve(sockets=[...])``.

    Raises:
        NetnsError: the namespace cannot be joined.
        OSError: the address is not in the namespace or the port is taken.
    """
    if name is None:
        return listening_socket(host, port)
    return run_in_netns(name, lambda: listening_socket(host, port))
