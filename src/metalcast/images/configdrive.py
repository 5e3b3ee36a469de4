"""Config drives: the cloud-init ISO (label ``config-2``) a node reads at first boot.

Ironic's ``configdrive`` forms are accepted as they are:

- an object ``{"meta_data": {...}, "user_data": str|object|list, "network_data": {...},
  "vendor_data": {...}}``: metalcast builds the ISO (OpenStack layout, under
  ``openstack/2012-08-10/`` and ``openstack/latest/``, as Nova and Ironic write it);
- a string holding a gzipped ISO 9660 image, base64-encoded: it is unpacked and must
  carry the label ``config-2``;
- an ``http(s)://`` URL: recorded as a :class:`RemoteConfigDrive`, fetched later with
  :func:`fetch_config_drive` (which accepts an ISO, gzipped or not, base64 or not).

A malformed drive raises :class:`metalcast.errors.InvalidInput`; a tool that is
missing or fails raises :class:`ImageProcessingError`; a URL that cannot be fetched
raises :class:`ImageDownloadError`.

A drive holds the instance's user data (often secrets), so :class:`ConfigDriveStore`
keeps each node's in a directory of its own whose name is an HMAC of the node's UUID
(not guessable from it), mode 0700, the ISO mode 0600, and removes it with the
directory as soon as the deploy ends, however it ends.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from metalcast import cpus
from metalcast.errors import InvalidInput
from metalcast.images.download import Fetcher, private_dir
from metalcast.images.errors import ImageProcessingError
from metalcast.images.source import display_url

_log = logging.getLogger(__name__)
#: the largest config drive accepted, built or given (Ironic's partition is 64 MiB)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
LABEL = "config-2"
#: metadata versions written, oldest first (cloud-init reads the newest it knows)
VERSIONS = ("2012-08-10", "latest")
ISO_NAME = "configdrive.iso"
_PVD_OFFSET = 32768
_GZIP_MAGIC = b"\x1f\x8b"
_REQUEST_KEYS = frozenset({"meta_data", "user_data", "network_data", "vendor_data"})
_ISO_TOOLS = ("genisoimage", "mkisofs", "xorrisofs")


@dataclass(frozen=True, slots=True)
class InstanceIdentity:
    """What the conductor knows about the instance, the defaults of ``meta_data``.

    ``hostname`` defaults to ``name``; ``meta`` is the user metadata (Nova's
    ``meta``); ``public_keys`` maps a key name to an OpenSSH public key.
    """

    uuid: str
    name: str | None = None
    hostname: str | None = None
    public_keys: Mapping[str, str] = field(default_factory=dict)
    availability_zone: str = ""
    meta: Mapping[str, str] = field(default_factory=dict)

    def meta_data(self) -> dict[str, object]:
        """``meta_data.json`` for this instance, before the request's own keys."""
        data: dict[str, object] = {
            "uuid": self.uuid,
            "launch_index": 0,
            "availability_zone": self.availability_zone,
            "public_keys": dict(self.public_keys),
        }
        if self.name:
            data["name"] = self.name
        if self.hostname or self.name:
            data["hostname"] = self.hostname or self.name
        if self.meta:
            data["meta"] = dict(self.meta)
        return data


@dataclass(frozen=True, slots=True)
class ConfigDriveContent:
    """The files of a config drive (each written under every version directory)."""

    meta_data: Mapping[str, object]
    user_data: bytes | None = None
    network_data: Mapping[str, object] | None = None
    vendor_data: Mapping[str, object] = field(default_factory=dict)

    def files(self) -> dict[str, bytes]:
        """File name → content for one version directory."""
        files = {
            "meta_data.json": _json(self.meta_data),
            "vendor_data.json": _json(self.vendor_data),
        }
        if self.user_data is not None:
            files["user_data"] = self.user_data
        if self.network_data is not None:
            files["network_data.json"] = _json(self.network_data)
        return files


@dataclass(frozen=True, slots=True)
class ConfigDriveImage:
    """A config drive ISO written for a node: where, its sha256 and size in bytes."""

    path: Path
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class RemoteConfigDrive:
    """A config drive given as a URL, to fetch with :func:`fetch_config_drive`."""

    url: str


#: what :meth:`metalcast.secrecy.SecretBox.derive_key` derives directory names for
KEY_PURPOSE = "config-drive-names"


@dataclass(frozen=True, slots=True)
class ConfigDriveStore:
    """Where the nodes' config drives wait for their agents: ``root/<hmac of the
    node's UUID>/configdrive.iso``."""

    root: Path
    secret: bytes = field(repr=False)
    max_bytes: int = DEFAULT_MAX_BYTES

    def directory(self, node_uuid: str) -> Path:
        """The directory of ``node_uuid``'s config drive (not made here)."""
        name = hmac.new(self.secret, node_uuid.encode(), hashlib.sha256).hexdigest()[:32]
        return self.root / name

    def remove(self, node_uuid: str) -> bool:
        """Remove ``node_uuid``'s config drive and its directory; whether there was one.

        Raises:
            OSError: it cannot be removed (it stays: the caller must say so).
        """
        directory = self.directory(node_uuid)
        if not directory.exists():
            return False
        shutil.rmtree(directory)
        return True

    def sweep(self, *, keep: Iterable[str], older_than: float) -> int:
        """Remove every config drive but those of the nodes ``keep`` (UUIDs) and those
        made at or after ``older_than`` (a Unix time: a deploy that began meanwhile);
        how many were removed.  What cannot be removed stays (it is logged).
        """
        kept = {self.directory(uuid).name for uuid in keep}
        removed = 0
        for directory in self.root.glob("*"):
            try:
                if directory.name in kept or directory.stat().st_mtime >= older_than:
                    continue
                shutil.rmtree(directory)
                removed += 1
            except OSError as exc:
                _log.error("Cannot remove the config drive %s: %s", directory, exc)
        return removed


