"""Image formats: detecting them by their magic, checking and converting qcow2 to raw.

The format is read from the image's first bytes, never guessed by ``qemu-img`` (its
probing of untrusted images is how a crafted image reads the host's files), and
``qemu-img`` always runs with ``-f``.  A qcow2 image with a backing file or an
external data file is refused: converting it would copy another file of this host.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metalcast import cpus
from metalcast.images.download import file_blocks
from metalcast.images.errors import ImageProcessingError, UnsupportedImage
from metalcast.images.source import DiskFormat, display_url

LOG = logging.getLogger(__name__)

QCOW2_MAGIC = b"QFI\xfb"
#: formats (and compressions) recognised only to be refused: (offset, magic, name)
_OTHER_MAGICS = (
    (0, b"QFI\x00", "qed"),
    (0, b"KDMV", "vmdk"),
    (0, b"# Disk DescriptorFile", "vmdk"),
    (0, b"vhdxfile", "vhdx"),
    (0, b"conectix", "vpc (vhd)"),
    (0x40, b"\x7f\x10\xda\xbe", "vdi"),
    (0, b"\x1f\x8b", "gzip-compressed"),
    (0, b"\xfd7zXZ\x00", "xz-compressed"),
    (0, b"\x28\xb5\x2f\xfd", "zstd-compressed"),
)
#: seconds ``qemu-img info`` may take on a (small) header
INFO_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class Qcow2Info:
    """What ``qemu-img info`` says about a qcow2 image that is safe to convert."""

    virtual_size: int


def detect_format(path: Path, *, declared: DiskFormat | None, url: str) -> DiskFormat:
    """The format of the image at ``path``, which must agree with ``declared``.

    Raises:
        UnsupportedImage: empty, another format (vmdk, vhd, a compressed file…), or
            not the format ``image_disk_format`` declared.
    """
    with path.open("rb") as fh:
        head = fh.read(512)
    if not head:
        raise UnsupportedImage(f"Image {display_url(url)} is empty", url=url)
    found = DiskFormat.QCOW2 if head.startswith(QCOW2_MAGIC) else DiskFormat.RAW
    other = next((name for at, magic, name in _OTHER_MAGICS if head[at:].startswith(magic)), None)
    if other is not None and found is DiskFormat.RAW:
        raise UnsupportedImage(
            f"Image {display_url(url)} is a {other} image: only raw and qcow2 images are supported",
            url=url,
        )
    if declared is not None and declared is not found:
        raise UnsupportedImage(
            f"Image {display_url(url)} is declared {declared} (image_disk_format) but is a "
            f"{found} image",
            url=url,
        )
    return found


def inspect_qcow2(path: Path, *, url: str) -> Qcow2Info:
    """Check with ``qemu-img info`` that ``path`` is a self-contained qcow2 image.

    Raises:
        UnsupportedImage: not qcow2, or it has a backing file or an external data file.
        ImageProcessingError: qemu-img is missing or fails.
    """
    output = _qemu_img("info", "-f", "qcow2", "--output=json", str(path), timeout=INFO_TIMEOUT)
    try:
        info: dict[str, Any] = json.loads(output)
    except ValueError as exc:
        raise ImageProcessingError(f"qemu-img info printed invalid JSON: {exc}") from None
    problem = _qcow2_problem(info)
    if problem:
        raise UnsupportedImage(f"Image {display_url(url)} is refused: {problem}", url=url)
    return Qcow2Info(virtual_size=int(info.get("virtual-size", 0)))


def _qcow2_problem(info: dict[str, Any]) -> str | None:
    if info.get("format") != "qcow2":
        return f"qemu-img reads it as {info.get('format')!r}, not qcow2"
    if info.get("backing-filename") or info.get("full-backing-filename"):
        return f"it has a backing file ({info.get('backing-filename')})"
    specific = info.get("format-specific") or {}
    data = (specific.get("data") or {}) if isinstance(specific, dict) else {}
    if not isinstance(data, dict):
        return None
    if data.get("data-file"):
        return f"it has an external data file ({data.get('data-file')})"
    if data.get("corrupt"):
        return "qemu-img marks it corrupt"
    return None


def convert_to_raw(source: Path, target: Path, *, url: str) -> None:
    """Write the qcow2 image ``source`` as the sparse raw image ``target``.

    Raises:
        ImageProcessingError: qemu-img is missing or fails (a corrupt image, disk full).
    """
    LOG.info("Converting %s from qcow2 to raw", display_url(url))
    _qemu_img("convert", "-f", "qcow2", "-O", "raw", "-S", "4k", str(source), str(target))


def sha256_of_file(path: Path) -> str:
    """The sha256 of a (sparse) file; its holes are hashed without being read."""
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        for block in file_blocks(fh, os.fstat(fh.fileno()).st_size):
            hasher.update(block)
    return hasher.hexdigest()


def _qemu_img(*args: str, timeout: float | None = None) -> str:
    try:
        done = subprocess.run(
            ["qemu-img", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            preexec_fn=cpus.child_setup(),  # conversions are long: every CPU
        )
    except FileNotFoundError:
        raise ImageProcessingError(
            "qemu-img is not installed: it is needed to convert qcow2 images (qemu-utils)"
        ) from None
    except subprocess.TimeoutExpired:
        raise ImageProcessingError(f"qemu-img {args[0]} did not finish in {timeout}s") from None
    if done.returncode != 0:
        raise ImageProcessingError(
            f"qemu-img {args[0]} failed (exit {done.returncode}): {done.stderr.strip()}"
        )
    return done.stdout
