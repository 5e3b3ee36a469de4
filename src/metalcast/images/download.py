"""Streaming an image from an http(s) or file URL into a sparse file while hashing it.

Images can be larger than memory: bytes move in 1 MiB blocks, all-zero blocks become
holes in the output (and holes of a local source file are never read), and every
block is hashed as it passes.  Errors name the URL and say what happened:
``Image download from <url> failed: HTTP 404 Not Found``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import ssl
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx

from metalcast.errors import InvalidInput
from metalcast.images.errors import ImageDownloadError, ImageProcessingError
from metalcast.images.source import (
    Checksum,
    ImageSource,
    display_url,
    file_url_path,
    parse_checksum_file,
)

LOG = logging.getLogger(__name__)

BLOCK = 1024 * 1024
ZERO_BLOCK = bytes(BLOCK)
#: seconds between two progress reports
PROGRESS_INTERVAL = 0.5
#: a checksum file larger than this is not a checksum file
MAX_CHECKSUM_FILE = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    """How far a download is: bytes ``done`` of ``total`` (None when the server did not
    say), at ``rate`` bytes per second since it started."""

    done: int
    total: int | None
    rate: float


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass(frozen=True, slots=True)
class Stream:
    """An opened source: its size when known and its bytes in blocks of at most 1 MiB."""

    total: int | None
    blocks: Iterator[bytes]


@dataclass(frozen=True, slots=True)
class Downloaded:
    """What :func:`download` wrote: its size and hex digests by algorithm name."""

    size: int
    digests: dict[str, str]


@dataclass(frozen=True, slots=True)
class Fetcher:
    """How sources are reached.

    ``verify``: verify https certificates (True), not (False), or against this
    context.  ``file_roots``: the directories ``file://`` sources may be read from;
    empty refuses every local file (a path such as ``/dev/zero`` or a secret file
    must not become an image).
    """

    verify: bool | ssl.SSLContext = True
    timeout: float = 60.0
    file_roots: tuple[Path, ...] = field(default=())

    @contextmanager
    def open(self, url: str, *, what: str = "Image") -> Iterator[Stream]:
        """Open ``url`` for reading.

        Raises:
            ImageDownloadError: an error status, an unreachable server, a missing or
                forbidden local file (also when raised while reading the blocks).
        """
        if url.startswith("file:"):
            with self._open_file(url, what=what) as stream:
                yield stream
        else:
            with self._open_http(url, what=what) as stream:
                yield stream

    @contextmanager
    def _open_http(self, url: str, *, what: str) -> Iterator[Stream]:
        try:
            with (
                httpx.Client(verify=self.verify, timeout=self.timeout, follow_redirects=True) as c,
                c.stream("GET", url) as response,
            ):
                _check_status(response, url, what=what)
                yield Stream(_content_length(response), response.iter_bytes(BLOCK))
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, what=what) from exc

    @contextmanager
    def _open_file(self, url: str, *, what: str) -> Iterator[Stream]:
        path = self._allowed_path(url, what=what)
        try:
            if not path.exists():
                raise _file_error(url, what=what, reason="no such file")
            if not path.is_file():  # checked before opening: opening a FIFO blocks
                raise _file_error(url, what=what, reason="not a regular file")
            fh = path.open("rb")
        except OSError as exc:
            raise _file_error(url, what=what, reason=exc.strerror or str(exc)) from exc
        with fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _file_error(url, what=what, reason="not a regular file")
            yield Stream(info.st_size, file_blocks(fh, info.st_size))

    def _allowed_path(self, url: str, *, what: str) -> Path:
        path = file_url_path(url)
        if path is None:
            raise _file_error(url, what=what, reason="not a file URL")
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root.resolve()) for root in self.file_roots):
            roots = ", ".join(str(r) for r in self.file_roots) or "none configured"
            reason = f"outside the directories images may be read from ({roots})"
            raise _file_error(url, what=what, reason=reason)
        return resolved


def download(
    fetcher: Fetcher,
    url: str,
    *,
    target: Path,
    algos: tuple[str, ...],
    progress: ProgressCallback | None = None,
) -> Downloaded:
    """Stream ``url`` into the new file ``target``, zero blocks as holes, hashing with
    every algorithm in ``algos``.

    Raises:
        ImageDownloadError: see :meth:`Fetcher.open`.
        ImageProcessingError: ``target`` cannot be written (disk full).
    """
    hashers = {name: hashlib.new(name) for name in algos}
    meter = _Meter(progress)
    with fetcher.open(url) as stream, _SparseWriter(target) as out:
        for block in stream.blocks:
            for hasher in hashers.values():
                hasher.update(block)
            out.write(block)
            meter.advance(len(block), stream.total)
        meter.finish(stream.total)
    elapsed = _elapsed(meter.started)
    LOG.info("Downloaded %s (%d bytes) in %.1fs", display_url(url), meter.done, elapsed)
    return Downloaded(meter.done, {name: h.hexdigest() for name, h in hashers.items()})


def resolve_checksum(fetcher: Fetcher, source: ImageSource) -> Checksum:
    """The checksum ``source`` must match, reading its checksum file if it names one.

    Raises:
        ImageDownloadError: the checksum file cannot be fetched.
        InvalidInput: the file has no usable line for the image's file name.
    """
    if isinstance(source.checksum, Checksum):
        return source.checksum
    text = _read_small(fetcher, source.checksum.url)
    try:
        return parse_checksum_file(text, filename=source.filename, algo=source.checksum.algo)
    except InvalidInput as exc:
        raise InvalidInput(
            f"Checksum file {display_url(source.checksum.url)}: {exc.message}"
        ) from None


def _read_small(fetcher: Fetcher, url: str) -> str:
    data = bytearray()
    with fetcher.open(url, what="Checksum") as stream:
        for block in stream.blocks:
            data += block
            if len(data) > MAX_CHECKSUM_FILE:
                raise InvalidInput(
                    f"Checksum file {display_url(url)} is larger than {MAX_CHECKSUM_FILE} "
                    "bytes: it is not a checksum file"
                )
    return data.decode("utf-8", errors="replace")


class _SparseWriter:
    """Writes blocks to a new file, seeking over all-zero ones so they stay holes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1
        self._offset = 0

    def __enter__(self) -> _SparseWriter:
        try:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise _store_error(self._path, exc) from exc
        return self

    def write(self, block: bytes) -> None:
        if block != ZERO_BLOCK[: len(block)]:
            try:
                os.pwrite(self._fd, block, self._offset)
            except OSError as exc:
                raise _store_error(self._path, exc) from exc
        self._offset += len(block)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                os.ftruncate(self._fd, self._offset)
                os.fsync(self._fd)
        except OSError as error:
            raise _store_error(self._path, error) from error
        finally:
            os.close(self._fd)