def prepare_config_drive(
    configdrive: str | Mapping[str, object],
    *,
    instance: InstanceIdentity,
    directory: Path,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ConfigDriveImage | RemoteConfigDrive:
    """Turn an API ``configdrive`` into an ISO in ``directory`` (the node's own), or
    a :class:`RemoteConfigDrive` for a URL.

    Raises:
        InvalidInput: a malformed object, bad base64, not gzip, not an ISO 9660 image
            labelled config-2, or larger than ``max_bytes``.
        ImageProcessingError: no ISO tool is installed, or it failed.
    """
    if isinstance(configdrive, Mapping):
        content = content_from_request(configdrive, instance=instance)
        return build_config_drive(content, directory=directory, max_bytes=max_bytes)
    if not isinstance(configdrive, str) or not configdrive.strip():
        raise InvalidInput(
            "Invalid configdrive: give an object, a gzipped and base64-encoded ISO image, "
            "or its http(s) URL"
        )
    text = configdrive.strip()
    if text.startswith(("http://", "https://")):
        return RemoteConfigDrive(text)
    return unpack_config_drive(text, directory=directory, max_bytes=max_bytes)


def content_from_request(
    configdrive: Mapping[str, object], *, instance: InstanceIdentity
) -> ConfigDriveContent:
    """The files for Ironic's object form; its ``meta_data`` keys win over the
    instance's.  ``user_data`` that is an object or a list is JSON-encoded, as Ironic
    does.

    Raises:
        InvalidInput: an unknown key, or a value of the wrong type.
    """
    unknown = sorted(set(configdrive) - _REQUEST_KEYS)
    if unknown:
        raise InvalidInput(
            f"Invalid configdrive: unknown keys {', '.join(unknown)}; allowed are "
            "meta_data, network_data, user_data and vendor_data"
        )
    meta_data = _object(configdrive, "meta_data") or {}
    return ConfigDriveContent(
        meta_data={**instance.meta_data(), **meta_data},
        user_data=_user_data(configdrive.get("user_data")),
        network_data=_object(configdrive, "network_data"),
        vendor_data=_object(configdrive, "vendor_data") or {},
    )


def build_config_drive(
    content: ConfigDriveContent, *, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES
) -> ConfigDriveImage:
    """Write ``content`` as an ISO 9660 image labelled config-2 in ``directory``.

    Raises:
        InvalidInput: the content or the ISO is larger than ``max_bytes``.
        ImageProcessingError: no ISO tool is installed, or it failed.
    """
    files = content.files()
    size = sum(len(data) for data in files.values()) * len(VERSIONS)
    if size > max_bytes:
        raise InvalidInput(f"Invalid configdrive: its files take {size} bytes, over {max_bytes}")
    private_dir(directory)
    with tempfile.TemporaryDirectory(dir=directory, prefix=".build-") as scratch:
        tree = Path(scratch) / "tree"
        for version in VERSIONS:
            version_dir = tree / "openstack" / version
            version_dir.mkdir(parents=True)
            for name, data in files.items():
                (version_dir / name).write_bytes(data)
        iso = Path(scratch) / ISO_NAME
        _make_iso(tree, iso)
        data = iso.read_bytes()
    _check_size(len(data), max_bytes)
    check_config_drive_iso(data)
    return _store(data, directory)


def unpack_config_drive(
    encoded: str, *, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES
) -> ConfigDriveImage:
    """Write Ironic's pre-built form (a gzipped ISO, base64-encoded) in ``directory``.

    Raises:
        InvalidInput: bad base64, not gzip, corrupt, larger than ``max_bytes`` once
            unpacked, or not an ISO 9660 image labelled config-2.
    """
    if len(encoded) > max_bytes * 2:  # base64 of gzip: well under twice the ISO
        raise _too_large(max_bytes)
    iso = _gunzip(_b64decode(encoded), max_bytes=max_bytes)
    check_config_drive_iso(iso)
    return _store(iso, directory)


def fetch_config_drive(
    remote: RemoteConfigDrive,
    *,
    directory: Path,
    fetcher: Fetcher,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ConfigDriveImage:
    """Download a config drive given as a URL and write it in ``directory``.  The URL
    may serve the ISO itself, gzipped, or gzipped and base64-encoded.

    Raises:
        ImageDownloadError: the URL cannot be fetched.
        InvalidInput: what it serves is not a config drive (see
            :func:`unpack_config_drive`) or too large.
    """
    data = bytearray()
    with fetcher.open(remote.url, what="Config drive") as stream:
        for block in stream.blocks:
            data += block
            if len(data) > max_bytes * 2:
                raise _too_large(max_bytes)
    iso = _decode_any(bytes(data), max_bytes=max_bytes, url=remote.url)
    check_config_drive_iso(iso)
    return _store(iso, directory)


def check_config_drive_iso(data: bytes) -> None:
    """Check that ``data`` starts like an ISO 9660 image labelled config-2 (its
    primary volume descriptor, at 32 KiB).

    Raises:
        InvalidInput: not an ISO 9660 image, or another label.
    """
    pvd = data[_PVD_OFFSET : _PVD_OFFSET + 2048]
    if len(pvd) < 2048 or pvd[1:6] != b"CD001" or pvd[0] != 1:
        raise InvalidInput(
            "Invalid configdrive: not an ISO 9660 image (no primary volume descriptor "
            f"'CD001' at offset {_PVD_OFFSET})"
        )
    label = pvd[40:72].decode("ascii", errors="replace").strip()
    if label.lower() != LABEL:
        raise InvalidInput(
            f"Invalid configdrive: the ISO's volume label is {label!r}, not {LABEL!r} "
            "(cloud-init finds the drive by that label)"
        )


def remove_config_drive(directory: Path) -> None:
    """Remove the config drive written in ``directory`` (if any), and the directory.

    Raises:
        OSError: it cannot be removed.
    """
    if directory.exists():
        shutil.rmtree(directory)


def _object(request: Mapping[str, object], key: str) -> dict[str, object] | None:
    value = request.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInput(f"Invalid configdrive: {key} must be an object")
    return {str(k): v for k, v in value.items()}


def _user_data(value: object) -> bytes | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict | list):
        return json.dumps(value).encode()
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bytes):
        return value
    raise InvalidInput("Invalid configdrive: user_data must be a string, an object or a list")


