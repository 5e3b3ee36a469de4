"""The certificate and key a listener serves, checked before anything listens.

:func:`load_server_certificate` refuses, naming the setting: one of the two files
without the other, a file that cannot be read or holds no PEM certificate or key, an
encrypted key (nothing could type its passphrase when the server starts), and a key
that is not the certificate's.  What does not stop a server but will trouble its
clients (an expired certificate, a key file others may read) comes back from
:meth:`ServerCertificate.warnings`.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypedDict

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from metalcast.tls import TlsError

#: TLS 1.2 ciphers with forward secrecy and AEAD only (TLS 1.3 suites are OpenSSL's
#: own); uvicorn's default cipher string ("TLSv1") would let TLS 1.2 clients pick CBC
SERVER_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A checked certificate file and the key file that goes with it."""

    cert_file: Path
    key_file: Path
    #: the certificates of ``cert_file``, the server's own first
    chain: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        """The server's own certificate."""
        return self.chain[0]

    def leaf_pem(self) -> bytes:
        """The server's own certificate, PEM-encoded."""
        return self.leaf.public_bytes(serialization.Encoding.PEM)

    def names(self) -> tuple[str, ...]:
        """The DNS names and IP addresses in the certificate's subjectAltName."""
        dns, addresses = _alt_names(self.leaf)
        return (*dns, *(str(a) for a in addresses))

    def covers(self, host: str) -> bool:
        """Whether a client that verifies hostnames accepts this certificate for
        ``host`` (a DNS name, an IP address, or ``[an IPv6 address]``).  Only the
        subjectAltName counts, as for today's clients (urllib3 ignores the CN)."""
        dns, addresses = _alt_names(self.leaf)
        text = host.strip("[]").rstrip(".").lower()
        try:
            return ipaddress.ip_address(text) in addresses
        except ValueError:
            return any(_dns_matches(pattern.lower(), text) for pattern in dns)

    def warnings(self, *, now: datetime) -> list[str]:
        """Problems that do not stop a server: its clients will refuse an expired
        certificate; a key file others can read is a key others may have."""
        found = []
        cert = self.leaf
        if cert.not_valid_after_utc < now:
            found.append(
                f"{self.cert_file} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: "
                "clients will refuse it; renew it (metalcast tls generate makes a new one)"
            )
        elif cert.not_valid_before_utc > now:
            found.append(
                f"{self.cert_file} is not valid before "
                f"{cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC: is this host's clock right?"
            )
        if self.key_file.stat().st_mode & 0o077:
            found.append(f"{self.key_file} can be read by other users: chmod 600 it")
        return found


def _alt_names(
    cert: x509.Certificate,
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    addresses = [a for a in san.get_values_for_type(x509.IPAddress) if not _is_network(a)]
    return san.get_values_for_type(x509.DNSName), addresses  # type: ignore[return-value]


def _is_network(value: object) -> bool:
    return isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network)


def _dns_matches(pattern: str, host: str) -> bool:
    """RFC 6125 matching: exact, or ``*.`` standing for exactly one leftmost label."""
    if not pattern.startswith("*."):
        return pattern == host
    label, _, rest = host.partition(".")
    return bool(label) and rest == pattern[2:]


def _read(path: Path, setting: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"Cannot read {setting} {path}: {exc.strerror or exc}") from None


def load_certificates(path: Path, setting: str) -> tuple[x509.Certificate, ...]:
    """The PEM certificates of ``path``, in order.

    Raises:
        TlsError: the file cannot be read or holds no PEM certificate.
    """
    try:
        return tuple(x509.load_pem_x509_certificates(_read(path, setting)))
    except ValueError:
        raise TlsError(
            f"{setting} {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ) from None


def _private_key(path: Path, setting: str) -> bytes:
    """The key's public half (DER), to compare with the certificate's."""
    data = _read(path, setting)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TlsError(
            f"{setting} {path} is encrypted: metalcast starts unattended, so it needs the "
            "key without a passphrase (openssl pkey -in KEY -out KEY.plain; chmod 600)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(
            f"{setting} {path} holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)"
        ) from None
    return _public_der(key.public_key())


def _public_der(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _pair_check(cert_file: Path | None, key_file: Path | None, area: str) -> None:
    if (cert_file is None) == (key_file is None):
        return
    given, missing = ("tls_cert_file", "tls_key_file")
    if cert_file is None:
        given, missing = missing, given
    raise TlsError(
        f"{area}.{given} is set but {area}.{missing} is not: set both "
        f"(METALCAST_{area.upper()}__{missing.upper()}) or neither"
    )


def load_server_certificate(
    cert_file: Path | None, key_file: Path | None, *, area: str
) -> ServerCertificate | None:
    """The certificate ``area`` (``"api"``, ``"boot"``) serves, checked; None when
    neither file is set (plain HTTP).

    Raises:
        TlsError: only one file is set, a file is unreadable or not PEM, the key is
            encrypted or does not belong to the certificate, or OpenSSL refuses the
            pair.
    """
    _pair_check(cert_file, key_file, area)
    if cert_file is None or key_file is None:
        return None
    chain = load_certificates(cert_file, f"{area}.tls_cert_file")
    public = _private_key(key_file, f"{area}.tls_key_file")
    if public != _public_der(chain[0].public_key()):
        raise TlsError(
            f"{area}.tls_key_file {key_file} is not the key of {area}.tls_cert_file "
            f"{cert_file} (the certificate must come first in its file)"
        )
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_file, key_file)
    except ssl.SSLError as exc:
        raise TlsError(f"OpenSSL refuses {cert_file} with {key_file}: {exc}") from None
    return ServerCertificate(cert_file, key_file, chain)


class UvicornTls(TypedDict, total=False):
    """The ``uvicorn.Config`` arguments of a TLS listener."""

    ssl_certfile: str
    ssl_keyfile: str
    ssl_ciphers: str


def uvicorn_options(certificate: ServerCertificate | None) -> UvicornTls:
    """The ``uvicorn.Config`` arguments that serve ``certificate`` (none: plain HTTP)."""
    if certificate is None:
        return {}
    return {
        "ssl_certfile": str(certificate.cert_file),
        "ssl_keyfile": str(certificate.key_file),
        "ssl_ciphers": SERVER_CIPHERS,
    }
