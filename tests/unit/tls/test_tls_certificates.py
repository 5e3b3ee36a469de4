"""Server certificates: what start-up refuses and what it only warns about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from metalcast.tls import TlsError
from metalcast.tls.authority import IssuedFiles, issue
from metalcast.tls.certificates import SERVER_CIPHERS, load_server_certificate, uvicorn_options

NAMES = ["boot.lab.example", "*.nodes.example", "192.168.77.1", "fd77::1"]


@pytest.fixture
def pki(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "pki", names=NAMES)


def test_neither_file_means_plain_http() -> None:
    assert load_server_certificate(None, None, area="api") is None
    assert uvicorn_options(None) == {}


@pytest.mark.parametrize("missing", ["cert", "key"])
def test_one_file_without_the_other_is_refused(pki: IssuedFiles, missing: str) -> None:
    cert, key = (None, pki.key) if missing == "cert" else (pki.cert, None)
    with pytest.raises(TlsError) as caught:
        load_server_certificate(cert, key, area="boot")
    given, absent = ("tls_key_file", "tls_cert_file") if missing == "cert" else (
        "tls_cert_file", "tls_key_file"
    )  # fmt: skip
    assert f"boot.{given} is set but boot.{absent} is not" in caught.value.message
    assert f"METALCAST_BOOT__{absent.upper()}" in caught.value.message


def test_an_unreadable_file_is_named(pki: IssuedFiles, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match=r"Cannot read api.tls_cert_file .*/nope.pem: No such file"):
        load_server_certificate(tmp_path / "nope.pem", pki.key, area="api")


def test_files_that_are_not_pem_are_refused(pki: IssuedFiles, tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("hello\n")
    with pytest.raises(TlsError, match=r"api.tls_cert_file .* holds no PEM certificate"):
        load_server_certificate(junk, pki.key, area="api")
    with pytest.raises(TlsError, match=r"api.tls_key_file .* holds no PEM private key"):
        load_server_certificate(pki.cert, junk, area="api")
    with pytest.raises(TlsError, match="holds no PEM private key"):
        load_server_certificate(pki.cert, pki.cert, area="api")


def test_an_encrypted_key_is_refused_with_how_to_decrypt_it(
    pki: IssuedFiles, tmp_path: Path
) -> None:
    key = serialization.load_pem_private_key(pki.key.read_bytes(), password=None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    with pytest.raises(TlsError, match=r"is encrypted: .* without a passphrase"):
        load_server_certificate(pki.cert, locked, area="api")


def test_the_key_of_another_certificate_is_refused(pki: IssuedFiles, tmp_path: Path) -> None:
    other = issue(tmp_path / "other", names=["localhost"])
    with pytest.raises(TlsError, match=r"api.tls_key_file .*/other/server.key is not the key of"):
        load_server_certificate(pki.cert, other.key, area="api")
    # the CA's key is not the server's either, though both came from one directory
    with pytest.raises(TlsError, match="is not the key of"):
        load_server_certificate(pki.cert, pki.ca_key, area="api")


def test_a_chain_with_the_server_certificate_second_is_refused(pki: IssuedFiles) -> None:
    backwards = pki.cert.parent / "backwards.pem"
    backwards.write_bytes(pki.ca_cert.read_bytes() + pki.cert.read_bytes())
    with pytest.raises(TlsError, match="must come first"):
        load_server_certificate(backwards, pki.key, area="api")


def test_a_good_pair_names_what_it_covers(pki: IssuedFiles) -> None:
    certificate = load_server_certificate(pki.cert, pki.key, area="api")
    assert certificate is not None
    assert certificate.names() == tuple(NAMES)
    assert certificate.covers("192.168.77.1")
    assert certificate.covers("[fd77::1]") and certificate.covers("fd77:0::1")
    assert certificate.covers("BOOT.lab.example.")
    assert certificate.covers("n1.nodes.example")
    assert not certificate.covers("a.b.nodes.example")  # a wildcard is one label
    assert not certificate.covers("nodes.example")
    assert not certificate.covers("192.168.77.2")
    assert not certificate.covers("lab.example")
    options = uvicorn_options(certificate)
    assert options == {
        "ssl_certfile": str(pki.cert),
        "ssl_keyfile": str(pki.key),
        "ssl_ciphers": SERVER_CIPHERS,
    }


def _expired(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "old")])
    past = datetime.now(UTC) - timedelta(days=30)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(past - timedelta(days=1))
        .not_valid_after(past)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir()
    (directory / "old.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "old.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (directory / "old.key").chmod(0o600)
    return directory / "old.pem", directory / "old.key"


def test_expiry_and_a_readable_key_are_warnings(pki: IssuedFiles, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    certificate = load_server_certificate(pki.cert, pki.key, area="api")
    assert certificate is not None
    assert certificate.warnings(now=now) == []
    pki.key.chmod(0o644)
    assert certificate.warnings(now=now) == [f"{pki.key} can be read by other users: chmod 600 it"]

    old = load_server_certificate(*_expired(tmp_path / "old"), area="api")
    assert old is not None
    (warning,) = old.warnings(now=now)
    assert "expired on" in warning and "clients will refuse it" in warning
    early = old.warnings(now=now - timedelta(days=400))
    assert early and "is not valid before" in early[0]
