"""TLS for metalcast's listeners and clients (docs/security.md, "TLS").

- :mod:`~metalcast.tls.certificates`: the certificate and key a listener serves (the
  API, the boot HTTP server), checked before anything listens;
- :mod:`~metalcast.tls.trust`: how metalcast's own clients verify a server (a CA file,
  the system's trust store, or one pinned certificate);
- :mod:`~metalcast.tls.authority`: a small CA for operators without a PKI
  (``metalcast tls generate``).

Errors::

    MetalcastError
    └── TlsError        a certificate, key or CA file is missing, unreadable, invalid,
                        or does not fit (a key of another certificate, a name the
                        certificate does not cover): the message names the setting
"""

from __future__ import annotations

from metalcast.errors import MetalcastError


class TlsError(MetalcastError):
    """A TLS file or setting is unusable; the message says which and how to fix it."""
