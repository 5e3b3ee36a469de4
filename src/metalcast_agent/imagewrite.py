"""``write_image``: stream a raw image over HTTP onto the root disk.

The image goes through in 1 MiB blocks and three threads, so that the network, the
checksum and the disk work at the same time: the command's thread reads blocks from
the connection, a hashing thread feeds them to the checksum, a writing thread writes
them. Non-zero blocks are written; an all-zero block is written only where the disk is
not already zero, so the holes of an image never allocate anything on a fresh (thin
or sparse) disk. At most :data:`DEPTH` blocks are in memory; nothing is staged on
disk. Blocks are page-aligned (anonymous ``mmap``) so that whole blocks go to the
disk with ``O_DIRECT``: no copy into the page cache and no write-back work on the
machine's CPU (under QEMU's TCG that alone is 1.2 GiB/s against 0.1 GiB/s); a ragged
tail, or a device that refuses ``O_DIRECT``, goes through the page cache. At the end
the device is fsync'ed and the checksum compared. Raises
:class:`~metalcast_agent.errors.DownloadError`,
:class:`~metalcast_agent.errors.ChecksumMismatch` and
:class:`~metalcast_agent.errors.DiskError`.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import mmap
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from metalcast_agent import raid
from metalcast_agent.client import Readable
from metalcast_agent.commands import CommandContext, arg_int, arg_mapping, arg_str
from metalcast_agent.disks import (
    device_size,
    flush_device,
    open_device,
    open_direct,
    reread_partitions,
)
from metalcast_agent.errors import ChecksumMismatch, DiskError, DownloadError, InvalidArguments
from metalcast_agent.hardware import list_disks
from metalcast_agent.hints import format_size, select_root_device, too_small
from metalcast_agent.log import get_logger, redact_url
from metalcast_agent.protocol import Disk

BLOCK = 1024**2
#: blocks in flight between the reading, hashing and writing threads
DEPTH = 4
#: offsets and lengths written with O_DIRECT are multiples of this (4Kn disks too)
DIRECT_ALIGN = 4096
CHECKSUM_ALGORITHMS = ("sha256", "sha512")
_WHAT = "Image download"
_ZERO = bytes(BLOCK)
_PREFIX = 4096  # compared first: most data blocks differ from zeros early

#: a block of the stream: page-aligned memory, or any writable buffer
Buffer = bytearray | mmap.mmap
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
    """Where the bytes go: ``capacity`` bytes of ``fd`` from ``offset``; ``direct``,
    when there is one, an ``O_DIRECT`` descriptor of the same device."""

    fd: int
    name: str
    offset: int
    capacity: int
    direct: int | None = None


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
    """Copy ``source`` onto ``target`` block by block; the size, bytes written and hash.

    The calling thread reads; a hashing and a writing thread follow it, at most
    :data:`DEPTH` blocks behind. A failure on either side stops both and is raised
    here once both threads have ended.
    """
    pipeline = _Pipeline(target, new_digest(algorithm), progress, source.total)
    done = 0
    try:
        while not pipeline.failed():
            block = pipeline.free.get()
            if block is None:  # the writer failed and let go of its blocks
                break
            count = read_block(source, block)
            if not count:
                pipeline.free.put(block)
                break
            if done + count > target.capacity:
                raise DiskError(
                    f"Disk {target.name} ({format_size(target.capacity)}) is too small for "
                    f"the image (more than {format_size(done + count)})"
                )
            pipeline.hashing.put((block, count, done))
            done += count
    finally:
        written = pipeline.finish()
    return Streamed(done, written, pipeline.digest.hexdigest())


_Item = tuple[Buffer, int, int]  # a block, how many of its bytes count, its position


_T = TypeVar("_T")


class _Channel(Generic[_T]):
    """A FIFO between two threads: a deque and a condition (``queue.Queue``'s size
    limits and task accounting are not needed, nor its modules in the ramdisk)."""

    def __init__(self) -> None:
        self._items: deque[_T] = deque()
        self._ready = threading.Condition(threading.Lock())

    def put(self, item: _T) -> None:
        with self._ready:
            self._items.append(item)
            self._ready.notify()

    def get(self) -> _T:
        with self._ready:
            while not self._items:
                self._ready.wait()
            return self._items.popleft()


class _Pipeline:
    """The hashing and writing threads of :func:`stream_to_device`, and their blocks.

    A block goes free → (read) → hashing → writing → free; ``None`` on a channel
    means "no more". After a write fails, the writer keeps taking blocks but only
    hands them back, and puts ``None`` on ``free`` so that a reader waiting for a
    block wakes up.
    """

    def __init__(
        self,
        target: Target,
        digest: hashlib._Hash,
        progress: Callable[[int, int | None], None],
        total: int | None,
    ) -> None:
        self.target, self.digest, self._progress, self._total = target, digest, progress, total
        self.free: _Channel[Buffer | None] = _Channel()
        self.hashing: _Channel[_Item | None] = _Channel()
        self._writing: _Channel[_Item | None] = _Channel()
        for _ in range(DEPTH):
            self.free.put(new_block())
        self._error: BaseException | None = None
        self._written = 0
        self._threads = [
            threading.Thread(target=self._hash, name="image-hash", daemon=True),
            threading.Thread(target=self._write, name="image-write", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def failed(self) -> bool:
        return self._error is not None

    def finish(self) -> int:
        """End both threads; the bytes written. Raises the writer's error, if any."""
        self.hashing.put(None)
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            raise self._error
        return self._written

    def _hash(self) -> None:
        while (item := self.hashing.get()) is not None:
            block, count, _ = item
            if count == BLOCK:
                self.digest.update(block)
            else:
                with memoryview(block) as view:
                    self.digest.update(view[:count])
            self._writing.put(item)
        self._writing.put(None)

    def _write(self) -> None:
        scratch = new_block()
        while (item := self._writing.get()) is not None:
            block, count, position = item
            if self._error is None:
                try:
                    self._written += _store(self.target, block, count, position, scratch)
                    self._progress(position + count, self._total)
                except BaseException as exc:  # raised in the command's thread by finish()
                    self._error = exc
                    self.free.put(None)
            self.free.put(block)