def file_blocks(fh: BinaryIO, size: int) -> Iterator[bytes]:
    """The first ``size`` bytes of a local file in blocks aligned on 1 MiB; its holes
    are yielded as zeros without being read."""
    fd = fh.fileno()
    offset = 0
    while offset < size:
        data_start = _next_data(fd, offset, size)
        while offset < data_start:
            step = min(BLOCK - offset % BLOCK, data_start - offset)
            yield ZERO_BLOCK[:step]
            offset += step
        hole_start = min(os.lseek(fd, offset, os.SEEK_HOLE), size) if offset < size else size
        while offset < hole_start:
            block = os.pread(fd, min(BLOCK - offset % BLOCK, hole_start - offset), offset)
            if not block:
                return
            yield block
            offset += len(block)


def _next_data(fd: int, offset: int, size: int) -> int:
    try:
        return os.lseek(fd, offset, os.SEEK_DATA)
    except OSError:  # ENXIO: only a hole is left up to the end
        return size


def _check_status(response: httpx.Response, url: str, *, what: str) -> None:
    if response.status_code >= 400:
        raise ImageDownloadError(
            f"{what} download from {display_url(url)} failed: HTTP {response.status_code} "
            f"{response.reason_phrase}",
            url=url,
            status=response.status_code,
        )


def _content_length(response: httpx.Response) -> int | None:
    length = response.headers.get("content-length")
    if not length or not length.isdigit() or response.headers.get("content-encoding"):
        return None
    return int(length)


def _transport_error(exc: httpx.HTTPError, url: str, *, what: str) -> ImageDownloadError:
    if isinstance(exc, httpx.ConnectError):
        reason = f"cannot connect: {exc}"
    elif isinstance(exc, httpx.TimeoutException):
        reason = f"timed out: {str(exc) or type(exc).__name__}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return ImageDownloadError(f"{what} download from {display_url(url)} failed: {reason}", url=url)


def _file_error(url: str, *, what: str, reason: str) -> ImageDownloadError:
    return ImageDownloadError(f"{what} download from {display_url(url)} failed: {reason}", url=url)


def _store_error(path: Path, exc: OSError) -> ImageProcessingError:
    return ImageProcessingError(f"Cannot write {path}: {exc.strerror or exc}")


class _Meter:
    """Counts bytes and reports progress at most every PROGRESS_INTERVAL seconds (and
    once at the end), so a callback that saves to a database is not called per block."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.started = time.monotonic()
        self.done = 0
        self._reported = -PROGRESS_INTERVAL

    def advance(self, count: int, total: int | None) -> None:
        self.done += count
        if (
            self.callback is not None
            and _elapsed(self.started) - self._reported >= PROGRESS_INTERVAL
        ):
            self._report(total)

    def finish(self, total: int | None) -> None:
        if self.callback is not None:
            self._report(total)

    def _report(self, total: int | None) -> None:
        assert self.callback is not None
        elapsed = _elapsed(self.started)
        self._reported = elapsed
        self.callback(DownloadProgress(self.done, total, self.done / elapsed if elapsed else 0.0))


def _elapsed(started: float) -> float:
    return time.monotonic() - started
