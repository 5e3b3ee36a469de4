"""Secrets in driver settings: which keys are secret, masking, encryption at rest.

A value is secret when its key says so (``ipmi_password``, ``redfish_auth_token``,
…).  Secrets are encrypted with Fernet before they reach the database, masked as
``******`` in every API response, and redacted from every log line.  Only the
conductor decrypts them, right before a driver call.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from metalcast.errors import MetalcastError

MASK = "******"
_SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|private_key|credential", re.I)
_PREFIX = "fernet:"


def is_secret_key(key: str) -> bool:
    """True when a setting named ``key`` holds a secret."""
    return bool(_SECRET_KEY.search(key))


def mask(info: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``info`` with every secret value replaced by ``******``."""
    return {k: (MASK if is_secret_key(k) and v not in (None, "") else v) for k, v in info.items()}


class SecretBox:
    """Encrypts and decrypts secret values with one symmetric key."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._key = key

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (signing agent download URLs, naming cache
        files), derived from the secret key: it changes with the secret key and
        reveals nothing of it, and one purpose's key is useless for another."""
        return hmac.new(self._key, f"metalcast:{purpose}".encode(), hashlib.sha256).digest()

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """Load the key at ``path``, creating it (mode 0600) on first use."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, info: Mapping[str, object]) -> dict[str, object]:
        """Encrypt the secret values of ``info`` that are not encrypted yet."""
        out: dict[str, object] = {}
        for key, value in info.items():
            if is_secret_key(key) and isinstance(value, str) and not value.startswith(_PREFIX):
                value = _PREFIX + self._fernet.encrypt(value.encode()).decode()
            out[key] = value
        return out

    def reveal(self, info: Mapping[str, object]) -> dict[str, object]:
        """Decrypt the encrypted values of ``info``.

        Raises:
            MetalcastError: a value was sealed with another key.
        """
        out: dict[str, object] = {}
        for key, value in info.items():
            if isinstance(value, str) and value.startswith(_PREFIX):
                try:
                    value = self._fernet.decrypt(value[len(_PREFIX) :].encode()).decode()
                except InvalidToken:
                    raise MetalcastError(
                        f"Cannot decrypt '{key}': it was encrypted with another secret key"
                    ) from None
            out[key] = value
        return out
