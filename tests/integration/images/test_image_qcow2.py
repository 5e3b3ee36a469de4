"""qcow2 images converted to sparse raw with the real qemu-img; unsafe ones refused."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
from image_http_server import ImageServer

from metalcast.images.cache import ImageCache
from metalcast.images.download import Fetcher
from metalcast.images.errors import ImageProcessingError, UnsupportedImage
from metalcast.images.source import DiskFormat, ImageSource, parse_image_source

MIB = 1024 * 1024
SIZE = 64 * MIB


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def raw_with_holes(path: Path) -> bytes:
    """A 64 MiB raw disk with 3 MiB of data in 3 places, the rest holes."""
    with path.open("wb") as fh:
        fh.write(b"\xeb\x63\x90" + os.urandom(509) + b"\x55\xaa")
        fh.seek(10 * MIB + 4096)
        fh.write(os.urandom(2 * MIB))
        fh.seek(SIZE - MIB)
        fh.write(os.urandom(MIB))
        fh.truncate(SIZE)
    return path.read_bytes()


def source(path_or_url: str, data: bytes, **extra: object) -> ImageSource:
    info = {"image_source": path_or_url, "image_checksum": hashlib.sha256(data).hexdigest()}
    return parse_image_source({**info, **extra})


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def cache(tmp_path: Path, work: Path) -> ImageCache:
    return ImageCache(
        tmp_path / "cache", 1 << 30, secret=b"k" * 32, fetcher=Fetcher(file_roots=(work,))
    )


def leftovers(cache: ImageCache) -> list[str]:
    return sorted(p.name for p in cache.root.iterdir() if p.name != ".evict.lock")


def test_qcow2_over_http_becomes_the_original_sparse_raw(
    image_server: ImageServer, cache: ImageCache, work: Path
) -> None:
    original = raw_with_holes(work / "disk.raw")
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(work / "disk.raw"), str(work / "d.qcow2"))
    qcow2 = (work / "d.qcow2").read_bytes()
    url = image_server.serve("/d.qcow2", qcow2)

    image = cache.fetch(source(url, qcow2))  # no image_disk_format: detected

    assert image.disk_format is DiskFormat.QCOW2
    assert image.checksum.value == hashlib.sha256(qcow2).hexdigest()
    assert image.raw_size == SIZE
    assert image.path.read_bytes() == original
    assert image.raw_sha256 == hashlib.sha256(original).hexdigest()
    assert image.path.stat().st_blocks * 512 < 8 * MIB  # 3 MiB of data, holes kept
    assert leftovers(cache) == sorted(
        f"{image.key}{suffix}" for suffix in (".fetch.lock", ".json", ".raw", ".use.lock")
    )


def test_declared_qcow2_from_a_local_file(cache: ImageCache, work: Path) -> None:
    original = raw_with_holes(work / "disk.raw")
    qemu_img("convert", "-f", "raw", "-O", "qcow2", "-c", str(work / "disk.raw"), str(work / "c.q"))
    qcow2 = (work / "c.q").read_bytes()

    image = cache.fetch(source(str(work / "c.q"), qcow2, image_disk_format="qcow2"))

    assert image.path.read_bytes() == original


def test_qcow2_with_a_backing_file_is_refused(cache: ImageCache, work: Path) -> None:
    qemu_img("create", "-f", "qcow2", str(work / "base.qcow2"), "1M")
    qemu_img("create", "-f", "qcow2", "-F", "qcow2", "-b", "base.qcow2", str(work / "top.qcow2"))
    top = (work / "top.qcow2").read_bytes()

    with pytest.raises(UnsupportedImage, match=r"refused: it has a backing file \(base.qcow2\)"):
        cache.fetch(source(str(work / "top.qcow2"), top))
    assert leftovers(cache) == []


def test_qcow2_with_an_external_data_file_is_refused(cache: ImageCache, work: Path) -> None:
    secret = work / "secret"
    secret.write_bytes(b"root:hash:" * 100)
    qemu_img("create", "-f", "qcow2", "-o", f"data_file={secret}", str(work / "ext.qcow2"), "1M")
    data = (work / "ext.qcow2").read_bytes()

    with pytest.raises(UnsupportedImage, match="it has an external data file"):
        cache.fetch(source(str(work / "ext.qcow2"), data))
    assert leftovers(cache) == []


def test_corrupt_qcow2_fails_with_qemu_img_message(cache: ImageCache, work: Path) -> None:
    bogus = b"QFI\xfb" + os.urandom(4096)
    (work / "bad.qcow2").write_bytes(bogus)

    with pytest.raises(ImageProcessingError, match=r"qemu-img info failed \(exit 1\)"):
        cache.fetch(source(str(work / "bad.qcow2"), bogus))
    assert leftovers(cache) == []
