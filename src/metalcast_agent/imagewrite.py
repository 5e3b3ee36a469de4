"""``write_image``: stream a raw image over HTTP onto the root disk.

The image goes through in 1 MiB blocks: every block is hashed, non-zero blocks are
written, and an all-zero block is written only where the disk is not already zero, so
the holes of an image never allocate anything on a fresh (thin or sparse) disk. At
most two blocks are in memory; nothing is staged on disk. At the end the device is
fsync'ed and the checksum compared. Raises
:class:`~metalcast_agent.errors.DownloadError`,
:class:`~metalcast_agent.errors.ChecksumMismatch` and
:class:`~metalcast_agent.errors.DiskError`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from metalcast_agent.client import Readable, open_download
from metalcast_agent.commands import CommandContext, arg_int, arg_mapping, arg_str
from metalcast_agent.disks import device_size, flush_device, open_device, reread_partitions
from metalcast_agent.errors import ChecksumMismatch, DiskError, DownloadError, InvalidArguments
from metalcast_agent.hardware import Disk, list_disks
from metalcast_agent.hints import format_size, select_root_device, too_small
from metalcast_agent.log import get_logger, redact_url

BLOCK = 1024**2
CHECKSUM_ALGORITHMS = ("sha256", "sha512")
_WHAT = "Image download"
_ZERO = bytes(BLOCK)
_log = get_logger("imagewrite")


@dataclass(frozen=True, slots=True)
class Source:
    """Where the bytes come from, and how errors name it."""

    stream: Readable
    url: str  # already redacted
    what: str  # "Image download", "Config drive download"
    total: int | None


@dataclass(frozen=True, slots=True)
class Target:
    """Where the bytes go: ``capacity`` bytes of ``fd`` from ``offset``."""

    fd: int
    name: str
    offset: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Streamed:
    """What :func:`stream_to_device` did."""

    size: int
    written: int
    checksum: str


def new_digest(algorithm: str) -> hashlib._Hash:
    """A hash object for ``sha256`` or ``sha512``."""
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise InvalidArguments(
            f"checksum_algo {algorithm!r} is not supported; use {' or '.join(CHECKSUM_ALGORITHMS)}"
        )
    return hashlib.new(algorithm)


def stream_to_device(
    source: Source,
    target: Target,
    *,
    algorithm: str,
    progress: Callable[[int, int | None], None],
) -> Streamed:
    """Copy ``source`` onto ``target`` block by block; the size, bytes written and hash."""
    digest = new_digest(algorithm)
    block, scratch = bytearray(BLOCK), bytearray(BLOCK)
    done = written = 0
    while count := read_block(source, block):
        if done + count > target.capacity:
            raise DiskError(
                f"Disk {target.name} ({format_size(target.capacity)}) is too small for the "
                f"image (more than {format_size(done + count)})"
            )
        data = block if count == BLOCK else memoryview(block)[:count]
        digest.update(data)
        written += _store(target, data, done, scratch)
        done += count
        progress(done, source.total)
    return Streamed(done, written, digest.hexdigest())


def read_block(source: Source, block: bytearray) -> int:
    """Fill ``block`` from the stream; fewer bytes only at its end. Raises DownloadError."""
    view = memoryview(block)
    filled = 0
    try:
        while filled < len(block):
            count = source.stream.readinto(view[filled:])
            if not count:
                break
            filled += count
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{source.what} from {source.url} failed: {_reason(exc)}") from None
    return filled


def _reason(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return f"connection closed {exc.expected} bytes before the end"
    return str(exc) or type(exc).__name__


def _store(target: Target, data: bytearray | memoryview, done: int, scratch: bytearray) -> int:
    """Write ``data`` at ``done`` unless it is zeros the disk already has; bytes written."""
    offset = target.offset + done
    try:
        if _is_zero(data) and _disk_is_zero(target.fd, offset, len(data), scratch):
            return 0
        view = memoryview(data)
        position = 0
        while position < len(view):
            position += os.pwrite(target.fd, view[position:], offset + position)
    except OSError as exc:
        raise DiskError(f"Writing {target.name} at byte {offset} failed: {exc.strerror}") from None
    return len(data)


def _is_zero(data: bytearray | memoryview) -> bool:
    if isinstance(data, bytearray):
        return data == _ZERO  # memcmp: far faster than comparing memoryviews
    return bytes(data) == _ZERO[: len(data)]


def _disk_is_zero(fd: int, offset: int, length: int, scratch: bytearray) -> bool:
    view = memoryview(scratch)[:length]
    count = os.preadv(fd, [view], offset)
    if count != length:
        return False
    return _is_zero(scratch if length == BLOCK else view)


def check_checksum(streamed: Streamed, expected: str, *, algorithm: str, url: str) -> None:
    """Raise ChecksumMismatch unless ``streamed`` hashed to ``expected``."""
    if streamed.checksum != expected.strip().lower():
        raise ChecksumMismatch(
            f"Checksum mismatch for {url}: expected {algorithm} {expected.strip().lower()}, "
            f"got {streamed.checksum}"
        )


def check_length(streamed: int, expected: int | None, *, what: str, url: str) -> None:
    """Raise DownloadError when ``expected`` bytes were announced and others came."""
    if expected is not None and streamed != expected:
        raise DownloadError(f"{what} from {url} failed: got {streamed} bytes, expected {expected}")


@dataclass(frozen=True, slots=True)
class ImageArgs:
    """The arguments of ``write_image``."""

    url: str
    algorithm: str
    checksum: str
    size: int | None
    root_device: dict[str, object] | None

    @classmethod
    def parse(cls, args: Mapping[str, object]) -> ImageArgs:
        """Validate ``args``; raises InvalidArguments naming the bad argument."""
        command = "write_image"
        algorithm = arg_str(args, "checksum_algo", command=command)
        new_digest(algorithm)
        return cls(
            url=arg_str(args, "url", command=command),
            algorithm=algorithm,
            checksum=arg_str(args, "checksum", command=command),
            size=arg_int(args, "size", command=command),
            root_device=arg_mapping(args, "root_device", command=command),
        )


def write_image(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``write_image`` command of docs/agent-protocol.md."""
    spec = ImageArgs.parse(args)
    url = redact_url(spec.url)
    started = time.monotonic()
    with open_download(spec.url, what=_WHAT) as download:
        size = _image_size(spec.size, download.length, url=url)
        disk = select_root_device(list_disks(ctx.env), spec.root_device, image_size=size)
        _log.info("write_image: %s chosen (%s)", disk.name, format_size(disk.size))
        source = Source(download.stream, url, _WHAT, size)
        streamed = _write_disk(ctx, disk, source, algorithm=spec.algorithm)
    check_length(streamed.size, size, what=_WHAT, url=url)
    check_checksum(streamed, spec.checksum, algorithm=spec.algorithm, url=url)
    seconds = time.monotonic() - started
    _log.info(
        "write_image: %s bytes to %s (%s written) in %.1f s, %s verified",
        streamed.size,
        disk.name,
        streamed.written,
        seconds,
        spec.algorithm,
    )
    return {
        "device": disk.name,
        "bytes": streamed.size,
        "written": streamed.written,
        "seconds": round(seconds, 3),
        "checksum": streamed.checksum,
    }


def _image_size(size: int | None, length: int | None, *, url: str) -> int | None:
    """The image size: the argument, else the Content-Length; both must agree."""
    if size is not None and length is not None and size != length:
        raise DownloadError(
            f"{_WHAT} from {url} failed: the server sends {length} bytes, the image is {size}"
        )
    return size if size is not None else length


def _write_disk(ctx: CommandContext, disk: Disk, source: Source, *, algorithm: str) -> Streamed:
    with open_device(ctx.env.device_path(disk.name), name=disk.name) as fd:
        capacity = device_size(fd)
        if source.total is not None and source.total > capacity:
            raise too_small(disk, source.total)
        target = Target(fd, disk.name, 0, capacity)
        streamed = stream_to_device(
            source, target, algorithm=algorithm, progress=ctx.report_progress
        )
        flush_device(fd, name=disk.name)
        reread_partitions(fd, name=disk.name)
    return streamed
