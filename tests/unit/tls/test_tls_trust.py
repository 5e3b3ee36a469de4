"""How metalcast's own clients verify servers: CA files, pinned certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from metalcast.tls import TlsError
from metalcast.tls.authority import IssuedFiles, issue
from metalcast.tls.certificates import ServerCertificate, load_server_certificate
from metalcast.tls.trust import ca_context, pem_context, pinned_context, read_ca_bundle, rehearse


def served(issued: IssuedFiles) -> ServerCertificate:
    certificate = load_server_certificate(issued.cert, issued.key, area="api")
    assert certificate is not None
    return certificate


@pytest.fixture
def ours(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "ours", names=["api.example"])


@pytest.fixture
def theirs(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "theirs", names=["api.example"])


def test_a_ca_file_that_cannot_be_used_is_refused(tmp_path: Path, ours: IssuedFiles) -> None:
    with pytest.raises(TlsError, match=r"Cannot use --cacert .*missing.pem"):
        ca_context(tmp_path / "missing.pem", setting="--cacert")
    with pytest.raises(TlsError, match="Cannot use CA file"):
        ca_context(ours.key)
    with pytest.raises(TlsError, match="holds no PEM certificate"):
        read_ca_bundle(ours.key, setting="boot.tls_ca_file")


def test_another_ca_and_the_system_store_refuse_our_certificate(
    ours: IssuedFiles, theirs: IssuedFiles
) -> None:
    assert rehearse(served(ours), ca_context(ours.ca_cert), host="api.example") is None
    refused = rehearse(served(ours), ca_context(theirs.ca_cert), host="api.example")
    assert refused == "unable to get local issuer certificate"
    assert rehearse(served(ours), ca_context(), host="api.example") is not None


def test_the_server_certificate_itself_is_a_trust_anchor(ours: IssuedFiles) -> None:
    # what the agents get when boot.tls_ca_file is unset: the leaf, not a root
    assert rehearse(served(ours), ca_context(ours.cert), host="api.example") is None
    assert rehearse(served(ours), pem_context(served(ours).leaf_pem()), host="api.example") is None
    wrong_name = rehearse(served(ours), ca_context(ours.cert), host="other.example")
    assert wrong_name is not None and "mismatch" in wrong_name


def test_a_pinned_certificate_is_accepted_at_any_address_and_nothing_else(
    tmp_path: Path, ours: IssuedFiles
) -> None:
    pinned = pinned_context(served(ours).leaf)
    assert rehearse(served(ours), pinned, host="127.0.0.1") is None
    sibling = issue(tmp_path / "ours", names=["api.example"])  # same CA, new certificate
    assert rehearse(served(sibling), pinned, host="api.example") is not None


def test_a_bundle_keeps_certificates_only(tmp_path: Path, ours: IssuedFiles) -> None:
    mixed = tmp_path / "mixed.pem"
    mixed.write_bytes(ours.ca_key.read_bytes() + ours.ca_cert.read_bytes() + ours.cert.read_bytes())
    bundle = read_ca_bundle(mixed, setting="boot.tls_ca_file")
    assert bundle == ours.ca_cert.read_bytes() + ours.cert.read_bytes()
    assert b"PRIVATE KEY" not in bundle