def _json(value: Mapping[str, object]) -> bytes:
    try:
        return json.dumps(value).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"Invalid configdrive: not JSON-serialisable ({exc})") from None


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(
            "Invalid configdrive: a string must be a gzipped ISO image, base64-encoded, or "
            f"an http(s) URL; this is not valid base64 ({exc})"
        ) from None


def _gunzip(data: bytes, *, max_bytes: int) -> bytes:
    if not data.startswith(_GZIP_MAGIC):
        raise InvalidInput(
            "Invalid configdrive: the base64 data is not gzip-compressed (Ironic's form is a "
            "gzipped ISO 9660 image, base64-encoded)"
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        iso = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise InvalidInput(f"Invalid configdrive: corrupt gzip data ({exc})") from None
    _check_size(len(iso), max_bytes)
    if not inflater.eof:
        raise InvalidInput("Invalid configdrive: truncated gzip data")
    return iso


def _decode_any(data: bytes, *, max_bytes: int, url: str) -> bytes:
    """The ISO a config drive URL served: plain, gzipped, or gzipped and base64."""
    if data[_PVD_OFFSET + 1 : _PVD_OFFSET + 6] == b"CD001":
        _check_size(len(data), max_bytes)
        return data
    if data.startswith(_GZIP_MAGIC):
        return _gunzip(data, max_bytes=max_bytes)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidInput(
            f"Invalid configdrive: {display_url(url)} serves neither an ISO image nor a "
            "gzipped one, base64-encoded or not"
        ) from None
    return _gunzip(_b64decode(text), max_bytes=max_bytes)


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise _too_large(max_bytes)


def _too_large(max_bytes: int) -> InvalidInput:
    return InvalidInput(
        f"Invalid configdrive: larger than the {max_bytes} bytes a config drive may take"
    )


def _make_iso(tree: Path, iso: Path) -> None:
    tool = next((t for t in _ISO_TOOLS if shutil.which(t)), None)
    if tool is None:
        raise ImageProcessingError(
            "No ISO tool is installed to build config drives: install genisoimage "
            "(or mkisofs, xorriso)"
        )
    command = [
        tool, "-o", str(iso), "-ldots", "-allow-lowercase", "-allow-multidot", "-l",
        "-publisher", "metalcast", "-quiet", "-J", "-r", "-V", LABEL, str(tree),
    ]  # fmt: skip
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=cpus.child_setup(),
    )
    if done.returncode != 0:
        raise ImageProcessingError(
            f"{tool} failed to build the config drive (exit {done.returncode}): "
            f"{done.stderr.strip()}"
        )


def _store(iso: bytes, directory: Path) -> ConfigDriveImage:
    """Write ``iso`` as the node's config drive (mode 0600), atomically."""
    private_dir(directory)
    target = directory / ISO_NAME
    tmp = directory / f".{ISO_NAME}.tmp"
    try:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as fh:
            fh.write(iso)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ImageProcessingError(f"Cannot write {target}: {exc.strerror or exc}") from exc
    return ConfigDriveImage(target, hashlib.sha256(iso).hexdigest(), len(iso))
