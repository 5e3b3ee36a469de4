"""Verified credentials remembered for ``api.auth_cache_seconds``.

argon2 is slow on purpose and a token costs a database read: a client sending the
same credentials again within a few seconds gets the context it got before, answered
on the event loop without a thread hop.  Keys are never secrets: a token's SHA-256
(what the database stores) or an HMAC of a user name and password under a key that
lives only in this process's memory.

Changes made through this process (a revoked token, a disabled or deleted user, a
changed role or password) drop the entries they concern at once; changes made by
another process (another API server, ``metalcast user bootstrap-admin``) are seen
within ``api.auth_cache_seconds``.  A lookup that started before a change cannot put
its stale result back afterwards: :meth:`CredentialCache.put` refuses a result read
under an older generation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from metalcast.context import RequestContext

#: entries kept at most; the least recently used go first
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    context: RequestContext
    until: float
    #: the user's id (for :meth:`CredentialCache.forget_user`)
    user: str | None


class CredentialCache:
    """A bounded, thread-safe map from credential keys to verified contexts."""

    def __init__(
        self,
        seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0
        self._key = secrets.token_bytes(32)

    def password_key(self, user_name: str, password: str) -> str:
        """The key of a user name and password: an HMAC under this process's key."""
        message = f"{user_name}\0{password}".encode("utf-8", "surrogatepass")
        return "basic:" + hmac.new(self._key, message, hashlib.sha256).hexdigest()

    @staticmethod
    def token_key(hashed: str) -> str:
        """The key of a token, from its stored hash."""
        return "token:" + hashed

    @property
    def generation(self) -> int:
        """Changes with every forget; read it before a lookup, pass it to :meth:`put`."""
        return self._generation

    def get(self, key: str) -> RequestContext | None:
        """The context remembered for ``key``, if still fresh."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry.until <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.context

    def put(self, key: str, context: RequestContext, *, generation: int, seconds: float) -> None:
        """Remember ``context`` for ``seconds`` (at most ``api.auth_cache_seconds``),
        unless something was forgotten since ``generation`` was read."""
        ttl = min(self.seconds, seconds)
        if ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            self._entries[key] = _Entry(context, self._clock() + ttl, context.user)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop one entry (a revoked token)."""
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)

    def forget_user(self, user: str) -> None:
        """Drop every entry of the user with id ``user``."""
        with self._lock:
            self._generation += 1
            for key in [k for k, e in self._entries.items() if e.user == user]:
                del self._entries[key]

    def clear(self) -> None:
        """Drop everything (a project was disabled or deleted)."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
