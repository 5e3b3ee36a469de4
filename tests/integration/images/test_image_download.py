"""Images fetched over real HTTP(S) from a server on loopback, and how that fails."""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
from pathlib import Path

import pytest
from image_http_server import ImageServer, self_signed_certificate

from metalcast.images.cache import ImageCache
from metalcast.images.download import DownloadProgress, Fetcher
from metalcast.images.errors import ChecksumMismatch, ImageDownloadError
from metalcast.images.source import Checksum, ImageSource, parse_image_source

MIB = 1024 * 1024
SECRET = b"cache-names-key" * 2


def source_for(url: str, data: bytes, **extra: object) -> ImageSource:
    info = {"image_source": url, "image_checksum": hashlib.sha256(data).hexdigest(), **extra}
    return parse_image_source(info)


def leftovers(cache: ImageCache) -> list[str]:
    return sorted(p.name for p in cache.root.iterdir() if p.name != ".evict.lock")


@pytest.fixture
def cache(tmp_path: Path) -> ImageCache:
    return ImageCache(tmp_path / "cache", 1 << 30, secret=SECRET)


def test_raw_image_is_downloaded_and_verified(image_server: ImageServer, cache: ImageCache) -> None:
    data = os.urandom(5 * MIB + 123)
    url = image_server.serve("/images/disk.raw", data)
    reports: list[DownloadProgress] = []

    image = cache.fetch(source_for(url, data), reports.append)

    assert image.path.read_bytes() == data
    assert image.raw_sha256 == hashlib.sha256(data).hexdigest()
    assert image.source_url == url
    assert reports[-1] == DownloadProgress(len(data), len(data), reports[-1].rate)
    assert all(r.total == len(data) for r in reports)
    assert image_server.requests["/images/disk.raw"] == 1


def test_same_image_is_downloaded_once(image_server: ImageServer, cache: ImageCache) -> None:
    data = os.urandom(MIB)
    url = image_server.serve("/disk.raw", data)

    first = cache.fetch(source_for(url, data))
    second = cache.fetch(source_for(url, data))

    assert first.key == second.key
    assert image_server.requests["/disk.raw"] == 1


def test_redirects_are_followed(image_server: ImageServer, cache: ImageCache) -> None:
    data = os.urandom(MIB)
    target = image_server.serve("/real.raw", data)
    image_server.redirects["/moved.raw"] = target

    image = cache.fetch(source_for(image_server.url + "/moved.raw", data))

    assert image.path.read_bytes() == data


def test_http_404_is_named_and_leaves_nothing(image_server: ImageServer, cache: ImageCache) -> None:
    url = image_server.url + "/missing.raw"

    with pytest.raises(ImageDownloadError) as caught:
        cache.fetch(source_for(url, b""))

    assert caught.value.message == f"Image download from {url} failed: HTTP 404 Not Found"
    assert caught.value.status == 404
    assert caught.value.status_code == 502
    assert leftovers(cache) == []


def test_password_in_the_url_is_masked(image_server: ImageServer, cache: ImageCache) -> None:
    url = image_server.url.replace("://", "://deploy:s3cret@") + "/missing.raw"

    with pytest.raises(ImageDownloadError) as caught:
        cache.fetch(source_for(url, b""))

    assert "s3cret" not in caught.value.message
    assert "deploy:******@127.0.0.1" in caught.value.message


def test_connection_refused_is_named(cache: ImageCache) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}/disk.raw"

        with pytest.raises(ImageDownloadError) as caught:
            cache.fetch(source_for(url, b""))

    assert caught.value.message.startswith(f"Image download from {url} failed: cannot connect:")
    assert caught.value.status is None
    assert leftovers(cache) == []


def test_checksum_mismatch_leaves_nothing(image_server: ImageServer, cache: ImageCache) -> None:
    url = image_server.serve("/disk.raw", b"the real image" * 1000)
    source = source_for(url, b"what the user thinks it is")
    assert isinstance(source.checksum, Checksum)

    with pytest.raises(ChecksumMismatch) as caught:
        cache.fetch(source)

    assert caught.value.message == (
        f"Checksum mismatch for {url}: the image does not match the sha256 checksum given "
        f"({source.checksum.value})"
    )
    assert hashlib.sha256(b"the real image" * 1000).hexdigest() not in caught.value.message
    assert leftovers(cache) == []


def test_truncated_body_fails_and_leaves_nothing(
    image_server: ImageServer, cache: ImageCache
) -> None:
    data = os.urandom(MIB)
    url = image_server.serve("/short.raw", data)
    image_server.truncated.add("/short.raw")

    with pytest.raises(ImageDownloadError, match=f"Image download from {url} failed: "):
        cache.fetch(source_for(url, data))
    assert leftovers(cache) == []


