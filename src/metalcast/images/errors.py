"""What goes wrong while fetching, verifying, converting or building an image.

A malformed ``instance_info`` or ``configdrive`` is the caller's mistake and raises
:class:`metalcast.errors.InvalidInput` (400).  Everything that goes wrong once the
request made sense raises an :class:`ImageError`::

    MetalcastError
    ├── InvalidInput                  400 bad image_source, checksum, disk format, config drive
    └── ImageError                    502 an image could not be fetched or used
        ├── ImageDownloadError        502 HTTP error status, connection refused, timeout, TLS
        ├── ChecksumMismatch          502 the bytes do not match the checksum given
        ├── UnsupportedImage          400 not raw/qcow2, a backing or data file, wrong format
        └── ImageProcessingError      500 qemu-img/genisoimage missing or failing, disk full
"""

from __future__ import annotations

from metalcast.errors import MetalcastError


class ImageError(MetalcastError):
    """An image (or config drive) could not be fetched, verified or prepared."""

    status_code = 502


class ImageDownloadError(ImageError):
    """The server answered an error status, or could not be reached.

    ``status`` is the HTTP status when there was an answer, else None.
    """

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ChecksumMismatch(ImageError):
    """The downloaded bytes do not hash to the checksum the caller gave.

    The message never says what they hash to: that would hand whoever set the source
    the digest of anything the server can read.
    """

    def __init__(self, *, url: str, algo: str, expected: str) -> None:
        super().__init__(
            f"Checksum mismatch for {url}: the image does not match the {algo} checksum "
            f"given ({expected})"
        )
        self.url = url
        self.algo = algo
        self.expected = expected


class UnsupportedImage(ImageError):
    """The image is in a format metalcast does not write, or is unsafe to convert."""

    status_code = 400

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ImageProcessingError(ImageError):
    """A local step failed: a tool is missing or failed, the cache's disk is full."""

    status_code = 500
