"""write_image: a raw image streamed over HTTP onto the root disk."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_machine import MIB, FakeMachine, FileServer, sha256

from metalcast_agent import imagewrite
from metalcast_agent.commands import CommandContext
from metalcast_agent.errors import ChecksumMismatch, DiskError, DownloadError, InvalidArguments
from metalcast_agent.imagewrite import (
    DEPTH,
    Source,
    Streamed,
    Target,
    stream_to_device,
    write_image,
)


def image_with_holes() -> bytes:
    """8 MiB + a ragged tail: data, a zero block, data, zero blocks, a partial block."""
    image = bytearray(8 * MIB + 12345)
    image[0:512] = os.urandom(512)
    image[2 * MIB : 2 * MIB + 4096] = os.urandom(4096)
    image[5 * MIB + 17] = 0xFF
    image[-100:] = os.urandom(100)
    return bytes(image)


def args(files: FileServer, path: str, data: bytes, **extra: object) -> dict[str, object]:
    files.files[path] = data
    return {
        "url": files.url(path),
        "checksum_algo": "sha256",
        "checksum": sha256(data),
        "size": len(data),
        "root_device": None,
    } | extra


def test_image_overwrites_garbage_byte_for_byte(machine: FakeMachine, files: FileServer) -> None:
    disk = machine.add_disk("vda", 16 * MIB)
    disk.write_bytes(os.urandom(16 * MIB))
    image = image_with_holes()

    result = write_image(args(files, "/image.raw", image), CommandContext(machine.env))

    assert machine.disk_bytes("vda")[: len(image)] == image
    assert result["device"] == "/dev/vda"
    assert result["bytes"] == len(image)
    assert result["checksum"] == sha256(image)
    # every block of the garbage disk differed from the image, zero blocks included
    assert result["written"] == len(image)


def test_holes_stay_unallocated_on_a_fresh_sparse_disk(
    machine: FakeMachine, files: FileServer
) -> None:
    disk = machine.add_disk("vda", 64 * MIB)
    image = bytearray(32 * MIB)
    image[:MIB] = os.urandom(MIB)
    image[20 * MIB : 21 * MIB] = os.urandom(MIB)

    result = write_image(args(files, "/image.raw", bytes(image)), CommandContext(machine.env))

    assert result["written"] == 2 * MIB
    assert disk.read_bytes()[: len(image)] == bytes(image)
    allocated = disk.stat().st_blocks * 512
    assert allocated <= 2 * MIB + 64 * 1024, f"{allocated} bytes allocated for 2 MiB of data"


def test_the_smallest_disk_that_holds_the_image_is_chosen(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 64 * MIB)
    machine.add_disk("vdb", 4 * MIB)
    machine.add_disk("vdc", 16 * MIB)
    image = os.urandom(5 * MIB)

    result = write_image(args(files, "/image.raw", image), CommandContext(machine.env))

    assert result["device"] == "/dev/vdc"
    assert machine.disk_bytes("vdc")[: len(image)] == image


def test_root_device_hints_pick_the_disk(machine: FakeMachine, files: FileServer) -> None:
    machine.add_disk("vda", 16 * MIB, serial="SMALL")
    machine.add_disk("vdb", 32 * MIB, serial="BIG")
    image = os.urandom(MIB)

    result = write_image(
        args(files, "/image.raw", image, root_device={"serial": "big"}),
        CommandContext(machine.env),
    )

    assert result["device"] == "/dev/vdb"


def test_progress_reaches_the_total(machine: FakeMachine, files: FileServer) -> None:
    machine.add_disk("vda", 16 * MIB)
    image = os.urandom(3 * MIB + 5)
    seen: list[tuple[int, int | None]] = []

    write_image(
        args(files, "/image.raw", image),
        CommandContext(machine.env, report_progress=lambda done, total: seen.append((done, total))),
    )

    assert seen == [
        (MIB, len(image)),
        (2 * MIB, len(image)),
        (3 * MIB, len(image)),
        (len(image), len(image)),
    ]


def test_an_image_without_size_or_content_length_is_written(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 16 * MIB)
    image = image_with_holes()
    files.unsized.add("/image.raw")

    result = write_image(args(files, "/image.raw", image, size=None), CommandContext(machine.env))

    assert result["bytes"] == len(image)
    assert machine.disk_bytes("vda")[: len(image)] == image


def test_checksum_mismatch_names_the_expected_checksum_only(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 16 * MIB)
    image = os.urandom(MIB)
    wrong = "ab" * 32

    with pytest.raises(ChecksumMismatch) as caught:
        write_image(args(files, "/image.raw", image, checksum=wrong), CommandContext(machine.env))

    assert str(caught.value) == (
        f"Checksum mismatch for {files.url('/image.raw')}: what was written does not match "
        f"the sha256 checksum given ({wrong})"
    )
    assert sha256(image) not in str(caught.value)  # it would reach the node's last_error


def test_http_404_names_the_url_and_status(machine: FakeMachine, files: FileServer) -> None:
    machine.add_disk("vda", 16 * MIB)
    url = files.url("/missing.raw")

    with pytest.raises(DownloadError) as caught:
        write_image(
            {"url": url, "checksum_algo": "sha256", "checksum": "00", "size": None},
            CommandContext(machine.env),
        )

    assert str(caught.value) == f"Image download from {url} failed: HTTP 404 Not Found"


def test_a_secret_in_the_url_is_not_shown(machine: FakeMachine, files: FileServer) -> None:
    machine.add_disk("vda", 16 * MIB)
    url = files.url("/missing.raw?temp_url_sig=deadbeef&temp_url_expires=1")

    with pytest.raises(DownloadError) as caught:
        write_image(
            {"url": url, "checksum_algo": "sha256", "checksum": "00"}, CommandContext(machine.env)
        )

    assert "deadbeef" not in str(caught.value)
    assert "temp_url_sig=***" in str(caught.value)


def test_a_disk_too_small_is_refused_before_writing(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 16 * MIB)
    image = os.urandom(MIB) + bytes(31 * MIB)

    with pytest.raises(DiskError) as caught:
        write_image(args(files, "/image.raw", image), CommandContext(machine.env))

    assert str(caught.value) == "Disk /dev/vda (16.0 MiB) is too small for the image (32.0 MiB)"
    assert machine.disk_bytes("vda") == bytes(16 * MIB)


def test_a_disk_too_small_for_an_unsized_stream_fails(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 2 * MIB)
    files.unsized.add("/image.raw")

    with pytest.raises(DiskError, match=r"^Disk /dev/vda \(2.0 MiB\) is too small for the image"):
        write_image(
            args(files, "/image.raw", os.urandom(3 * MIB), size=None), CommandContext(machine.env)
        )


def test_a_size_that_differs_from_the_download_fails(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 16 * MIB)
    url = files.url("/image.raw")

    with pytest.raises(DownloadError) as caught:
        write_image(
            args(files, "/image.raw", os.urandom(MIB), size=MIB + 1), CommandContext(machine.env)
        )

    assert str(caught.value) == (
        f"Image download from {url} failed: the server sends {MIB} bytes, the image is {MIB + 1}"
    )


def test_sha512_is_supported_and_md5_is_not(machine: FakeMachine, files: FileServer) -> None:
    import hashlib

    machine.add_disk("vda", 16 * MIB)
    image = os.urandom(MIB)
    good = args(files, "/image.raw", image, checksum_algo="sha512")
    good["checksum"] = hashlib.sha512(image).hexdigest().upper()

    assert (
        write_image(good, CommandContext(machine.env))["checksum"]
        == hashlib.sha512(image).hexdigest()
    )
    with pytest.raises(
        InvalidArguments, match="checksum_algo 'md5' is not supported; use sha256 or sha512"
    ):
        write_image(good | {"checksum_algo": "md5"}, CommandContext(machine.env))


def test_missing_arguments_are_named(machine: FakeMachine) -> None:
    with pytest.raises(
        InvalidArguments, match="write_image needs a non-empty string argument 'url'"
    ):
        write_image({"checksum_algo": "sha256", "checksum": "00"}, CommandContext(machine.env))


class _Stream:
    """A download that serves ``data`` and then fails with ``error`` (or ends)."""

    def __init__(self, data: bytes, error: OSError | None = None) -> None:
        self.data, self.error, self.position = data, error, 0

    def readinto(self, buffer: bytearray | memoryview, /) -> int:
        chunk = self.data[self.position : self.position + min(len(buffer), 256 * 1024)]
        if not chunk and self.error is not None:
            raise self.error
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def _pipeline_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name in ("image-hash", "image-write")]


def test_a_connection_lost_midway_fails_and_leaves_no_thread(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(16 * MIB))
    stream = _Stream(os.urandom(5 * MIB + 7), ConnectionResetError(104, "Connection reset"))
    source = Source(stream, "http://conductor/image.raw", "Image download", 10 * MIB)
    fd = os.open(disk, os.O_RDWR)
    try:
        with pytest.raises(DownloadError) as caught:
            stream_to_device(
                source, Target(fd, "/dev/vda", 0, 16 * MIB), algorithm="sha256", progress=print
            )
    finally:
        os.close(fd)

    assert str(caught.value) == (
        "Image download from http://conductor/image.raw failed: [Errno 104] Connection reset"
    )
    assert _pipeline_threads() == []
    # what had arrived before the connection broke is on the disk
    assert disk.read_bytes()[: 5 * MIB] == stream.data[: 5 * MIB]


def test_a_failing_disk_stops_the_download_and_names_the_offset(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(16 * MIB))
    stream = _Stream(os.urandom(64 * MIB))
    source = Source(stream, "http://conductor/image.raw", "Image download", 64 * MIB)
    fd = os.open(disk, os.O_RDONLY)  # every write fails: EBADF
    try:
        with pytest.raises(DiskError) as caught:
            stream_to_device(
                source, Target(fd, "/dev/vda", 0, 64 * MIB), algorithm="sha256", progress=print
            )
    finally:
        os.close(fd)

    assert str(caught.value) == "Writing /dev/vda at byte 0 failed: Bad file descriptor"
    assert _pipeline_threads() == []
    # the reader stopped soon after the first write failed: it did not fetch 64 MiB
    assert stream.position <= (DEPTH + 2) * MIB


def test_blocks_land_in_order_whatever_the_thread_timing(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    disk.write_bytes(b"\xaa" * 40 * MIB)
    image = b"".join(bytes([n]) * MIB if n % 3 else bytes(MIB) for n in range(1, 33)) + b"end"
    seen: list[int] = []
    source = Source(_Stream(image), "u", "Image download", len(image))
    fd = os.open(disk, os.O_RDWR)
    try:
        streamed = stream_to_device(
            source,
            Target(fd, "/dev/vda", 4096, 40 * MIB - 4096),
            algorithm="sha512",
            progress=lambda done, total: seen.append(done),
        )
    finally:
        os.close(fd)

    assert disk.read_bytes()[4096 : 4096 + len(image)] == image
    assert streamed == Streamed(len(image), len(image), hashlib.sha512(image).hexdigest())
    assert seen == sorted(seen) and seen[-1] == len(image)


def test_whole_blocks_go_through_o_direct_and_a_ragged_tail_through_the_page_cache(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    disk.write_bytes(bytes(8 * MIB))
    image = os.urandom(3 * MIB) + b"tail"
    # the page-cache descriptor cannot write: only the O_DIRECT one can
    cached, direct = os.open(disk, os.O_RDONLY), os.open(disk, os.O_RDWR | os.O_DIRECT)
    try:
        with pytest.raises(DiskError) as caught:
            stream_to_device(
                Source(_Stream(image), "u", "Image download", len(image)),
                Target(cached, "/dev/vda", 0, 8 * MIB, direct),
                algorithm="sha256",
                progress=print,
            )
    finally:
        os.close(cached)
        os.close(direct)

    assert str(caught.value) == f"Writing /dev/vda at byte {3 * MIB} failed: Bad file descriptor"
    assert disk.read_bytes()[: 3 * MIB] == image[: 3 * MIB]


def test_without_o_direct_the_page_cache_takes_everything(
    machine: FakeMachine, files: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    @contextlib.contextmanager
    def refused(path: Path) -> Iterator[None]:
        yield None  # as on tmpfs, which has no O_DIRECT

    monkeypatch.setattr(imagewrite, "open_direct", refused)
    disk = machine.add_disk("vda", 16 * MIB)
    disk.write_bytes(os.urandom(16 * MIB))
    image = image_with_holes()

    result = write_image(args(files, "/image.raw", image), CommandContext(machine.env))

    assert machine.disk_bytes("vda")[: len(image)] == image
    assert result["written"] == len(image)
