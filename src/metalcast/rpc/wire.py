"""Sealed JSON-RPC messages between API processes and conductors.

Every request and response body is a JSON-RPC 2.0 message, encrypted and
authenticated with AES-256-GCM under a key derived from the secret key every process
of one installation shares (``<state_dir>/secret.key``: the key that also seals BMC
passwords, so each process has it already).  A process without that key can neither
read a message (node ``driver_info`` crosses in it) nor forge one, and needs no TLS set
up for it.

The plaintext holds when the message was made and a random id; the receiver refuses
a message older or newer than :data:`WINDOW` seconds and, for requests, one whose id
it has seen within that window (a replay).  A response names its request's id and
is sealed for the other direction, so neither can stand in for the other.

Errors::

    MetalcastError
    └── Unauthorized (401)  RpcRefused: not sealed with this installation's key, too
                            old, replayed, or not a JSON-RPC message
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from metalcast.errors import Unauthorized
from metalcast.secrecy import SecretBox

#: the key derivation purpose of RPC messages
PURPOSE = "conductor-rpc"
#: seconds a message is accepted after (or, clocks differing, before) it was made
WINDOW = 120.0
REQUEST = b"metalcast-rpc-request-v1"
RESPONSE = b"metalcast-rpc-response-v1"
_NONCE = 12


class RpcRefused(Unauthorized):
    """A message this process will not act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message, challenge="")


class Seal:
    """Seals and opens the messages of one installation."""

    def __init__(self, secret_box: SecretBox, *, clock: Callable[[], float] = time.time) -> None:
        self._aead = AESGCM(secret_box.derive_key(PURPOSE))
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def seal(self, message: dict[str, Any], *, direction: bytes) -> bytes:
        """``message`` (a JSON object) sealed for ``direction`` (REQUEST or RESPONSE)."""
        plain = json.dumps(
            {"at": self._clock(), "nonce": os.urandom(12).hex(), "message": message},
            separators=(",", ":"),
        ).encode()
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, plain, direction)

    def open(self, data: bytes, *, direction: bytes) -> dict[str, Any]:
        """The message sealed in ``data``.

        Raises:
            RpcRefused: see the module docstring.
        """
        if len(data) <= _NONCE:
            raise RpcRefused("empty or truncated RPC message")
        try:
            plain = self._aead.decrypt(data[:_NONCE], data[_NONCE:], direction)
        except InvalidTag:
            raise RpcRefused(
                "RPC message not sealed with this installation's secret key (every API "
                "and conductor process must use the same secret.key)"
            ) from None
        try:
            outer = json.loads(plain)
            made, nonce, message = float(outer["at"]), str(outer["nonce"]), outer["message"]
        except (ValueError, KeyError, TypeError):
            raise RpcRefused("malformed RPC message") from None
        if not isinstance(message, dict):
            raise RpcRefused("malformed RPC message")
        now = self._clock()
        if abs(now - made) > WINDOW:
            raise RpcRefused(
                f"RPC message made {now - made:+.0f} s from now: outside the "
                f"{WINDOW:g} s window (are the machines' clocks set?)"
            )
        if direction == REQUEST:
            self._remember(nonce, now)
        return message

    def _remember(self, nonce: str, now: float) -> None:
        with self._lock:
            while self._seen:
                oldest, seen_at = next(iter(self._seen.items()))
                if now - seen_at <= 2 * WINDOW:
                    break
                del self._seen[oldest]
            if nonce in self._seen:
                raise RpcRefused("replayed RPC message")
            self._seen[nonce] = now
