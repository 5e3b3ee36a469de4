"""``metalcast tls generate``'s CA: what it writes, and that clients accept it for
exactly the names asked for."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from metalcast.tls import TlsError
from metalcast.tls.authority import issue, subject_name
from metalcast.tls.certificates import load_server_certificate
from metalcast.tls.trust import ca_context, rehearse


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_ca_and_a_server_certificate_for_the_names(tmp_path: Path) -> None:
    issued = issue(tmp_path / "tls", names=["api.example", "192.168.77.1", "::1", "api.example"])

    assert issued.new_ca
    assert issued.names == ("api.example", "192.168.77.1", "::1")
    assert (mode(issued.ca_key), mode(issued.key)) == (0o600, 0o600)
    assert (mode(issued.ca_cert), mode(issued.cert)) == (0o644, 0o644)
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == [
        "ca.key", "ca.pem", "server.key", "server.pem",
    ]  # fmt: skip
    certificate = load_server_certificate(issued.cert, issued.key, area="api")
    assert certificate is not None
    client = ca_context(issued.ca_cert)
    for host in ("api.example", "192.168.77.1", "[::1]"):
        assert rehearse(certificate, client, host=host) is None, host
    refused = rehearse(certificate, client, host="192.168.77.2")
    assert refused is not None and "IP address mismatch" in refused
    ca = x509.load_pem_x509_certificate(issued.ca_cert.read_bytes())
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0
    leaf = certificate.leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not leaf.ca


def test_running_again_keeps_the_ca_unless_asked(tmp_path: Path) -> None:
    first = issue(tmp_path, names=["a.example"])
    ca_before = first.ca_cert.read_bytes()
    server_before = first.cert.read_bytes()

    second = issue(tmp_path, names=["b.example"])
    assert not second.new_ca
    assert second.ca_cert.read_bytes() == ca_before
    assert second.cert.read_bytes() != server_before
    certificate = load_server_certificate(second.cert, second.key, area="api")
    assert certificate is not None
    assert rehearse(certificate, ca_context(second.ca_cert), host="b.example") is None

    third = issue(tmp_path, names=["b.example"], new_ca=True)
    assert third.new_ca and third.ca_cert.read_bytes() != ca_before
    old_trust = tmp_path / "old-ca.pem"
    old_trust.write_bytes(ca_before)
    renewed = load_server_certificate(third.cert, third.key, area="api")
    assert renewed is not None
    assert rehearse(renewed, ca_context(old_trust), host="b.example") is not None


def test_a_ca_whose_key_is_another_is_not_used(tmp_path: Path) -> None:
    issue(tmp_path / "one", names=["a.example"])
    other = issue(tmp_path / "two", names=["a.example"])
    (tmp_path / "one" / "ca.key").write_bytes(other.ca_key.read_bytes())
    before = (tmp_path / "one" / "server.pem").read_bytes()
    with pytest.raises(TlsError, match=r"is not the key of .*--new-ca makes a new CA"):
        issue(tmp_path / "one", names=["a.example"])
    assert (tmp_path / "one" / "server.pem").read_bytes() == before


def test_half_a_ca_is_not_used(tmp_path: Path) -> None:
    issued = issue(tmp_path, names=["a.example"])
    issued.ca_key.unlink()
    with pytest.raises(TlsError, match="Cannot use the CA in"):
        issue(tmp_path, names=["a.example"])


@pytest.mark.parametrize("bad", ["", "two words", "a..b", "-lead.example", "x" * 64 + ".com", "*"])
def test_names_that_are_neither_host_nor_address_are_refused(bad: str, tmp_path: Path) -> None:
    with pytest.raises(TlsError, match="neither an IP address nor a DNS host name"):
        issue(tmp_path, names=["ok.example", bad])
    assert not tmp_path.joinpath("ca.pem").exists()  # nothing written


def test_names_are_normalised() -> None:
    assert subject_name("API.Example.") == x509.DNSName("api.example")
    assert subject_name("[fd77::1]") == subject_name("fd77:0::1")
    assert subject_name("*.nodes.example") == x509.DNSName("*.nodes.example")
