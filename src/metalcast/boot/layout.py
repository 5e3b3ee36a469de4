"""Where the boot services keep their files, and how they replace them atomically.

Every file a client may read while it changes (TFTP/HTTP files, dnsmasq host
entries) is written to a dot-named temporary file in the same directory and renamed
over the old one.  dnsmasq ignores dot files in its hosts directory and reads a file
when it is renamed into place (inotify ``IN_MOVED_TO``), so it never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from metalcast.boot.settings import BootSettings


@dataclass(frozen=True, slots=True)
class BootLayout:
    """The resolved paths of the boot services."""

    #: dnsmasq's config, log and leases live here
    state_dir: Path
    #: TFTP root, served over HTTP at /boot/
    boot_dir: Path
    #: dnsmasq's dhcp-hostsdir: one file of host entries per node
    hosts_dir: Path
    images_dir: Path
    kernel: Path
    ramdisk: Path

    @classmethod
    def from_settings(cls, settings: BootSettings, *, state_dir: Path) -> BootLayout:
        """Resolve the paths of ``settings``, defaulting into ``state_dir``."""
        own = state_dir / (f"boot-{settings.network}" if settings.network else "boot")
        ramdisk_dir = state_dir / "ramdisk"
        return cls(
            state_dir=own,
            boot_dir=settings.boot_dir or own / "files",
            hosts_dir=own / "dhcp-hosts",
            images_dir=settings.images_dir or state_dir / "images",
            kernel=settings.kernel or ramdisk_dir / "deploy.kernel",
            ramdisk=settings.ramdisk or ramdisk_dir / "deploy.initramfs",
        )

    @property
    def dnsmasq_conf(self) -> Path:
        return self.state_dir / "dnsmasq.conf"

    @property
    def dnsmasq_log(self) -> Path:
        return self.state_dir / "dnsmasq.log"

    @property
    def leases(self) -> Path:
        return self.state_dir / "dnsmasq.leases"

    @property
    def leader_file(self) -> Path:
        """Which process runs the services now (JSON), for operators and followers."""
        return self.state_dir / "leader.json"

    @property
    def restart_request(self) -> Path:
        """A token a process that does not run dnsmasq writes when dnsmasq must forget
        host entries; the one that runs it restarts it when the token changes."""
        return self.state_dir / "dnsmasq.restart"

    @property
    def nodes_dir(self) -> Path:
        """Per-node scripts and per-MAC links (``/boot/nodes/`` over HTTP)."""
        return self.boot_dir / "nodes"

    def make_dirs(self) -> None:
        """Create every directory of the layout (readable by dnsmasq and TFTP)."""
        for path in (self.state_dir, self.boot_dir, self.hosts_dir, self.nodes_dir):
            path.mkdir(parents=True, exist_ok=True)


def _temporary_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` in one rename: readers see the old or the new file.

    Raises:
        OSError: the directory is missing or not writable.
    """
    tmp = _temporary_sibling(path)
    try:
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_atomic(path: Path, target: Path | str) -> None:
    """Make ``path`` a symlink to ``target``, replacing what was there in one rename.

    Raises:
        OSError: the directory is missing or not writable.
    """
    if path.is_symlink() and os.readlink(path) == str(target):
        return
    tmp = _temporary_sibling(path)
    try:
        tmp.symlink_to(target)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def copy_if_changed(source: Path, path: Path) -> bool:
    """Copy ``source`` to ``path`` atomically unless it holds the same bytes already.

    Returns whether ``path`` changed.

    Raises:
        OSError: ``source`` is unreadable or ``path`` unwritable.
    """
    data = source.read_bytes()
    with contextlib.suppress(FileNotFoundError):
        if not path.is_symlink() and path.read_bytes() == data:
            return False
    write_atomic(path, data)
    return True
