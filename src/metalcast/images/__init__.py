"""Instance images and config drives: sources, checksums, the cache, formats.

The conductor parses a node's ``instance_info`` with :func:`parse_image_source`,
fetches the image into the :class:`ImageCache` (verified, converted to raw, pinned
for the node) and hands the agent the raw image's URL and sha256; it turns the
provision request's ``configdrive`` into an ISO with :func:`prepare_config_drive`.

Modules: ``source`` (instance_info keys), ``access`` (which local files and hosts a
source may reach), ``download`` (streaming, hashing, sparse writes), ``formats``
(magic, qemu-img), ``cache`` (the cache), ``configdrive``, ``errors`` (the tree of
:class:`ImageError`).  This package imports only
``metalcast.errors``, ``config``, ``logs`` and ``secrecy``.
"""

from __future__ import annotations

from metalcast.images.cache import CachedImage, ImageCache, cache_key
from metalcast.images.configdrive import (
    ConfigDriveContent,
    ConfigDriveImage,
    ConfigDriveStore,
    InstanceIdentity,
    RemoteConfigDrive,
    build_config_drive,
    check_config_drive_iso,
    fetch_config_drive,
    prepare_config_drive,
    remove_config_drive,
)
from metalcast.images.download import DownloadProgress, Fetcher, ProgressCallback
from metalcast.images.errors import (
    ChecksumMismatch,
    ImageDownloadError,
    ImageError,
    ImageProcessingError,
    UnsupportedImage,
)
from metalcast.images.source import (
    Checksum,
    ChecksumAlgo,
    ChecksumFile,
    DiskFormat,
    ImageSource,
    parse_image_source,
)

__all__ = [
    "CachedImage",
    "Checksum",
    "ChecksumAlgo",
    "ChecksumFile",
    "ChecksumMismatch",
    "ConfigDriveContent",
    "ConfigDriveImage",
    "ConfigDriveStore",
    "DiskFormat",
    "DownloadProgress",
    "Fetcher",
    "ImageCache",
    "ImageDownloadError",
    "ImageError",
    "ImageProcessingError",
    "ImageSource",
    "InstanceIdentity",
    "ProgressCallback",
    "RemoteConfigDrive",
    "UnsupportedImage",
    "build_config_drive",
    "cache_key",
    "check_config_drive_iso",
    "fetch_config_drive",
    "parse_image_source",
    "prepare_config_drive",
    "remove_config_drive",
]
