"""Ironic's instance_info image keys become an ImageSource, or a clear InvalidInput."""

from __future__ import annotations

import pytest

from metalcast.errors import InvalidInput
from metalcast.images.source import (
    Checksum,
    ChecksumAlgo,
    ChecksumFile,
    DiskFormat,
    ImageSource,
    display_url,
    parse_checksum_file,
    parse_image_source,
)

SHA256 = "a" * 64
SHA512 = "b" * 128
MD5 = "c" * 32


def parse(**info: object) -> ImageSource:
    return parse_image_source({"image_checksum": SHA256, **info})


@pytest.mark.parametrize(
    "value",
    ["http://images.example/cirros.img", "https://images.example:8443/a/b.qcow2?x=1"],
)
def test_http_urls_are_kept(value: str) -> None:
    assert parse(image_source=value).url == value


def test_file_url_and_absolute_path_name_a_local_file() -> None:
    from_url = parse(image_source="file:///srv/images/disk%20one.raw")
    from_path = parse(image_source="/srv/images/disk one.raw")

    assert from_url.url == "file:///srv/images/disk%20one.raw"
    assert from_path.url == "file:///srv/images/disk%20one.raw"
    assert str(from_path.local_path) == "/srv/images/disk one.raw"
    assert from_path.filename == "disk one.raw"
    assert parse(image_source="http://h/x.img").local_path is None


def test_glance_uuid_is_refused_saying_only_urls_and_files_are_supported() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(image_source="6b3e2a8c-59b4-4d6e-9f6c-1d2b3c4d5e6f")

    assert "Glance" in caught.value.message
    assert "only http://, https:// and file:// URLs and absolute file paths" in str(caught.value)


@pytest.mark.parametrize(
    "value", ["ftp://h/x.img", "images/x.img", "http:///nohost", "file://otherhost/x", ""]
)
def test_other_image_sources_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match="image_source"):
        parse(image_source=value)


def test_missing_image_source_is_refused() -> None:
    with pytest.raises(InvalidInput, match="image_source is required"):
        parse_image_source({"image_checksum": SHA256})


def test_image_checksum_algorithm_is_inferred_from_its_length() -> None:
    assert parse(image_source="http://h/x", image_checksum=SHA256).checksum == Checksum(
        ChecksumAlgo.SHA256, SHA256
    )
    upper = parse(image_source="http://h/x", image_checksum=SHA512.upper())
    assert upper.checksum == Checksum(ChecksumAlgo.SHA512, SHA512)


def test_md5_image_checksum_is_refused_with_the_way_out() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse(image_source="http://h/x", image_checksum=MD5)

    assert caught.value.message == (
        "md5 checksums are not accepted: give image_os_hash_algo=sha256 and image_os_hash_value"
    )


@pytest.mark.parametrize(("value", "match"), [("z" * 64, "not a hex digest"), ("a" * 40, "40")])
def test_malformed_image_checksum_is_refused(value: str, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse(image_source="http://h/x", image_checksum=value)


def test_os_hash_keys_win_over_image_checksum() -> None:
    source = parse(
        image_source="http://h/x",
        image_checksum=MD5,
        image_os_hash_algo="sha512",
        image_os_hash_value=SHA512,
    )

    assert source.checksum == Checksum(ChecksumAlgo.SHA512, SHA512)


@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({"image_os_hash_algo": "md5", "image_os_hash_value": MD5}, "md5 checksums"),
        ({"image_os_hash_algo": "sha1", "image_os_hash_value": "a" * 40}, "sha256 or sha512"),
        ({"image_os_hash_value": SHA256}, "image_os_hash_algo must be"),
        ({"image_os_hash_algo": "sha256"}, "image_os_hash_value must be"),
        ({"image_os_hash_algo": "sha512", "image_os_hash_value": SHA256}, "128"),
    ],
)
def test_bad_os_hash_keys_are_refused(info: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        parse_image_source({"image_source": "http://h/x", **info})


def test_a_checksum_is_mandatory() -> None:
    with pytest.raises(InvalidInput, match="A checksum is required"):
        parse_image_source({"image_source": "http://h/x"})


def test_checksum_given_as_url_is_a_checksum_file() -> None:
    plain = parse(image_source="http://h/x.img", image_checksum="http://h/SHA256SUMS")
    with_algo = parse_image_source(
        {
            "image_source": "http://h/x.img",
            "image_os_hash_algo": "sha512",
            "image_os_hash_value": "/srv/SHA512SUMS",
        }
    )

    assert plain.checksum == ChecksumFile("http://h/SHA256SUMS", None)
    assert with_algo.checksum == ChecksumFile("file:///srv/SHA512SUMS", ChecksumAlgo.SHA512)


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), ("", None), ("raw", DiskFormat.RAW), ("QCOW2", "qcow2")]
)
def test_disk_format(value: str | None, expected: str | None) -> None:
    assert parse(image_source="http://h/x", image_disk_format=value).disk_format == expected


def test_other_disk_formats_are_refused() -> None:
    with pytest.raises(InvalidInput, match="image_disk_format must be raw or qcow2"):
        parse(image_source="http://h/x", image_disk_format="vmdk")


SUMS = f"""\
# produced by sha256sum
{"1" * 64}  other.img
{"2" * 64} *cirros.img
{"3" * 64}  ./nested/ubuntu.qcow2
"""


@pytest.mark.parametrize(
    ("filename", "digest"),
    [("cirros.img", "2" * 64), ("ubuntu.qcow2", "3" * 64), ("other.img", "1" * 64)],
)
def test_checksum_file_lines_are_matched_by_file_name(filename: str, digest: str) -> None:
    checksum = parse_checksum_file(SUMS, filename=filename, algo=None)

    assert checksum == Checksum(ChecksumAlgo.SHA256, digest)


def test_checksum_file_in_bsd_style_and_bare_digest() -> None:
    bsd = f"SHA512 (cirros.img) = {SHA512}\n"
    assert parse_checksum_file(bsd, filename="cirros.img", algo=None).value == SHA512
    assert parse_checksum_file(f"{SHA256}\n", filename="any", algo=None).value == SHA256


def test_checksum_file_without_the_image_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"lists no checksum for 'missing\.img'"):
        parse_checksum_file(SUMS, filename="missing.img", algo=None)


def test_checksum_file_with_md5_is_refused() -> None:
    with pytest.raises(InvalidInput, match="md5 checksums are not accepted"):
        parse_checksum_file(f"{MD5}  cirros.img\n", filename="cirros.img", algo=None)


def test_checksum_file_digest_must_fit_the_given_algorithm() -> None:
    with pytest.raises(InvalidInput, match="sha512 digest has 128"):
        parse_checksum_file(f"{SHA256}  x.img\n", filename="x.img", algo=ChecksumAlgo.SHA512)


def test_display_url_masks_a_password() -> None:
    assert display_url("https://u:s3cret@h:8/x") == "https://u:******@h:8/x"
    assert display_url("https://h/x") == "https://h/x"
