"""What a deploy hands cloud-init: the host name, SSH keys and user data, as the
config drive object the server builds the ISO from (API 1.56).

Shared by ``metalcast host create`` and the dashboard's deploy form, so that both
check the same things and build the same drive.  Each check raises
:class:`~metalcast.errors.InvalidInput` naming the ``label`` of what was given (a
command-line option, a form field).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from metalcast.errors import InvalidInput

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
#: how OpenSSH public keys begin
KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def check_hostname(hostname: str, *, label: str = "hostname") -> str:
    """A DNS host name (RFC 1123 labels), without a trailing dot.

    Raises:
        InvalidInput: not one.
    """
    labels = hostname.rstrip(".").split(".")
    if len(hostname) > 253 or not all(_LABEL.fullmatch(part) for part in labels):
        raise InvalidInput(
            f"{label} {hostname[:80]!r} is not a valid host name: use labels of letters, "
            "digits and '-' (not at either end), at most 63 characters each, joined by '.'"
        )
    return hostname.rstrip(".")


def is_private_key(text: str) -> bool:
    return "PRIVATE KEY" in text


def is_public_key(text: str) -> bool:
    """Whether ``text`` reads as an OpenSSH public key (type and key at least)."""
    return text.startswith(KEY_TYPES) and len(text.split()) >= 2


def public_keys(text: str, *, label: str = "SSH keys") -> list[str]:
    """The OpenSSH public keys of ``text``, one a line (blank lines and ``#``
    comments skipped).

    Raises:
        InvalidInput: a private key, or a line that is not a public key.
    """
    if is_private_key(text):
        raise InvalidInput(f"{label}: this is a private key: give the public one (.pub)")
    keys = []
    for number, line in enumerate(text.splitlines(), start=1):
        key = line.strip()
        if not key or key.startswith("#"):
            continue
        if not is_public_key(key):
            raise InvalidInput(
                f"{label}: line {number} is not an OpenSSH public key (ssh-ed25519 AAAA…)"
            )
        keys.append(key)
    return keys


def config_drive(
    *, hostname: str, ssh_keys: Sequence[str], user_data: str | None
) -> dict[str, Any]:
    """The config drive object: ``meta_data`` with the host name and the keys (the
    first named ``default``, as ``host create`` has always named its one key), and
    ``user_data`` when given."""
    names = ["default", *(f"key-{n}" for n in range(2, len(ssh_keys) + 1))]
    meta: dict[str, Any] = {"hostname": hostname}
    if ssh_keys:
        meta["public_keys"] = dict(zip(names, ssh_keys, strict=True))
    drive: dict[str, Any] = {"meta_data": meta}
    if user_data is not None:
        drive["user_data"] = user_data
    return drive
