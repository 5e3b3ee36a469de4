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
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

import httpx

from metalcast.errors import InvalidInput
from metalcast.images.access import (
    TENANT_LOCAL_REFUSED,
    AccessRefused,
    AddressGuard,
    GuardedTransport,
    LocalFiles,
    parse_networks,
)
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
    """How sources are reached, and which ones may be (:mod:`metalcast.images.access`).

    ``verify``: verify https certificates (True), not (False), or against this
    context.  ``file_roots``: the directories ``file://`` sources may be read from;
    empty refuses every local file (a path such as ``/dev/zero`` or a secret file
    must not become an image).  ``private``: paths no source may lead into, whatever
    the roots say.  ``tenant``: the source was set by a non-administrator, so no local
    file at all and no internal address outside ``allowed_internal``.
    """

    verify: bool | ssl.SSLContext = True
    timeout: float = 60.0
    file_roots: tuple[Path, ...] = field(default=())
    private: tuple[Path, ...] = field(default=())
    allowed_internal: tuple[str, ...] = field(default=())
    tenant: bool = False

    def for_tenant(self) -> Fetcher:
        """This fetcher, for sources a non-administrator set."""
        return replace(self, tenant=True)

    def with_private(self, *paths: Path) -> Fetcher:
        """This fetcher, with ``paths`` private too."""
        return replace(self, private=(*self.private, *paths))

    def admit(self, url: str, *, what: str = "Image") -> None:
        """Refuse ``url`` before anything is read or looked up in a cache, if this
        fetcher may not read it.

        Raises:
            ImageDownloadError: a local file outside the roots (or set by a
                non-administrator), an internal host for a non-administrator's URL, a
                name that does not resolve.
        """
        try:
            if url.startswith("file:"):
                self._local_path(url)
            elif self.tenant:
                parts = urlsplit(url)
                port = parts.port or (443 if parts.scheme == "https" else 80)
                self._guard().resolve(parts.hostname or "", port)
        except AccessRefused as exc:
            raise _file_error(url, what=what, reason=exc.reason) from None
        except (OSError, ValueError) as exc:
            raise _file_error(url, what=what, reason=f"cannot resolve its host: {exc}") from None

    @contextmanager
    def open(self, url: str, *, what: str = "Image") -> Iterator[Stream]:
        """Open ``url`` for reading.

        Raises:
            ImageDownloadError: an error status, an unreachable server, a missing or
                forbidden local file, an internal host refused (also when raised
                while reading the blocks).
        """
        if url.startswith("file:"):
            with self._open_file(url, what=what) as stream:
                yield stream
        else:
            with self._open_http(url, what=what) as stream:
                yield stream

    def _client(self) -> httpx.Client:
        if not self.tenant:
            return httpx.Client(verify=self.verify, timeout=self.timeout, follow_redirects=True)
        transport = GuardedTransport(verify=self.verify, guard=self._guard())
        return httpx.Client(transport=transport, timeout=self.timeout, follow_redirects=True)

    def _guard(self) -> AddressGuard:
        return AddressGuard(parse_networks(self.allowed_internal))

    @contextmanager
    def _open_http(self, url: str, *, what: str) -> Iterator[Stream]:
        try:
            with self._client() as client, client.stream("GET", url) as response:
                _check_status(response, url, what=what)
                yield Stream(_content_length(response), response.iter_bytes(BLOCK))
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, what=what) from exc

    @contextmanager
    def _open_file(self, url: str, *, what: str) -> Iterator[Stream]:
        try:
            fh = LocalFiles(self.file_roots, self.private).open(self._local_path(url))
        except AccessRefused as exc:
            raise _file_error(url, what=what, reason=exc.reason) from None
        except OSError as exc:
            raise _file_error(url, what=what, reason=exc.strerror or str(exc)) from exc
        with fh:
            size = os.fstat(fh.fileno()).st_size
            yield Stream(size, file_blocks(fh, size))

    def _local_path(self, url: str) -> Path:
        """The path a file URL names, if this fetcher may read it.  Raises
        AccessRefused."""
        if self.tenant:
            raise AccessRefused(TENANT_LOCAL_REFUSED)
        path = file_url_path(url)
        if path is None:
            raise AccessRefused("not a file URL")
        return LocalFiles(self.file_roots, self.private).check(path)


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
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
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


def private_dir(path: Path) -> None:
    """Make ``path`` (and missing parents) a directory only this user may enter.

    Raises:
        ImageProcessingError: it cannot be made.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as exc:
        raise ImageProcessingError(f"Cannot make {path}: {exc.strerror or exc}") from exc


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
