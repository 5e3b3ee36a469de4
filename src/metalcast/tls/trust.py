"""How metalcast's own clients verify a server: the ``metalcast`` CLI, the boot
server's relay to the API.  Verification is never switched off here.

- :func:`ca_context`: the certificates of a CA file, or the system's trust store;
  hostnames are checked.
- :func:`pinned_context`: exactly one certificate, the relay's view of metalcast's own
  API (it knows which certificate that API serves, whatever names it carries).
- :func:`read_ca_bundle`: the PEM certificates of a file, for the agents' CA initrd.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from metalcast.tls import TlsError
from metalcast.tls.certificates import ServerCertificate, load_certificates


def _client_defaults(context: ssl.SSLContext) -> ssl.SSLContext:
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def ca_context(cafile: Path | None = None, *, setting: str = "CA file") -> ssl.SSLContext:
    """A client context trusting the certificates of ``cafile`` (None: the system's
    trust store), TLS 1.2 or newer, hostnames checked.

    Every certificate in ``cafile`` is a trust anchor even when it is not a root
    (OpenSSL's partial chains), so a file holding the server's own certificate works
    as well as its CA.

    Raises:
        TlsError: ``cafile`` cannot be read or holds no certificate.
    """
    try:
        context = ssl.create_default_context(cafile=str(cafile) if cafile else None)
    except (OSError, ssl.SSLError) as exc:
        detail = getattr(exc, "strerror", None) or exc
        raise TlsError(f"Cannot use {setting} {cafile} to verify servers: {detail}") from None
    return _client_defaults(context)


def pem_context(pem: bytes) -> ssl.SSLContext:
    """Like :func:`ca_context` with the certificates ``pem`` (already checked)."""
    return _client_defaults(ssl.create_default_context(cadata=pem.decode("ascii")))


def pinned_context(certificate: x509.Certificate) -> ssl.SSLContext:
    """A client context that accepts exactly ``certificate`` and nothing else.

    The name the client connects to is not checked: only the holder of this one
    certificate's key can answer, whatever address it is reached at (the relay
    reaches the API on loopback, which a certificate made for the API's public name
    rarely covers).  A certificate cannot sign others unless it is a CA, which a
    server certificate is not.
    """
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    context = _client_defaults(ssl.create_default_context(cadata=pem))
    context.check_hostname = False
    return context


def read_ca_bundle(path: Path, *, setting: str) -> bytes:
    """The certificates of ``path`` re-encoded as PEM (whatever else the file holds,
    a private key say, is left out).

    Raises:
        TlsError: the file cannot be read or holds no PEM certificate.
    """
    certificates = load_certificates(path, setting)
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


def rehearse(certificate: ServerCertificate, client: ssl.SSLContext, *, host: str) -> str | None:
    """What a client verifying with ``client`` says of ``certificate`` served at
    ``host``: None when it accepts it, else OpenSSL's reason (an IP address
    mismatch, an unknown issuer, an expired certificate).  A TLS handshake in
    memory, with the very checks the client will make."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certificate.cert_file, certificate.key_file)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()  # each side reads the other's
    sides = (
        client.wrap_bio(to_client, to_server, server_hostname=host.strip("[]")),
        server.wrap_bio(to_server, to_client, server_side=True),
    )
    for _ in range(8):  # TLS 1.3 needs 3 flights, 1.2 needs 4
        finished = 0
        for side in sides:
            try:
                side.do_handshake()
                finished += 1
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLCertVerificationError as exc:
                return str(exc.verify_message)
            except ssl.SSLError as exc:
                return str(exc.reason or exc)
        if finished == len(sides):
            return None
    return "the handshake did not finish"
