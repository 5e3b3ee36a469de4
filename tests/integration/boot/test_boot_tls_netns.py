"""The boot HTTP server with TLS on a real (namespaced) network, with real clients:
boot files on the plain port for firmware, everything else only over HTTPS, the CA
initrd that carries the CA to the agents, and a relay that verifies the API.

``curl`` and busybox ``wget`` run in the client namespace; ``cpio`` unpacks the CA
initrd as a second tool besides the kernel (which the lab's end-to-end test covers).
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from boot_netlab import (
    CLIENT_ADDRESS,
    CLIENT_MAC,
    HTTP_PORT,
    SERVER_ADDRESS,
    SIGNER,
    BootLab,
    StartServices,
    StubApi,
    stub_handler,
)

from metalcast.agent_downloads import TOKEN_HEADER, token_hash
from metalcast.boot.ipxe import NodeBoot, NodePort
from metalcast.boot.service import BootServices
from metalcast.boot.trust import CA_INITRD, CA_PATH
from metalcast.tls.authority import IssuedFiles, issue

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
HTTPS_PORT = 8443
PLAIN = f"http://{SERVER_ADDRESS}:{HTTP_PORT}"
SECURE = f"https://{SERVER_ADDRESS}:{HTTPS_PORT}"


@pytest.fixture
def pki(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "pki", names=[SERVER_ADDRESS])


@pytest.fixture
def tls_api(tmp_path: Path) -> Iterator[tuple[StubApi, IssuedFiles]]:
    """A stand-in API over HTTPS on 127.0.0.1, with a CA of its own."""
    api_pki = issue(tmp_path / "api-pki", names=["127.0.0.1"])
    requests: list[dict[str, object]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), stub_handler(requests))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(api_pki.cert, api_pki.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StubApi(f"https://127.0.0.1:{server.server_address[1]}", requests), api_pki
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def with_tls(pki: IssuedFiles, **changes: object) -> dict[str, object]:
    return {
        "tls_cert_file": pki.cert,
        "tls_key_file": pki.key,
        "tls_ca_file": pki.ca_cert,
        "https_port": HTTPS_PORT,
        "ignore_unknown": True,
        **changes,
    }


def client_node() -> NodeBoot:
    return NodeBoot(NODE, (NodePort(CLIENT_MAC, IPv4Address("192.168.77.50")),))


def curl(lab: BootLab, *args: str) -> subprocess.CompletedProcess[str]:
    return lab.run_client("curl", "-sS", "--max-time", "20", *args)


def test_boot_files_stay_plain_and_the_rest_is_https_only(
    boot_lab: BootLab, start_services: StartServices, stub_api: StubApi, pki: IssuedFiles
) -> None:
    services = start_services(**with_tls(pki))
    boot_lab.give_client_an_address()
    services.prepare_node(client_node())
    image = os.urandom(2 * 1024 * 1024 + 5)
    services.layout.images_dir.mkdir(parents=True, exist_ok=True)
    (services.layout.images_dir / "disk.raw").write_bytes(image)

    script = boot_lab.run_client(
        "busybox", "wget", "-q", "-O", "-", f"{PLAIN}/boot/nodes/52-54-00-b0-07-01.ipxe"
    )
    assert script.returncode == 0, script.stderr
    assert f"metalcast.api={SECURE} " in script.stdout
    assert f"initrd --name {CA_INITRD} {PLAIN}/boot/{CA_INITRD} || goto failed" in script.stdout
    signed = SIGNER.sign(
        "/images/disk.raw", node=NODE, token_sha256=token_hash("t0ken"), expires=2**33
    )
    token = f"{TOKEN_HEADER}: t0ken"
    for path in (f"/v1/lookup?addresses={CLIENT_MAC}", signed):
        refused = curl(boot_lab, "-H", token, "-w", "\n%{http_code}", f"{PLAIN}{path}")
        body, status = refused.stdout.rsplit("\n", 1)
        assert status == "403", path
        assert f"served over HTTPS only, at {SECURE}" in json.loads(body)["error_message"]

    ca = str(pki.ca_cert)
    part = boot_lab.work / "part"
    ranged = curl(boot_lab, "--cacert", ca, "-o", str(part), "-w", "%{http_code}",
                  "-H", token, "-r", "1048576-2097151", f"{SECURE}{signed}")  # fmt: skip
    assert ranged.stdout == "206", ranged.stderr
    assert part.read_bytes() == image[1048576:2097152]
    for unsigned in (["-H", token, f"{SECURE}/images/disk.raw"], [f"{SECURE}{signed}"]):
        refused = curl(boot_lab, "--cacert", ca, "-o", "/dev/null", "-w", "%{http_code}", *unsigned)
        assert refused.stdout == "403", unsigned  # HTTPS does not stand in for the signature
    lookup = curl(boot_lab, "--cacert", ca, f"{SECURE}/v1/lookup?addresses={CLIENT_MAC}")
    assert json.loads(lookup.stdout)["node"] == {"uuid": "stub"}, lookup.stderr
    (relayed,) = stub_api.requests
    headers = relayed["headers"]
    assert isinstance(headers, dict)
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == f"{SERVER_ADDRESS}:{HTTPS_PORT}"
    assert headers["x-forwarded-for"] == CLIENT_ADDRESS

    untrusted = curl(boot_lab, f"{SECURE}/v1/lookup?addresses={CLIENT_MAC}")
    assert untrusted.returncode == 60, untrusted.stderr  # curl: peer certificate not trusted
    assert len(stub_api.requests) == 1


def test_the_ca_initrd_is_served_to_firmware_and_unpacks_to_the_ca(
    boot_lab: BootLab, start_services: StartServices, pki: IssuedFiles, tmp_path: Path
) -> None:
    start_services(**with_tls(pki))
    boot_lab.give_client_an_address()
    fetched = tmp_path / CA_INITRD
    done = boot_lab.run_client(
        "busybox", "wget", "-q", "-O", str(fetched), f"{PLAIN}/boot/{CA_INITRD}"
    )
    assert done.returncode == 0, done.stderr
    unpacked = tmp_path / "root"
    unpacked.mkdir()
    archive = subprocess.run(["gzip", "-dc", str(fetched)], capture_output=True, check=True)
    subprocess.run(["cpio", "-id", "--quiet"], input=archive.stdout, cwd=unpacked, check=True)
    assert (unpacked / CA_PATH).read_bytes() == pki.ca_cert.read_bytes()


def lookup_through(lab: BootLab, pki: IssuedFiles) -> subprocess.CompletedProcess[str]:
    return curl(lab, "--cacert", str(pki.ca_cert), "-w", "\n%{http_code}",
                f"{SECURE}/v1/lookup?addresses={CLIENT_MAC}")  # fmt: skip


def test_the_relay_verifies_an_https_api(
    boot_lab: BootLab,
    start_services: StartServices,
    pki: IssuedFiles,
    tls_api: tuple[StubApi, IssuedFiles],
) -> None:
    api, api_pki = tls_api
    boot_lab.give_client_an_address()
    stranger = issue(pki.cert.parent.parent / "stranger", names=["127.0.0.1"])
    wrong: BootServices = start_services(
        **with_tls(pki, api_url=api.url, api_ca_file=stranger.ca_cert)
    )
    refused = lookup_through(boot_lab, pki)
    body, status = refused.stdout.rsplit("\n", 1)
    assert status == "502", refused.stdout
    assert "metalcast API unreachable from the boot server" in body
    assert "CERTIFICATE_VERIFY_FAILED" in body
    assert api.requests == []
    wrong.stop()

    start_services(**with_tls(pki, api_url=api.url, api_ca_file=api_pki.ca_cert))
    trusted = lookup_through(boot_lab, pki)
    assert trusted.stdout.endswith("\n200"), trusted.stdout
    assert [request["path"] for request in api.requests] == [f"/v1/lookup?addresses={CLIENT_MAC}"]
