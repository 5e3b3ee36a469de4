"""Where an instance image comes from: Ironic's ``instance_info`` keys, parsed.

Ironic's keys are accepted as they are, so its clients work unchanged:

``image_source``
    an ``http://``, ``https://`` or ``file://`` URL, or an absolute local path.
    Glance image UUIDs are not supported.
``image_checksum``
    a hex digest whose length says the algorithm (64: sha256, 128: sha512; md5 is
    refused), or the URL of a checksum file (``<hex>  <name>`` lines, as written by
    ``sha256sum``).
``image_os_hash_algo`` + ``image_os_hash_value``
    the algorithm (sha256 or sha512) and the digest (or a checksum file URL); they win
    over ``image_checksum`` when both are given.
``image_disk_format``
    ``raw`` or ``qcow2``; when absent the format is detected after download.

Parsing raises :class:`metalcast.errors.InvalidInput` with a message that names the
key at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit, urlunsplit

from metalcast import secrecy
from metalcast.errors import InvalidInput

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_REMOTE_SCHEMES = ("http", "https")
_MD5_REFUSED = (
    "md5 checksums are not accepted: give image_os_hash_algo=sha256 and image_os_hash_value"
)


class ChecksumAlgo(StrEnum):
    """The digests metalcast verifies images with."""

    SHA256 = "sha256"
    SHA512 = "sha512"

    @property
    def hex_length(self) -> int:
        """How many hex digits a digest of this algorithm has."""
        return 64 if self is ChecksumAlgo.SHA256 else 128


class DiskFormat(StrEnum):
    """The image formats the cache accepts (qcow2 is converted to raw)."""

    RAW = "raw"
    QCOW2 = "qcow2"


@dataclass(frozen=True, slots=True)
class Checksum:
    """A digest and its algorithm; ``value`` is lower-case hex."""

    algo: ChecksumAlgo
    value: str

    def __str__(self) -> str:
        return f"{self.algo}:{self.value}"


@dataclass(frozen=True, slots=True)
class ChecksumFile:
    """A checksum given as the URL of a checksum file, resolved when fetching.

    ``algo`` is None when the digest's length must say it.
    """

    #: may hold credentials: left out of the repr
    url: str = field(repr=False)
    algo: ChecksumAlgo | None = None


@dataclass(frozen=True, slots=True)
class ImageSource:
    """An image to fetch: its URL, the checksum it must match and its format.

    ``url`` is ``http(s)://`` or ``file://`` (absolute paths are turned into file
    URLs); ``disk_format`` is None when it is to be detected.
    """

    #: may hold credentials: left out of the repr (see :attr:`display_url`)
    url: str = field(repr=False)
    checksum: Checksum | ChecksumFile
    disk_format: DiskFormat | None = None

    @property
    def local_path(self) -> Path | None:
        """The file a ``file://`` source names, else None."""
        return file_url_path(self.url)

    @property
    def filename(self) -> str:
        """The last path component of the URL (what a checksum file lists)."""
        return PurePosixPath(unquote(urlsplit(self.url).path)).name

    @property
    def display_url(self) -> str:
        """The URL with any password masked, for messages and logs."""
        return display_url(self.url)


def file_url_path(url: str) -> Path | None:
    """The local path a ``file://`` URL names, else None."""
    parts = urlsplit(url)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


def display_url(url: str) -> str:
    """``url`` as messages and logs may show it: its password and secret query
    values masked (:func:`metalcast.secrecy.display_url`)."""
    return secrecy.display_url(url)


def parse_image_source(instance_info: Mapping[str, object]) -> ImageSource:
    """The image a node's ``instance_info`` asks for.

    Raises:
        InvalidInput: ``image_source`` is missing or not a URL/path metalcast fetches,
            no usable checksum is given (md5 is refused), or ``image_disk_format`` is
            neither raw nor qcow2.
    """
    return ImageSource(
        url=parse_image_url(instance_info.get("image_source")),
        checksum=_parse_checksum_keys(instance_info),
        disk_format=_parse_disk_format(instance_info.get("image_disk_format")),
    )


