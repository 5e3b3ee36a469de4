"""Signed download URLs: what lets one node's agent, and nobody else, fetch its
image and config drive from the boot HTTP server.

The conductor hands the agent URLs such as::

    /images/cache/<name>.raw?node=<uuid>&expires=<unix time>&sig=<hex>

where ``sig`` is an HMAC-SHA256, under a key derived from the server's secret key,
over the node's UUID, the path, the expiry and the sha256 of the node's agent token.
The agent sends its token in the :data:`TOKEN_HEADER` header with the download; the
boot server hashes it and checks the signature (in constant time) and the expiry, so
it needs no database: a URL is worth nothing without that node's token, a token
nothing without a URL signed for it, and both nothing once the URL expired.

Errors::

    MetalcastError
    └── Forbidden
        └── DownloadRefused   403 unsigned, tampered, expired, or the wrong token
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from metalcast.errors import Forbidden

#: the header an agent sends its agent token in with every download
TOKEN_HEADER = "X-Metalcast-Agent-Token"
#: what :meth:`metalcast.secrecy.SecretBox.derive_key` derives the signing key for
PURPOSE = "agent-download-url"
#: the query parameters of a signed URL
_PARAMS = ("node", "expires", "sig")


class DownloadRefused(Forbidden):
    """A download without a valid signature, token or expiry."""


def token_hash(token: str) -> str:
    """The sha256 (hex) of an agent token: what the conductor stores and signs."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class UrlSigner:
    """Signs and checks download URLs with one key (see the module docstring)."""

    key: bytes

    def sign(self, path: str, *, node: str, token_sha256: str, expires: int) -> str:
        """``path`` with the query that lets the holder of the token whose sha256 is
        ``token_sha256`` download it for node ``node`` until ``expires`` (Unix time)."""
        sig = self._mac(path, node=node, token_sha256=token_sha256, expires=expires)
        return f"{path}?{urlencode({'node': node, 'expires': expires, 'sig': sig})}"

    def check(
        self,
        path: str,
        query: Mapping[str, Sequence[str]],
        *,
        token: str | None,
        now: float,
    ) -> None:
        """Accept a download of ``path`` with ``query`` (parameter -> values) by the
        holder of ``token`` at time ``now``.

        Raises:
            DownloadRefused: a parameter is missing or repeated, the signature does not
                match (another path, node, expiry or token), or the URL expired.
        """
        values = {name: query.get(name) or () for name in _PARAMS}
        if any(len(given) != 1 for given in values.values()):
            raise DownloadRefused(
                "This download needs a signed URL (node, expires, sig) from the conductor."
            )
        if not token:
            raise DownloadRefused(f"This download needs the node's agent token ({TOKEN_HEADER}).")
        node, expires, sig = (values[name][0] for name in _PARAMS)
        if not expires.isdigit() or len(expires) > 12:
            raise DownloadRefused("This download URL's expiry is not a time.")
        expected = self._mac(path, node=node, token_sha256=token_hash(token), expires=int(expires))
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            raise DownloadRefused(
                "This download URL is not valid for this agent token: look the node up "
                "again and use the URL of the next heartbeat."
            )
        if int(expires) < now:
            raise DownloadRefused(
                "This download URL expired: the next heartbeat's command carries a new one."
            )

    def _mac(self, path: str, *, node: str, token_sha256: str, expires: int) -> str:
        message = "\n".join((node, path, str(expires), token_sha256)).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()
