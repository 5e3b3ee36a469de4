"""A small certificate authority for operators without a PKI (``metalcast tls generate``).

:func:`issue` writes into one directory::

    ca.pem       the CA certificate: what clients (baremetal --os-cacert, openstacksdk
                 cacert=, metalcast --cacert) and the nodes' agents trust
    ca.key       its key (0600); kept so that the next server certificate comes from
                 the same CA and nobody has to trust a new one
    server.pem   the server certificate, for the names given (subjectAltName)
    server.key   its key (0600)

Keys are ECDSA P-256: small, fast on a TCG-emulated ramdisk, understood by every TLS
client in use.  Validity starts a day early, because a machine booting the deploy
ramdisk checks it against its own hardware clock, which is often a little wrong.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metalcast.tls import TlsError
from metalcast.tls.certificates import load_certificates

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"
CA_DAYS = 3650
SERVER_DAYS = 397
#: how long before "now" certificates start being valid (clock skew of the nodes)
BACKDATE = timedelta(days=1)
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"^(\*\.)?({_LABEL}\.)*{_LABEL}$")

SubjectName = x509.DNSName | x509.IPAddress


@dataclass(frozen=True, slots=True)
class IssuedFiles:
    """What :func:`issue` wrote."""

    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path
    #: the names and addresses the server certificate is valid for
    names: tuple[str, ...]
    #: whether the CA was made now (clients must trust the new ca.pem)
    new_ca: bool


def subject_name(text: str) -> SubjectName:
    """``text`` as a subjectAltName entry: an IP address, else a DNS name.

    Raises:
        TlsError: ``text`` is neither.
    """
    value = text.strip().strip("[]")
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    name = value.rstrip(".").lower()
    if len(name) > 253 or not _DNS_NAME.match(name):
        raise TlsError(f"{text!r} is neither an IP address nor a DNS host name")
    return x509.DNSName(name)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "metalcast"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def _builder(
    subject: x509.Name, public: ec.EllipticCurvePublicKey, *, days: int
) -> x509.CertificateBuilder:
    start = datetime.now(UTC) - BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + BACKDATE + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )


def make_ca(*, days: int = CA_DAYS) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new CA that may sign server certificates only (path length 0)."""
    key = _key()
    subject = _name(f"metalcast CA {socket.gethostname()} {secrets.token_hex(3)}")
    usage = x509.KeyUsage(
        digital_signature=False, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        _builder(subject, key.public_key(), days=days)
        .issuer_name(subject)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_certificate(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    *,
    names: Sequence[SubjectName],
    days: int = SERVER_DAYS,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A server certificate for ``names`` signed by the CA.

    Raises:
        TlsError: ``names`` is empty.
    """
    if not names:
        raise TlsError("A server certificate needs at least one name or address")
    key = _key()
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    issuer_key = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    cert = (
        _builder(_name(_text(names[0])), key.public_key(), days=days)
        .issuer_name(ca_cert.subject)
        .add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(issuer_key, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _text(name: SubjectName) -> str:
    return str(name.value)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _write(path: Path, data: bytes, *, mode: int) -> None:
    """Replace ``path`` in one rename; the file has ``mode`` before it has content."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _existing_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if not cert_path.exists() and not key_path.exists():
        return None
    hint = "; --new-ca makes a new CA (clients and nodes must then trust the new ca.pem)"
    try:
        cert = load_certificates(cert_path, "CA certificate")[0]
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (TlsError, OSError, ValueError, TypeError) as exc:
        raise TlsError(f"Cannot use the CA in {directory}: {exc}{hint}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
        raise TlsError(f"{key_path} is not the key of {cert_path}{hint}")
    return key, cert


def issue(
    directory: Path, *, names: Sequence[str], days: int = SERVER_DAYS, new_ca: bool = False
) -> IssuedFiles:
    """A server certificate for ``names`` in ``directory``, signed by the CA there
    (made first when there is none, or when ``new_ca``).

    Raises:
        TlsError: a name is neither a DNS name nor an IP address, or the CA there
            cannot be used (unreadable, its key missing or another's).
        OSError: ``directory`` cannot be written.
    """
    parsed = list(dict.fromkeys(subject_name(name) for name in names))
    directory.mkdir(parents=True, exist_ok=True)
    existing = None if new_ca else _existing_ca(directory)
    ca_key, ca_cert = existing or make_ca()
    if existing is None:
        _write(directory / CA_KEY, _pem_key(ca_key), mode=0o600)
        _write(directory / CA_CERT, _pem_cert(ca_cert), mode=0o644)
    key, cert = make_server_certificate(ca_key, ca_cert, names=parsed, days=days)
    _write(directory / SERVER_KEY, _pem_key(key), mode=0o600)
    _write(directory / SERVER_CERT, _pem_cert(cert), mode=0o644)
    return IssuedFiles(
        ca_cert=directory / CA_CERT,
        ca_key=directory / CA_KEY,
        cert=directory / SERVER_CERT,
        key=directory / SERVER_KEY,
        names=tuple(_text(name) for name in parsed),
        new_ca=existing is None,
    )
