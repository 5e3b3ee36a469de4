"""Password hashes in ``/etc/shadow``'s format: SHA-512 crypt (``$6$salt$hash``).

What the rescue ramdisk's SSH server (dropbear, through the C library's
``crypt(3)``) checks a tenant's rescue password against; Ironic hands its agent the
same kind of hash (``hashed_rescue_password``, sha512_crypt).

The hash is computed by the system's own ``libcrypt.so.1`` (libxcrypt on Debian 11
and later, the library that checks it in the ramdisk), called through :mod:`ctypes`
with its reentrant ``crypt_rn``.  Why not something else: Python's ``crypt`` module
is deprecated since 3.11 and gone in 3.13 (and warns on import); passlib is not a
dependency; a SHA-512 crypt written here would be one more implementation of a
password hash to get right.  The salt (16 characters, the most SHA-512 crypt takes)
comes from :mod:`secrets`.

Errors::

    MetalcastError
    └── PasswordHashUnavailable   no libcrypt.so.1, or it refuses SHA-512 crypt
"""

from __future__ import annotations

import ctypes
import functools
import hmac
import re
import secrets
import string
from collections.abc import Callable

from metalcast.errors import MetalcastError

LIBRARY = "libcrypt.so.1"
#: the characters of a crypt salt
SALT_ALPHABET = "./" + string.digits + string.ascii_uppercase + string.ascii_lowercase
SALT_LENGTH = 16
#: ``$6$`` [``rounds=N$``] salt ``$`` 86 characters: what :func:`sha512_crypt` makes and
#: what the agent accepts (nothing that could break a line of /etc/shadow)
SHA512_CRYPT = re.compile(r"^\$6\$(?:rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")
#: libxcrypt's ``struct crypt_data`` is 32 KiB; twice that leaves room for a bigger one
_DATA_SIZE = 65536


class PasswordHashUnavailable(MetalcastError):
    """The system's crypt library cannot make a SHA-512 crypt hash."""

    def __init__(self, cause: str) -> None:
        super().__init__(
            f"Cannot hash the rescue password with SHA-512 crypt: {cause}; install the "
            "C library's libcrypt1 package (libxcrypt)"
        )


#: ``char *crypt_rn(const char *phrase, const char *setting, void *data, int size)``
_CryptRn = Callable[[bytes, bytes, ctypes.Array[ctypes.c_char], int], bytes | None]


@functools.cache
def _crypt_rn() -> _CryptRn:
    try:
        library = ctypes.CDLL(LIBRARY, use_errno=True)
        function = library.crypt_rn
    except (OSError, AttributeError) as exc:
        raise PasswordHashUnavailable(f"{LIBRARY} is missing or too old ({exc})") from None
    function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int]
    function.restype = ctypes.c_char_p
    typed: _CryptRn = function
    return typed


def crypt(password: str, setting: str) -> str:
    """``crypt(3)`` of ``password`` with ``setting`` (a salt string or a whole hash).

    Raises:
        ValueError: the password holds a NUL character (C strings end there).
        PasswordHashUnavailable: the library refuses the setting.
    """
    if "\0" in password:
        raise ValueError("a password cannot hold a NUL character")
    data = ctypes.create_string_buffer(_DATA_SIZE)
    hashed: bytes | None = _crypt_rn()(password.encode(), setting.encode(), data, _DATA_SIZE)
    if not hashed or hashed.startswith(b"*"):
        raise PasswordHashUnavailable(f"{LIBRARY} refused the setting (errno {ctypes.get_errno()})")
    return hashed.decode("ascii")


def sha512_crypt(password: str, *, salt: str | None = None) -> str:
    """The SHA-512 crypt hash of ``password`` (``$6$<salt>$<86 characters>``), with a
    random 16-character salt unless one is given.

    Raises:
        ValueError: the password holds a NUL character, or the salt is not 1 to 16
            characters of ``[./0-9A-Za-z]``.
        PasswordHashUnavailable: no usable libcrypt.
    """
    if salt is None:
        salt = "".join(secrets.choice(SALT_ALPHABET) for _ in range(SALT_LENGTH))
    if not 0 < len(salt) <= SALT_LENGTH or set(salt) - set(SALT_ALPHABET):
        raise ValueError("a SHA-512 crypt salt is 1 to 16 characters of [./0-9A-Za-z]")
    hashed = crypt(password, f"$6${salt}$")
    if not SHA512_CRYPT.match(hashed):
        raise PasswordHashUnavailable(f"{LIBRARY} did not make a SHA-512 crypt hash")
    return hashed


def verify(password: str, hashed: str) -> bool:
    """Whether ``password`` hashes to ``hashed`` (compared in constant time).

    Raises:
        PasswordHashUnavailable: no usable libcrypt.
    """
    if "\0" in password or not SHA512_CRYPT.match(hashed):
        return False
    return hmac.compare_digest(crypt(password, hashed).encode(), hashed.encode())
