"""Password hashes of the ``builtin`` users: argon2id, never the password itself.

The parameters are OWASP's for argon2id (19 MiB, 2 passes, 1 lane): slow enough to
make a stolen database expensive to crack, light enough that a server verifying
several logins at once does not run out of memory.  A hash made with other
parameters still verifies; :func:`needs_rehash` says when to store a new one.

Nothing here logs, and no error message carries a password or a hash.
"""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)

#: shortest password a user may be given
MIN_LENGTH = 12
#: longest password accepted (hashing cost grows with its length)
MAX_LENGTH = 1024


@functools.cache
def _dummy_hash() -> str:
    """A hash of no one's password, verified against when a user is unknown so that
    an unknown user name costs as much time as a wrong password (no enumeration
    oracle).  Made on first use, not at import."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (a random salt each time)."""
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches the hash ``stored`` (None: the user has none,
    which matches nothing but costs the same time)."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with other parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def random_password() -> str:
    """A new random password (about 190 bits, URL-safe characters only)."""
    return secrets.token_urlsafe(24)
