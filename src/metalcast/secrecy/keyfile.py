"""The secret key on disk, and how it is rotated without a moment of unreadable data.

``<state_dir>/secret.key`` holds the key (a Fernet key, mode 0600), created on first
start.  A rotation (``metalcast secrets rotate-key``) goes in three steps, each safe
to interrupt:

1. :func:`begin_rotation` writes a new key beside the old one, ``secret.key.next``
   (an unfinished rotation reuses the one already there).  From then on every
   :func:`load` returns a box that encrypts with the new key and decrypts with both.
2. The caller encrypts every sealed value again with the new key.
3. :func:`finish_rotation` moves ``secret.key.next`` over ``secret.key``: the old key
   is gone.

Interrupted before step 3, the database holds values sealed with either key and both
are loaded; running the rotation again finishes it.

Errors::

    MetalcastError
    └── KeyFileError   the key file cannot be read, written, or is not a Fernet key
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet

from metalcast.errors import MetalcastError
from metalcast.secrecy.box import SecretBox

#: the key's file name in the state directory
KEY_FILE = "secret.key"
NEXT_SUFFIX = ".next"


class KeyFileError(MetalcastError):
    """A secret key file is unreadable, unwritable, or holds no Fernet key."""


def next_path(path: Path) -> Path:
    """Where the new key of an unfinished rotation is kept."""
    return path.with_name(path.name + NEXT_SUFFIX)


def load(path: Path) -> SecretBox:
    """The box for the key at ``path`` (created on first use), with the new key of an
    unfinished rotation encrypting.

    Raises:
        KeyFileError: a key file cannot be read or created, or is not a Fernet key.
    """
    if not path.exists():
        _create(path)
    current = _read(path)
    pending = next_path(path)
    if pending.exists():
        return SecretBox(_read(pending), current)
    return SecretBox(current)


def pending(path: Path) -> SecretBox:
    """The box of the new key alone (what remains once the rotation is finished).

    Raises:
        KeyFileError: no rotation is under way, or its key is unreadable.
    """
    new = next_path(path)
    if not new.exists():
        raise KeyFileError(f"No key rotation is under way ({new} does not exist).")
    return SecretBox(_read(new))


def begin_rotation(path: Path) -> SecretBox:
    """Create the new key (unless an unfinished rotation left one) and return the box
    that encrypts with it and decrypts with both keys.

    Raises:
        KeyFileError: there is no key to rotate, or a key file cannot be written.
    """
    if not path.exists():
        raise KeyFileError(f"There is no secret key at {path} to rotate.")
    pending = next_path(path)
    if not pending.exists():
        _create(pending)
    return load(path)


def finish_rotation(path: Path) -> None:
    """Replace the old key by the new one (atomically); the old key is gone.

    Raises:
        KeyFileError: no rotation is under way, or the key cannot be moved.
    """
    pending = next_path(path)
    if not pending.exists():
        raise KeyFileError(f"No key rotation is under way ({pending} does not exist).")
    try:
        os.replace(pending, path)
        _sync_dir(path.parent)
    except OSError as exc:
        raise KeyFileError(f"Cannot replace {path} by {pending}: {exc.strerror}") from exc


def _create(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process created it first: use theirs
    except OSError as exc:
        raise KeyFileError(f"Cannot create the secret key {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "wb") as fh:
        fh.write(Fernet.generate_key())
        fh.flush()
        os.fsync(fh.fileno())
    _sync_dir(path.parent)


def _read(path: Path) -> bytes:
    try:
        key = path.read_bytes().strip()
        Fernet(key)
    except OSError as exc:
        raise KeyFileError(f"Cannot read the secret key {path}: {exc.strerror}") from exc
    except ValueError:
        raise KeyFileError(
            f"{path} does not hold a Fernet key (32 url-safe base64 bytes)."
        ) from None
    return key


def _sync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` survive a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
