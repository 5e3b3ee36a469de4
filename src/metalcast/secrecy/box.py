"""Encryption at rest: sealing the secrets of JSON values with Fernet.

:meth:`SecretBox.seal` encrypts, at any depth, what :mod:`metalcast.secrecy.detect`
calls secret: the whole value of a secret key (strings as ``fernet:<token>``, other
JSON values as ``fernet+json:<token>``), and every string that holds a secret (a URL
with a password, ``password=…``) whole, followed by the text it may be shown as
(``fernet:<token> http://user:******@host/image.raw``).  Sealing is idempotent.
:meth:`SecretBox.reveal` turns every sealed value back into what was sealed; only the
conductor calls it, right where it needs a secret.

The box holds one key, or two while a key rotation is unfinished (the new one
encrypts, both decrypt: :mod:`metalcast.secrecy.keyfile`).

Errors::

    MetalcastError
    └── UndecryptableSecret   a value was sealed with a key this box does not hold
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from metalcast.errors import MetalcastError
from metalcast.secrecy.detect import holds_secret, is_secret_key, scrub_text, sealed, sealed_parts


class UndecryptableSecret(MetalcastError):
    """A sealed value cannot be decrypted with the keys this box holds."""

    def __init__(self, where: str) -> None:
        super().__init__(
            f"Cannot decrypt '{where}': it was encrypted with another secret key "
            "(is this the state directory's secret.key?)"
        )


class SecretBox:
    """Seals and reveals secrets with one key, plus older ones that only decrypt."""

    def __init__(self, key: bytes, *older: bytes) -> None:
        """Raises ValueError: a key is not a Fernet key."""
        self._fernet = MultiFernet([Fernet(k) for k in (key, *older)])
        self._key = key
        #: True while an older key is still accepted (a rotation is unfinished)
        self.rotating = bool(older)

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (signing agent download URLs, naming cache
        files), derived from the current secret key: it changes with the secret key
        (a rotation renames the image cache and voids signed URLs) and reveals
        nothing of it, and one purpose's key is useless for another."""
        return hmac.new(self._key, f"metalcast:{purpose}".encode(), hashlib.sha256).digest()

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """The key in ``path``, created (mode 0600) on first use, plus the new key of
        an unfinished rotation.  See :func:`metalcast.secrecy.keyfile.load`."""
        from metalcast.secrecy import keyfile  # keyfile builds boxes: imported when used

        return keyfile.load(path)

    # ------------------------------------------------------------------ sealing

    def seal(self, value: Any) -> Any:
        """A copy of the JSON value ``value`` with its secrets encrypted (idempotent)."""
        if isinstance(value, dict):
            return {k: self._seal_item(k, v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.seal(v) for v in value]
        if isinstance(value, str) and sealed_parts(value) is None and holds_secret(value):
            return self._encrypt(value, shown=scrub_text(value))
        return value

    def _seal_item(self, key: str, value: Any) -> Any:
        if value is None or value == "" or not is_secret_key(key):
            return self.seal(value)
        if isinstance(value, str) and sealed_parts(value) is not None:
            return value
        return self._encrypt(value, shown=None)

    def _encrypt(self, value: Any, *, shown: str | None) -> str:
        holds_json = not isinstance(value, str)
        plain = orjson.dumps(value) if holds_json else value.encode()
        token = self._fernet.encrypt(plain).decode()
        return sealed(token, holds_json=holds_json, shown=shown)

    # ---------------------------------------------------------------- revealing

    def reveal(self, value: Any, *, where: str = "value") -> Any:
        """A copy of ``value`` with every sealed value decrypted.

        Raises:
            UndecryptableSecret: a value was sealed with another key.
        """
        return self._walk(value, where=where, on_sealed=self._decrypt)

    def rotate(self, value: Any, *, where: str = "value") -> Any:
        """A copy of ``value`` with every sealed value encrypted again with the newest
        key (and its secrets not sealed yet sealed).

        Raises:
            UndecryptableSecret: a value was sealed with a key this box does not hold.
        """
        return self.seal(self._walk(value, where=where, on_sealed=self._reencrypt))

    def _walk(self, value: Any, *, where: str, on_sealed: Callable[[str, str], Any]) -> Any:
        if isinstance(value, dict):
            return {k: self._walk(v, where=k, on_sealed=on_sealed) for k, v in value.items()}
        if isinstance(value, list):
            return [self._walk(v, where=where, on_sealed=on_sealed) for v in value]
        if isinstance(value, str) and sealed_parts(value) is not None:
            return on_sealed(value, where)
        return value

    def _decrypt(self, value: str, where: str) -> Any:
        parts = sealed_parts(value)
        assert parts is not None
        token, holds_json, _shown = parts
        try:
            plain = self._fernet.decrypt(token.encode())
        except InvalidToken:
            raise UndecryptableSecret(where) from None
        return orjson.loads(plain) if holds_json else plain.decode()

    def _reencrypt(self, value: str, where: str) -> str:
        parts = sealed_parts(value)
        assert parts is not None
        token, holds_json, shown = parts
        try:
            fresh = self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret(where) from None
        return sealed(fresh, holds_json=holds_json, shown=shown)