def parse_image_url(value: object, *, key: str = "image_source") -> str:
    """An http(s) or file URL from an ``image_source``-like value.

    Raises:
        InvalidInput: not a string, not an http(s)/file URL or an absolute path.
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key} is required: give an http(s):// or file:// URL")
    text = value.strip()
    if text.startswith("/"):
        return Path(text).as_uri()
    parts = urlsplit(text)
    if parts.scheme in _REMOTE_SCHEMES and parts.hostname:
        return text
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path.startswith("/"):
        return urlunsplit(parts._replace(netloc=""))
    if _UUID.match(text):
        raise InvalidInput(
            f"{key} {text!r} looks like a Glance image UUID: metalcast supports only "
            "http://, https:// and file:// URLs and absolute file paths"
        )
    raise InvalidInput(
        f"{key} {text!r} is not supported: metalcast supports only http://, https:// "
        "and file:// URLs and absolute file paths"
    )


def parse_checksum(value: str, *, algo: ChecksumAlgo | None = None, key: str) -> Checksum:
    """A hex digest, its algorithm given or inferred from its length.

    Raises:
        InvalidInput: not hex, an md5 digest, or a length that fits no algorithm.
    """
    digest = value.strip().lower()
    if not _HEX.match(digest):
        raise InvalidInput(f"{key} {value!r} is not a hex digest")
    if len(digest) == 32:
        raise InvalidInput(_MD5_REFUSED)
    if algo is None:
        algo = next((a for a in ChecksumAlgo if a.hex_length == len(digest)), None)
        if algo is None:
            raise InvalidInput(
                f"{key} has {len(digest)} hex digits: a sha256 digest has 64, a sha512 digest 128"
            )
    elif len(digest) != algo.hex_length:
        raise InvalidInput(
            f"{key} has {len(digest)} hex digits but a {algo} digest has {algo.hex_length}"
        )
    return Checksum(algo, digest)


def parse_checksum_file(text: str, *, filename: str, algo: ChecksumAlgo | None) -> Checksum:
    """The digest for ``filename`` in a checksum file's text.

    Understands ``sha256sum`` output (``<hex>  <name>``, ``<hex> *<name>``), BSD
    style (``SHA256 (<name>) = <hex>``) and a file holding a single bare digest.

    Raises:
        InvalidInput: no line is for ``filename``, or its digest is unusable.
    """
    entries = [entry for line in text.splitlines() if (entry := _checksum_line(line))]
    named = [digest for name, digest in entries if name and PurePosixPath(name).name == filename]
    if named:
        return _digest_of_file(named[0], algo=algo, what=f"its line for {filename!r}")
    if len(entries) == 1 and not entries[0][0]:
        return _digest_of_file(entries[0][1], algo=algo, what="its one line")
    raise InvalidInput(f"the checksum file lists no checksum for {filename!r}")


def _digest_of_file(value: str, *, algo: ChecksumAlgo | None, what: str) -> Checksum:
    """A digest read from a checksum file.  Raises InvalidInput, never quoting the
    file: whoever named it must not learn what any URL serves."""
    if not _HEX.match(value.strip()):
        raise InvalidInput(f"the checksum file is unusable: {what} holds no hex digest")
    return parse_checksum(value, algo=algo, key="the checksum")


_BSD_LINE = re.compile(r"^\w+ \((?P<name>.+)\) = (?P<digest>[0-9a-fA-F]+)$")


def _checksum_line(line: str) -> tuple[str, str] | None:
    """(name, digest) for one line of a checksum file; name is '' for a bare digest."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if bsd := _BSD_LINE.match(line):
        return bsd["name"], bsd["digest"]
    digest, _, name = line.partition(" ")
    return name.strip().lstrip("*"), digest


def _parse_checksum_keys(info: Mapping[str, object]) -> Checksum | ChecksumFile:
    algo_value = info.get("image_os_hash_algo")
    hash_value = info.get("image_os_hash_value")
    if algo_value or hash_value:
        algo = _parse_algo(algo_value)
        return _checksum_or_file(hash_value, algo=algo, key="image_os_hash_value")
    checksum = info.get("image_checksum")
    if checksum:
        return _checksum_or_file(checksum, algo=None, key="image_checksum")
    raise InvalidInput(
        "A checksum is required: give image_os_hash_algo (sha256 or sha512) and "
        "image_os_hash_value, or image_checksum"
    )


def _parse_algo(value: object) -> ChecksumAlgo:
    if value in ("md5", "MD5"):
        raise InvalidInput(_MD5_REFUSED)
    if not isinstance(value, str) or value.lower() not in tuple(ChecksumAlgo):
        raise InvalidInput(
            f"image_os_hash_algo must be sha256 or sha512 (with image_os_hash_value), got {value!r}"
        )
    return ChecksumAlgo(value.lower())


def _checksum_or_file(
    value: object, *, algo: ChecksumAlgo | None, key: str
) -> Checksum | ChecksumFile:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{key} must be a hex digest or the URL of a checksum file")
    if "://" in value or value.startswith("/"):
        return ChecksumFile(parse_image_url(value, key=key), algo)
    return parse_checksum(value, algo=algo, key=key)


def _parse_disk_format(value: object) -> DiskFormat | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.lower() not in tuple(DiskFormat):
        raise InvalidInput(
            f"image_disk_format must be raw or qcow2 (or absent to detect it), got {value!r}"
        )
    return DiskFormat(value.lower())
