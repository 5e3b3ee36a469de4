"""The conductor's image cache: each image fetched once, verified, kept as raw.

An image is keyed by its URL and the checksum it must match, so a new image published
at the same URL (with its new checksum) is a new entry.  The key is an HMAC of both
under a key derived from the server's secret key: nobody who knows a URL and a
checksum can name the cached file.  Fetching downloads into the
cache while hashing, refuses a checksum mismatch (leaving nothing behind), converts
qcow2 to a sparse raw file and records the raw file's sha256: that is what the agent
verifies after writing the disk.

Layout of ``root`` (one set of files per key)::

    <key>.raw           the raw image (sparse)
    <key>.json          its metadata, written last: no json, no image
    <key>.pins/<holder> pins that keep the image from eviction (e.g. a deploying node)
    <key>.fetch.lock    held exclusively while fetching, pinning or evicting
    <key>.use.lock      held shared while a process uses the image (ImageCache.use)
    <key>.part …        a fetch in progress

The cache's directories are mode 0700 and its files 0600: the boot HTTP server (the
same process) serves them to agents with a signed URL, and nobody else reads them.
Locks are ``flock`` locks, so concurrent fetches of one image, from threads or from
processes, download it once; a crashed process leaves no lock behind.  Eviction
removes the least recently used images while the cache holds more than ``max_bytes``
(on disk), skipping any image that is pinned, in use or being fetched.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from metalcast.errors import InvalidInput, NotFound
from metalcast.images.download import (
    Fetcher,
    ProgressCallback,
    download,
    private_dir,
    resolve_checksum,
)
from metalcast.images.errors import ChecksumMismatch, ImageProcessingError
from metalcast.images.formats import convert_to_raw, detect_format, inspect_qcow2, sha256_of_file
from metalcast.images.source import (
    Checksum,
    ChecksumAlgo,
    ChecksumFile,
    DiskFormat,
    ImageSource,
)

LOG = logging.getLogger(__name__)

_HOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_KEY = re.compile(r"^[0-9a-f]{32}$")
_SUFFIXES = (".raw", ".json", ".part", ".raw.part")


@dataclass(frozen=True, slots=True)
class CachedImage:
    """A raw image in the cache and what is known about it.

    ``checksum`` is the one the source was verified against; ``raw_sha256`` is the
    sha256 of the raw file at ``path`` (what the agent checks); ``disk_format`` is the
    format the source was in.  ``source_url`` has any password masked.
    """

    key: str
    path: Path
    source_url: str
    checksum: Checksum
    disk_format: DiskFormat
    raw_sha256: str
    raw_size: int
    created_at: datetime
    last_used_at: datetime

    def to_json(self) -> dict[str, str | int]:
        """The metadata as stored next to the image."""
        return {
            "key": self.key,
            "source_url": self.source_url,
            "checksum_algo": str(self.checksum.algo),
            "checksum": self.checksum.value,
            "disk_format": str(self.disk_format),
            "raw_sha256": self.raw_sha256,
            "raw_size": self.raw_size,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, object], *, path: Path) -> CachedImage:
        """Read metadata written by :meth:`to_json`.  Raises ValueError/KeyError."""
        return cls(
            key=str(data["key"]),
            path=path,
            source_url=str(data["source_url"]),
            checksum=Checksum(ChecksumAlgo(str(data["checksum_algo"])), str(data["checksum"])),
            disk_format=DiskFormat(str(data["disk_format"])),
            raw_sha256=str(data["raw_sha256"]),
            raw_size=int(str(data["raw_size"])),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            last_used_at=datetime.fromisoformat(str(data["last_used_at"])),
        )


#: what :meth:`metalcast.secrecy.SecretBox.derive_key` derives the cache's key for
KEY_PURPOSE = "image-cache-names"


def cache_key(url: str, checksum: Checksum, *, secret: bytes) -> str:
    """The cache key of the image at ``url`` that must match ``checksum``: an HMAC
    under ``secret``, so that it cannot be guessed from the URL and checksum."""
    mac = hmac.new(secret, f"{url}\n{checksum}".encode(), hashlib.sha256)
    return mac.hexdigest()[:32]


class ImageCache:
    """Raw images fetched from http(s)/file sources, kept in ``root`` up to
    ``max_bytes`` on disk.  Safe to share between threads and processes.

    ``secret`` keys the file names (the same in every process sharing the cache);
    the fetcher never reads a source inside ``root``.
    """

    def __init__(
        self, root: Path, max_bytes: int, *, secret: bytes, fetcher: Fetcher | None = None
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.fetcher = (fetcher or Fetcher()).with_private(root)
        self._secret = secret
        private_dir(root)

    def fetch(
        self,
        source: ImageSource,
        progress: ProgressCallback | None = None,
        *,
        holder: str | None = None,
        tenant: bool = False,
    ) -> CachedImage:
        """The cached raw image of ``source``, downloaded and converted if needed.

        With ``holder`` (e.g. a node UUID) the image is pinned for it until
        :meth:`unpin`; without, a later fetch of another image may evict it.  With
        ``tenant`` the source was set by a non-administrator: it may not be a local
        file or reach an internal host (:meth:`Fetcher.for_tenant`), cached or not.

        Raises:
            ImageDownloadError: the image or its checksum file could not be fetched,
                or may not be (a local file or internal host that is not allowed).
            InvalidInput: the checksum file has no usable line for the image, or
                ``holder`` is not a simple name (letters, digits, ``._-``).
            ChecksumMismatch: the image does not match its checksum.
            UnsupportedImage: not raw/qcow2, a backing or data file, a format mismatch.
            ImageProcessingError: qemu-img failed, the cache's disk is full.
        """
        if holder is not None:
            _check_holder(holder)
        with self.use(source, progress, tenant=tenant) as image:
            if holder is not None:
                self.pin(image.key, holder)
        return image

    @contextmanager
    def use(
        self,
        source: ImageSource,
        progress: ProgressCallback | None = None,
        *,
        tenant: bool = False,
    ) -> Iterator[CachedImage]:
        """Fetch like :meth:`fetch`; the image is not evicted until the block exits
        (or this process dies).  Raises what :meth:`fetch` raises."""
        fetcher = self.fetcher.for_tenant() if tenant else self.fetcher
        # refused before the cache is looked at: a hit must not hand out what the
        # caller may not read
        fetcher.admit(source.url)
        if isinstance(source.checksum, ChecksumFile):
            fetcher.admit(source.checksum.url, what="Checksum")
        checksum = resolve_checksum(fetcher, source)
        key = cache_key(source.url, checksum, secret=self._secret)
        image: CachedImage | None = None
        try:
            with _flock(self._file(key, ".use.lock"), exclusive=False):
                image = self._get_or_fetch(
                    key, source, checksum=checksum, progress=progress, fetcher=fetcher
                )
                self.evict()
                yield image
        finally:
            if image is None:  # the fetch failed: leave no lock files either
                self._remove_unused(key, leftovers_only=True)

    def get(self, key: str) -> CachedImage | None:
        """The cached image with this key, or None."""
        return self._read(key) if _KEY.match(key) else None

    def entries(self) -> list[CachedImage]:
        """Every cached image, least recently used first."""
        images = (self._read(path.name.removesuffix(".json")) for path in self.root.glob("*.json"))
        return sorted((i for i in images if i is not None), key=lambda i: i.last_used_at)

    def usage(self) -> int:
        """Bytes the cached raw images take on disk (holes excluded)."""
        return sum(_disk_usage(image.path) for image in self.entries())

    def pin(self, key: str, holder: str) -> CachedImage:
        """Keep the image ``key`` from eviction until ``holder`` unpins it.  Idempotent.

        Raises:
            InvalidInput: ``holder`` is not a simple name (letters, digits, ``._-``).
            NotFound: no such image in the cache (or not a cache key).
        """
        if not _KEY.match(key):
            raise NotFound(f"{key!r} is not an image cache key")
        pin = self._pin_file(key, holder)
        with _flock(self._file(key, ".fetch.lock"), exclusive=True):
            image = self._read(key)
            if image is None:
                raise NotFound(f"Image {key} is not in the image cache {self.root}")
            pin.parent.mkdir(mode=0o700, exist_ok=True)
            pin.touch(mode=0o600)
        return image

    def unpin(self, key: str, holder: str) -> None:
        """Drop ``holder``'s pin on ``key`` (nothing happens if there is none)."""
        self._pin_file(key, holder).unlink(missing_ok=True)

    def unpin_all(self, holder: str) -> None:
        """Drop every pin ``holder`` has (e.g. when its node is torn down)."""
        _check_holder(holder)
        for pin in self.root.glob(f"*.pins/{holder}"):
            pin.unlink(missing_ok=True)

    def holders(self, key: str) -> list[str]:
        """Who pins the image ``key``."""
        pins = self._file(key, ".pins")
        return sorted(p.name for p in pins.iterdir()) if pins.is_dir() else []

    def evict(self) -> list[str]:
        """Remove least recently used images until the cache fits ``max_bytes``, and
        what interrupted fetches left behind.  Returns the keys removed."""
        with _try_flock(self.root / ".evict.lock", exclusive=True) as locked:
            if not locked:
                return []  # another thread or process is evicting right now
            self._sweep_leftovers()
            return self._evict_lru()

    def _evict_lru(self) -> list[str]:
        entries = self.entries()
        total = sum(_disk_usage(image.path) for image in entries)
        evicted: list[str] = []
        for image in entries:
            if total <= self.max_bytes:
                break
            size = _disk_usage(image.path)
            if self._remove_unused(image.key):
                LOG.info("Evicted image %s (%s) from the cache", image.key, image.source_url)
                total -= size
                evicted.append(image.key)
        if total > self.max_bytes:
            LOG.warning(
                "The image cache %s holds %d bytes, over its %d bytes, in images in use",
                self.root,
                total,
                self.max_bytes,
            )
        return evicted

    def _get_or_fetch(
        self,
        key: str,
        source: ImageSource,
        *,
        checksum: Checksum,
        progress: ProgressCallback | None,
        fetcher: Fetcher,
    ) -> CachedImage:
        with _flock(self._file(key, ".fetch.lock"), exclusive=True):
            image = self._read(key)
            if image is not None:
                LOG.debug("Image %s found in the cache as %s", source.display_url, key)
                return self._write_meta(replace(image, last_used_at=_now()))
            self._remove_files(key)  # what an interrupted fetch left
            try:
                return self._populate(
                    key, source, checksum=checksum, progress=progress, fetcher=fetcher
                )
            except BaseException:
                self._remove_files(key)
                raise

    def _populate(
        self,
        key: str,
        source: ImageSource,
        *,
        checksum: Checksum,
        progress: ProgressCallback | None,
        fetcher: Fetcher,
    ) -> CachedImage:
        part = self._file(key, ".part")
        algos = tuple(dict.fromkeys((str(checksum.algo), "sha256")))
        got = download(fetcher, source.url, target=part, algos=algos, progress=progress)
        actual = got.digests[str(checksum.algo)]
        if actual != checksum.value:
            # the actual digest is for the operator's log only: told to the caller, it
            # would let anyone learn the digest of whatever a URL points at, and then
            # have it cached under that digest
            LOG.warning(
                "Image %s does not match its %s checksum %s: it hashes to %s",
                source.display_url,
                checksum.algo,
                checksum.value,
                actual,
            )
            raise ChecksumMismatch(
                url=source.display_url, algo=str(checksum.algo), expected=checksum.value
            )
        disk_format = detect_format(part, declared=source.disk_format, url=source.url)
        raw = self._file(key, ".raw")
        if disk_format is DiskFormat.QCOW2:
            raw_sha256 = self._convert(part, key, url=source.url)
        else:
            raw_sha256 = got.digests["sha256"]
            os.replace(part, raw)
        now = _now()
        image = CachedImage(
            key=key,
            path=raw,
            source_url=source.display_url,
            checksum=checksum,
            disk_format=disk_format,
            raw_sha256=raw_sha256,
            raw_size=raw.stat().st_size,
            created_at=now,
            last_used_at=now,
        )
        LOG.info("Cached image %s as %s (%d bytes raw)", image.source_url, key, image.raw_size)
        return self._write_meta(image)

    def _convert(self, part: Path, key: str, *, url: str) -> str:
        """Convert the downloaded qcow2 ``part`` into ``<key>.raw``; its sha256."""
        inspect_qcow2(part, url=url)
        converted = self._file(key, ".raw.part")
        convert_to_raw(part, converted, url=url)
        part.unlink()
        converted.chmod(0o600)  # qemu-img made it with the process's umask
        raw_sha256 = sha256_of_file(converted)
        os.replace(converted, self._file(key, ".raw"))
        return raw_sha256

    def _read(self, key: str) -> CachedImage | None:
        raw = self._file(key, ".raw")
        try:
            data = json.loads(self._file(key, ".json").read_text())
            image = CachedImage.from_json(data, path=raw)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return image if raw.exists() else None

    def _write_meta(self, image: CachedImage) -> CachedImage:
        meta = self._file(image.key, ".json")
        tmp = self._file(image.key, ".json.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(json.dumps(image.to_json(), indent=2) + "\n")
            os.replace(tmp, meta)
        except OSError as exc:
            raise ImageProcessingError(f"Cannot write {meta}: {exc.strerror or exc}") from exc
        return image

    def _remove_unused(self, key: str, *, leftovers_only: bool = False) -> bool:
        """Remove image ``key`` unless it is being fetched, used or pinned (or, with
        ``leftovers_only``, complete)."""
        fetch_lock, use_lock = self._file(key, ".fetch.lock"), self._file(key, ".use.lock")
        with (
            _try_flock(fetch_lock, exclusive=True) as fetch_free,
            _try_flock(use_lock, exclusive=True) as use_free,
        ):
            if not (fetch_free and use_free) or self.holders(key):
                return False
            if leftovers_only and self._file(key, ".json").exists():
                return False
            self._remove_files(key)
            with contextlib.suppress(OSError):
                self._file(key, ".pins").rmdir()  # left empty by unpin
            # unlinked while held: a waiter notices it holds a stale lock and retries
            fetch_lock.unlink(missing_ok=True)
            use_lock.unlink(missing_ok=True)
            return True

    def _sweep_leftovers(self) -> None:
        """Remove files of keys that have no metadata (interrupted or failed fetches)."""
        names = [*self.root.glob("*.lock"), *self.root.glob("*.part")]
        keys = {p.name.split(".", 1)[0] for p in names} - {""}
        for key in keys:
            if _KEY.match(key) and not self._file(key, ".json").exists():
                self._remove_unused(key, leftovers_only=True)

    def _remove_files(self, key: str) -> None:
        for suffix in (*_SUFFIXES, ".json.tmp"):
            self._file(key, suffix).unlink(missing_ok=True)

    def _file(self, key: str, suffix: str) -> Path:
        return self.root / f"{key}{suffix}"

    def _pin_file(self, key: str, holder: str) -> Path:
        _check_holder(holder)
        if not _KEY.match(key):
            raise InvalidInput(f"{key!r} is not an image cache key")
        return self.root / f"{key}.pins" / holder


def _check_holder(holder: str) -> None:
    if not _HOLDER.match(holder):
        raise InvalidInput(
            f"Image cache holder {holder!r} must be letters, digits, '.', '_' or '-'"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _disk_usage(path: Path) -> int:
    try:
        return path.stat().st_blocks * 512
    except OSError:
        return 0


@contextmanager
def _flock(path: Path, *, exclusive: bool) -> Iterator[None]:
    fd = _acquire(path, exclusive=exclusive, blocking=True)
    assert fd is not None
    try:
        yield
    finally:
        os.close(fd)


@contextmanager
def _try_flock(path: Path, *, exclusive: bool) -> Iterator[bool]:
    fd = _acquire(path, exclusive=exclusive, blocking=False)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)


def _acquire(path: Path, *, exclusive: bool, blocking: bool) -> int | None:
    """An fd holding a flock on ``path``, or None when not ``blocking`` and taken.

    Lock files are deleted by eviction while locked, so after acquiring, the lock is
    only good if ``path`` still names the locked file; otherwise try again.
    """
    operation = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, operation)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _names_fd(path, fd):
            return fd
        os.close(fd)


def _names_fd(path: Path, fd: int) -> bool:
    with contextlib.suppress(FileNotFoundError):
        held, named = os.fstat(fd), path.stat()
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)
    return False