def test_checksum_given_as_the_url_of_a_checksum_file(
    image_server: ImageServer, cache: ImageCache
) -> None:
    data = os.urandom(2 * MIB)
    url = image_server.serve("/images/cirros.raw", data)
    digest = hashlib.sha512(data).hexdigest()
    sums = image_server.serve(
        "/images/SHA512SUMS", f"{'1' * 128}  other.raw\n{digest} *cirros.raw\n".encode()
    )

    image = cache.fetch(parse_image_source({"image_source": url, "image_checksum": sums}))

    assert image.checksum.value == digest
    assert image.path.read_bytes() == data
    assert image_server.requests["/images/SHA512SUMS"] == 1


def test_missing_checksum_file_is_named(image_server: ImageServer, cache: ImageCache) -> None:
    url = image_server.serve("/cirros.raw", b"x")
    sums = image_server.url + "/SHA256SUMS"

    with pytest.raises(ImageDownloadError) as caught:
        cache.fetch(parse_image_source({"image_source": url, "image_checksum": sums}))

    assert caught.value.message == f"Checksum download from {sums} failed: HTTP 404 Not Found"
    assert image_server.requests["/cirros.raw"] == 0


def test_https_certificates_are_verified(tmp_path: Path, cache: ImageCache) -> None:
    cert, key = self_signed_certificate(tmp_path)
    data = os.urandom(MIB)
    server = ImageServer()
    server.use_tls(cert, key)
    with server.running():
        url = server.serve("/disk.raw", data)

        with pytest.raises(ImageDownloadError, match="CERTIFICATE_VERIFY_FAILED"):
            cache.fetch(source_for(url, data))

        trusting = ImageCache(
            cache.root,
            cache.max_bytes,
            secret=SECRET,
            fetcher=Fetcher(verify=ssl.create_default_context(cafile=str(cert))),
        )
        image = trusting.fetch(source_for(url, data))

    assert image.path.read_bytes() == data
    assert leftovers(cache) == sorted(
        f"{image.key}{suffix}" for suffix in (".fetch.lock", ".json", ".raw", ".use.lock")
    )


# ------------------------------------------------ sources set by non-administrators


def tenant_cache(tmp_path: Path, *allowed: str) -> ImageCache:
    fetcher = Fetcher(allowed_internal=allowed)
    return ImageCache(tmp_path / "tenant-cache", 1 << 30, secret=SECRET, fetcher=fetcher)


def test_a_non_administrators_url_may_not_reach_loopback(
    image_server: ImageServer, tmp_path: Path
) -> None:
    data = os.urandom(MIB)
    url = image_server.serve("/internal.raw", data)
    cache = tenant_cache(tmp_path)

    with pytest.raises(ImageDownloadError, match="may not reach loopback, link-local"):
        cache.fetch(source_for(url, data), tenant=True)
    assert image_server.requests["/internal.raw"] == 0  # not even asked

    # the same URL set by an administrator is fetched
    assert cache.fetch(source_for(url, data)).path.read_bytes() == data


def test_an_allowed_internal_network_is_reachable_but_no_further(
    image_server: ImageServer, tmp_path: Path
) -> None:
    data = os.urandom(MIB)
    url = image_server.serve("/mirror.raw", data)
    image_server.redirects["/elsewhere.raw"] = url.replace("127.0.0.1", "127.0.0.2")
    cache = tenant_cache(tmp_path, "127.0.0.1/32")

    image = cache.fetch(source_for(url, data), tenant=True)
    assert image.path.read_bytes() == data

    # a redirect is a new connection, checked again: 127.0.0.2 is not allowed
    redirected = f"{image_server.url}/elsewhere.raw"
    with pytest.raises(ImageDownloadError, match=r"127\.0\.0\.2 is a loopback address"):
        cache.fetch(source_for(redirected, b"other"), tenant=True)
    assert image_server.requests["/elsewhere.raw"] == 1


def test_a_non_administrators_checksum_file_may_not_reach_loopback(
    image_server: ImageServer, tmp_path: Path
) -> None:
    checksum_url = image_server.serve("/SHA256SUMS", b"0" * 64 + b"  disk.raw\n")
    info = {"image_source": "http://203.0.113.9/disk.raw", "image_checksum": checksum_url}

    with pytest.raises(ImageDownloadError, match=r"Checksum download .* may not reach loopback"):
        tenant_cache(tmp_path).fetch(parse_image_source(info), tenant=True)
    assert image_server.requests["/SHA256SUMS"] == 0


def test_a_non_administrators_https_download_still_verifies_the_certificate(
    tmp_path: Path,
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    data = os.urandom(MIB)
    server = ImageServer()
    server.use_tls(cert, key)
    allowed = ("127.0.0.1/32",)  # the guarded transport connects to the checked address
    with server.running():
        url = server.serve("/disk.raw", data)
        untrusting = tenant_cache(tmp_path, *allowed)
        with pytest.raises(ImageDownloadError, match="CERTIFICATE_VERIFY_FAILED"):
            untrusting.fetch(source_for(url, data), tenant=True)

        context = ssl.create_default_context(cafile=str(cert))
        fetcher = Fetcher(verify=context, allowed_internal=allowed)
        cache = ImageCache(tmp_path / "tls-cache", 1 << 30, secret=SECRET, fetcher=fetcher)
        image = cache.fetch(source_for(url, data), tenant=True)

    assert image.path.read_bytes() == data