def new_block() -> mmap.mmap:
    """A page-aligned block of :data:`BLOCK` bytes (``O_DIRECT`` needs alignment)."""
    return mmap.mmap(-1, BLOCK)


def read_block(source: Source, block: Buffer) -> int:
    """Fill ``block`` from the stream; fewer bytes only at its end. Raises DownloadError."""
    filled = 0
    with memoryview(block) as view:
        try:
            while filled < len(view):
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


def _store(target: Target, block: Buffer, count: int, done: int, scratch: Buffer) -> int:
    """Write ``count`` bytes of ``block`` at ``done`` unless they are zeros the disk
    already has; the bytes written."""
    offset = target.offset + done
    try:
        if _is_zero(block, count) and _disk_is_zero(target, offset, count, scratch):
            return 0
        with memoryview(block) as view:
            _write_all(target, view[:count], offset)
    except OSError as exc:
        raise DiskError(f"Writing {target.name} at byte {offset} failed: {exc.strerror}") from None
    return count


def _direct(target: Target, offset: int, length: int) -> int | None:
    """The ``O_DIRECT`` descriptor if it can take ``length`` bytes at ``offset``."""
    if target.direct is None or offset % DIRECT_ALIGN or length % DIRECT_ALIGN:
        return None
    return target.direct


def _write_all(target: Target, view: memoryview, offset: int) -> None:
    position = 0
    direct = _direct(target, offset, len(view))
    if direct is not None:
        try:
            position = os.pwrite(direct, view, offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL:  # EINVAL: alignment the device will not take
                raise
    while position < len(view):  # the page cache takes any rest
        position += os.pwrite(target.fd, view[position:], offset + position)


def _is_zero(block: Buffer, count: int) -> bool:
    head = min(_PREFIX, count)
    if block[:head] != _ZERO[:head]:  # cheap: most data blocks end here
        return False
    if count == BLOCK and isinstance(block, bytearray):
        return block == _ZERO  # memcmp, no copy
    # a copy, then memcmp: still far faster than comparing a memoryview byte by byte
    return block[:count] == _ZERO[:count]


def _disk_is_zero(target: Target, offset: int, length: int, scratch: Buffer) -> bool:
    fd = _direct(target, offset, length)
    with memoryview(scratch) as view:
        try:
            count = os.preadv(target.fd if fd is None else fd, [view[:length]], offset)
        except OSError as exc:
            if fd is None or exc.errno != errno.EINVAL:
                raise
            count = os.preadv(target.fd, [view[:length]], offset)
    return count == length and _is_zero(scratch, length)


def check_checksum(streamed: Streamed, expected: str, *, algorithm: str, url: str) -> None:
    """Raise ChecksumMismatch unless ``streamed`` hashed to ``expected``."""
    if streamed.checksum != expected.strip().lower():
        # what the bytes did hash to stays out of the message: it ends up in the
        # node's last_error, for whoever set the image to read
        raise ChecksumMismatch(
            f"Checksum mismatch for {url}: what was written does not match the {algorithm} "
            f"checksum given ({expected.strip().lower()})"
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
    #: the md UUID of the node's software RAID root volume: the image goes there
    raid_root: str | None = None

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
            raid_root=arg_str(args, "raid_root", command=command)
            if args.get("raid_root") is not None
            else None,
        )


def write_image(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``write_image`` command of docs/agent-protocol.md."""
    spec = ImageArgs.parse(args)
    url = redact_url(ctx.downloads.resolve(spec.url))
    started = time.monotonic()
    with ctx.downloads.open(spec.url, what=_WHAT) as download:
        size = _image_size(spec.size, download.length, url=url)
        disk = _root_device(ctx, spec, size)
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


def _root_device(ctx: CommandContext, spec: ImageArgs, size: int | None) -> Disk:
    """The RAID root volume when the node has one (root-device hints do not apply
    then, as in Ironic), else the disk the hints and the image size choose."""
    if spec.raid_root is None:
        return select_root_device(list_disks(ctx.env), spec.root_device, image_size=size)
    disk = raid.root_array(ctx.env, spec.raid_root)
    if size is not None and disk.size < size:
        raise too_small(disk, size)
    return disk


def _image_size(size: int | None, length: int | None, *, url: str) -> int | None:
    """The image size: the argument, else the Content-Length; both must agree."""
    if size is not None and length is not None and size != length:
        raise DownloadError(
            f"{_WHAT} from {url} failed: the server sends {length} bytes, the image is {size}"
        )
    return size if size is not None else length


def _write_disk(ctx: CommandContext, disk: Disk, source: Source, *, algorithm: str) -> Streamed:
    path = ctx.env.device_path(disk.name)
    with open_device(path, name=disk.name) as fd, open_direct(path) as direct:
        capacity = device_size(fd)
        if source.total is not None and source.total > capacity:
            raise too_small(disk, source.total)
        target = Target(fd, disk.name, 0, capacity, direct)
        streamed = stream_to_device(
            source, target, algorithm=algorithm, progress=ctx.report_progress
        )
        flush_device(fd, name=disk.name)
        reread_partitions(fd, name=disk.name)
    return streamed
