"""The image cache with local (file://) sources: verify, record, keep holes, evict.

HTTP sources, qcow2 conversion and other processes are in tests/integration/images.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from metalcast.errors import InvalidInput, NotFound
from metalcast.images.cache import CachedImage, ImageCache, cache_key
from metalcast.images.download import DownloadProgress, Fetcher
from metalcast.images.errors import ChecksumMismatch, ImageDownloadError, UnsupportedImage
from metalcast.images.source import (
    Checksum,
    ChecksumAlgo,
    ChecksumFile,
    DiskFormat,
    ImageSource,
    parse_image_source,
)

MIB = 1024 * 1024
SECRET = b"cache-names-key-" * 2


@pytest.fixture
def images(tmp_path: Path) -> Path:
    path = tmp_path / "images"
    path.mkdir()
    return path


def make_cache(tmp_path: Path, images: Path, max_bytes: int = 100 * MIB) -> ImageCache:
    fetcher = Fetcher(file_roots=(images,))
    return ImageCache(tmp_path / "cache", max_bytes, secret=SECRET, fetcher=fetcher)


def write_image(path: Path, data: bytes) -> ImageSource:
    path.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    return ImageSource(path.as_uri(), Checksum(ChecksumAlgo.SHA256, digest))


def sparse_image(path: Path, size: int = 16 * MIB) -> bytes:
    """A file with 2 data extents and holes around them; its content."""
    with path.open("wb") as fh:
        fh.write(b"boot" * 1000)
        fh.seek(6 * MIB + 512)
        fh.write(os.urandom(MIB))
        fh.truncate(size)
    return path.read_bytes()


def cache_files(cache: ImageCache) -> list[str]:
    return sorted(p.name for p in cache.root.iterdir() if p.name != ".evict.lock")


class Downloads:
    """A progress callback that counts finished downloads."""

    def __init__(self) -> None:
        self.reports: list[DownloadProgress] = []
        self._lock = threading.Lock()

    def __call__(self, progress: DownloadProgress) -> None:
        with self._lock:
            self.reports.append(progress)

    @property
    def finished(self) -> int:
        return sum(1 for r in self.reports if r.done == r.total)


def test_fetch_stores_a_raw_image_with_its_metadata(tmp_path: Path, images: Path) -> None:
    data = os.urandom(3 * MIB + 5)
    source = write_image(images / "disk.raw", data)
    cache = make_cache(tmp_path, images)
    downloads = Downloads()

    image = cache.fetch(source, downloads)

    assert image.path.read_bytes() == data
    assert image.raw_sha256 == hashlib.sha256(data).hexdigest()
    assert image.raw_size == len(data)
    assert image.disk_format is DiskFormat.RAW
    assert isinstance(source.checksum, Checksum)
    assert image.key == cache_key(source.url, source.checksum, secret=SECRET)
    meta = json.loads((cache.root / f"{image.key}.json").read_text())
    assert meta == image.to_json()
    assert meta["source_url"] == source.url
    assert meta["checksum"] == source.checksum.value
    assert CachedImage.from_json(meta, path=image.path) == image
    assert downloads.reports[-1].done == downloads.reports[-1].total == len(data)
    assert downloads.reports[-1].rate > 0


def test_second_fetch_is_served_from_the_cache(tmp_path: Path, images: Path) -> None:
    source = write_image(images / "disk.raw", os.urandom(MIB))
    cache = make_cache(tmp_path, images)
    first = cache.fetch(source)
    downloads = Downloads()

    again = cache.fetch(source, downloads)

    assert downloads.reports == []
    assert again.key == first.key
    assert again.created_at == first.created_at
    assert again.last_used_at >= first.last_used_at
    assert cache.get(first.key) == again


def test_sha512_checksums_are_verified(tmp_path: Path, images: Path) -> None:
    data = os.urandom(MIB)
    (images / "disk.raw").write_bytes(data)
    source = parse_image_source(
        {
            "image_source": str(images / "disk.raw"),
            "image_os_hash_algo": "sha512",
            "image_os_hash_value": hashlib.sha512(data).hexdigest(),
        }
    )

    image = make_cache(tmp_path, images).fetch(source)

    assert image.checksum.algo is ChecksumAlgo.SHA512
    assert image.raw_sha256 == hashlib.sha256(data).hexdigest()


def test_checksum_mismatch_leaves_nothing_behind(tmp_path: Path, images: Path) -> None:
    (images / "disk.raw").write_bytes(b"x" * MIB)
    source = ImageSource((images / "disk.raw").as_uri(), Checksum(ChecksumAlgo.SHA256, "0" * 64))
    cache = make_cache(tmp_path, images)

    with pytest.raises(ChecksumMismatch) as caught:
        cache.fetch(source)

    got = hashlib.sha256(b"x" * MIB).hexdigest()
    assert caught.value.message == (
        f"Checksum mismatch for {source.url}: the image does not match the sha256 "
        f"checksum given ({'0' * 64})"
    )
    assert got not in caught.value.message  # the actual digest is for the log only
    assert caught.value.status_code == 502
    assert cache_files(cache) == []


def test_the_actual_digest_of_a_mismatch_goes_to_the_log_only(
    tmp_path: Path, images: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (images / "disk.raw").write_bytes(b"y" * 1000)
    source = ImageSource((images / "disk.raw").as_uri(), Checksum(ChecksumAlgo.SHA256, "0" * 64))

    with pytest.raises(ChecksumMismatch) as caught:
        make_cache(tmp_path, images).fetch(source)

    got = hashlib.sha256(b"y" * 1000).hexdigest()
    assert got not in str(caught.value) and got not in repr(caught.value.__dict__)
    assert got in caplog.text


def test_holes_of_a_local_image_stay_holes(tmp_path: Path, images: Path) -> None:
    data = sparse_image(images / "disk.raw")
    source = ImageSource(
        (images / "disk.raw").as_uri(),
        Checksum(ChecksumAlgo.SHA256, hashlib.sha256(data).hexdigest()),
    )

    image = make_cache(tmp_path, images).fetch(source)

    assert image.path.read_bytes() == data
    assert image.path.stat().st_blocks * 512 < 4 * MIB


def test_zero_blocks_of_a_dense_image_become_holes(tmp_path: Path, images: Path) -> None:
    data = os.urandom(MIB) + bytes(8 * MIB) + os.urandom(100)
    source = write_image(images / "dense.raw", data)

    image = make_cache(tmp_path, images).fetch(source)

    assert image.path.read_bytes() == data
    assert image.path.stat().st_blocks * 512 < 3 * MIB


def test_checksum_file_is_read_for_the_image_name(tmp_path: Path, images: Path) -> None:
    data = os.urandom(MIB)
    (images / "disk.raw").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    (images / "SHA256SUMS").write_text(f"{'1' * 64}  other.raw\n{digest}  disk.raw\n")
    source = ImageSource(
        (images / "disk.raw").as_uri(), ChecksumFile((images / "SHA256SUMS").as_uri())
    )

    image = make_cache(tmp_path, images).fetch(source)

    assert image.checksum == Checksum(ChecksumAlgo.SHA256, digest)


def test_checksum_file_without_the_image_is_invalid_input(tmp_path: Path, images: Path) -> None:
    (images / "disk.raw").write_bytes(b"x")
    (images / "SUMS").write_text(f"{'1' * 64}  other.raw\n")
    source = ImageSource((images / "disk.raw").as_uri(), ChecksumFile((images / "SUMS").as_uri()))

    with pytest.raises(InvalidInput, match=r"Checksum file file://.*/SUMS: .*'disk.raw'"):
        make_cache(tmp_path, images).fetch(source)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("missing.raw", "no such file"), ("subdir", "not a regular file"), ("fifo", "not a regular")],
)
def test_unreadable_local_sources(tmp_path: Path, images: Path, name: str, reason: str) -> None:
    (images / "subdir").mkdir()
    os.mkfifo(images / "fifo")
    source = ImageSource((images / name).as_uri(), Checksum(ChecksumAlgo.SHA256, "0" * 64))
    cache = make_cache(tmp_path, images)

    with pytest.raises(
        ImageDownloadError, match=f"Image download from {source.url} failed: {reason}"
    ):
        cache.fetch(source)
    assert cache_files(cache) == []


def test_local_files_outside_the_allowed_roots_are_refused(tmp_path: Path, images: Path) -> None:
    outside = tmp_path / "secret.raw"
    source = write_image(outside, b"secret")
    link = images / "link.raw"
    link.symlink_to(outside)

    with pytest.raises(ImageDownloadError, match="outside the directories images may be read"):
        make_cache(tmp_path, images).fetch(source)
    with pytest.raises(ImageDownloadError, match="outside the directories"):
        make_cache(tmp_path, images).fetch(ImageSource(link.as_uri(), source.checksum))
    with pytest.raises(ImageDownloadError, match="none configured"):
        ImageCache(tmp_path / "c2", MIB, secret=SECRET).fetch(source)


@pytest.mark.parametrize(
    ("head", "declared", "message"),
    [
        (b"KDMV" + bytes(100), None, "is a vmdk image: only raw and qcow2"),
        (b"\x1f\x8b\x08" + bytes(100), None, "is a gzip-compressed image"),
        (bytes(0x40) + b"\x7f\x10\xda\xbe", DiskFormat.RAW, "is a vdi image"),
        (
            b"QFI\xfb" + bytes(100),
            DiskFormat.RAW,
            r"declared raw \(image_disk_format\) but is a qcow2",
        ),
        (b"", None, "is empty"),
        (bytes(4096), DiskFormat.QCOW2, r"declared qcow2 \(image_disk_format\) but is a raw"),
    ],
)
def test_unsupported_formats_are_refused(
    tmp_path: Path, images: Path, head: bytes, declared: DiskFormat | None, message: str
) -> None:
    source = write_image(images / "disk.img", head)
    cache = make_cache(tmp_path, images)

    with pytest.raises(UnsupportedImage, match=message) as caught:
        cache.fetch(ImageSource(source.url, source.checksum, declared))
    assert caught.value.status_code == 400
    assert cache_files(cache) == []


def test_least_recently_used_images_are_evicted(tmp_path: Path, images: Path) -> None:
    a, b, c = (write_image(images / f"{n}.raw", os.urandom(MIB)) for n in "abc")
    cache = make_cache(tmp_path, images, max_bytes=int(2.5 * MIB))
    image_a = cache.fetch(a)
    image_b = cache.fetch(b)
    cache.fetch(a)  # a is now more recently used than b

    image_c = cache.fetch(c)

    assert [i.key for i in cache.entries()] == [image_a.key, image_c.key]
    assert not image_b.path.exists()
    assert not any(p.name.startswith(image_b.key) for p in cache.root.iterdir())
    assert cache.usage() <= cache.max_bytes


def test_pinned_images_are_never_evicted(tmp_path: Path, images: Path) -> None:
    a, b, c = (write_image(images / f"{n}.raw", os.urandom(MIB)) for n in "abc")
    cache = make_cache(tmp_path, images, max_bytes=int(1.5 * MIB))
    image_a = cache.fetch(a, holder="node-a")
    cache.pin(image_a.key, "node-z")

    image_b = cache.fetch(b)
    image_c = cache.fetch(c)

    assert image_a.path.exists()
    assert not image_b.path.exists()
    assert cache.holders(image_a.key) == ["node-a", "node-z"]
    cache.unpin(image_a.key, "node-a")
    cache.unpin_all("node-z")
    assert cache.evict() == [image_a.key]
    assert [i.key for i in cache.entries()] == [image_c.key]
    assert not any(p.name.startswith(image_a.key) for p in cache.root.iterdir())


def test_images_in_use_are_never_evicted(tmp_path: Path, images: Path) -> None:
    a, b = (write_image(images / f"{n}.raw", os.urandom(MIB)) for n in "ab")
    cache = make_cache(tmp_path, images, max_bytes=MIB // 2)

    with cache.use(a) as image_a:
        image_b = cache.fetch(b)
        assert image_a.path.exists()
        assert cache.evict() == [image_b.key]
    assert cache.evict() == [image_a.key]


def test_pin_errors(tmp_path: Path, images: Path) -> None:
    cache = make_cache(tmp_path, images)

    with pytest.raises(NotFound, match="not in the image cache"):
        cache.pin("0" * 32, "node-1")
    with pytest.raises(NotFound, match="not an image cache key"):
        cache.pin("../etc", "node-1")
    assert cache.get("../etc") is None
    with pytest.raises(InvalidInput, match=r"holder '\.\./x'"):
        cache.pin("0" * 32, "../x")


def test_leftovers_of_an_interrupted_fetch_are_swept(tmp_path: Path, images: Path) -> None:
    cache = make_cache(tmp_path, images)
    key = "0123456789abcdef0123456789abcdef"
    for suffix in (".part", ".raw.part", ".fetch.lock", ".use.lock"):
        (cache.root / f"{key}{suffix}").write_bytes(b"stale")

    assert cache.evict() == []
    assert cache_files(cache) == []


def test_concurrent_fetches_in_threads_download_once(tmp_path: Path, images: Path) -> None:
    source = write_image(images / "disk.raw", os.urandom(4 * MIB))
    cache = make_cache(tmp_path, images)
    downloads = Downloads()
    results: list[CachedImage] = []

    def fetch() -> None:
        results.append(cache.fetch(source, downloads))

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert downloads.finished == 1
    assert len(results) == 8
    assert {r.raw_sha256 for r in results} == {results[0].raw_sha256}
