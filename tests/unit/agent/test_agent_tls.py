"""The agent over HTTPS: its CA from the kernel command line or the CA initrd, every
request verified against it, and no way back to plain HTTP."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_machine import FakeMachine, write

from metalcast.tls.authority import IssuedFiles, issue
from metalcast_agent.client import ApiClient, DownloadAccess, Transport, open_download
from metalcast_agent.config import load_config
from metalcast_agent.errors import ApiUnreachable, ConfigError, DownloadError
from metalcast_agent.protocol import TOKEN_HEADER

NODE = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
LOOKUP = {"node": {"uuid": NODE, "properties": {}}, "config": {"agent_token": "t0k"}}
IMAGE = b"disk image " * 1000


class TlsServer:
    """An HTTPS server on 127.0.0.1 with ``certificate``; records the paths asked for
    and the agent tokens that came with them."""

    def __init__(self, pki: IssuedFiles) -> None:
        self.paths: list[str] = []
        self.tokens: list[str | None] = []
        self.plain_port = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.paths.append(self.path)
                server.tokens.append(self.headers.get(TOKEN_HEADER))
                if self.path.startswith("/v1/lookup"):
                    self._send(200, json.dumps(LOOKUP).encode())
                elif self.path.split("?")[0] == "/image":
                    self._send(200, IMAGE)
                elif self.path == "/downgrade":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.1:{server.plain_port}/image")
                    self.end_headers()
                else:
                    self._send(404, b"{}")

            def _send(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert, pki.key)
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def serve(self) -> Iterator[TlsServer]:
        thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            thread.join()


@pytest.fixture
def pki(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "pki", names=["127.0.0.1"])


@pytest.fixture
def other_ca(tmp_path: Path) -> IssuedFiles:
    return issue(tmp_path / "other", names=["127.0.0.1"])


@pytest.fixture
def server(pki: IssuedFiles) -> Iterator[TlsServer]:
    yield from TlsServer(pki).serve()


def roots(machine: FakeMachine) -> list[str]:
    return [f"--proc-root={machine.env.proc_root}", f"--sys-root={machine.env.sys_root}"]


# -- configuration ---------------------------------------------------------------------------


def test_the_ca_comes_from_the_kernel_command_line_or_a_flag(
    machine: FakeMachine, pki: IssuedFiles
) -> None:
    write(
        machine.env.proc_root / "cmdline",
        f"metalcast.api=https://192.168.77.1:8443 metalcast.cacert={pki.ca_cert}\n",
    )
    assert load_config(roots(machine), {}).cacert == pki.ca_cert
    flagged = load_config([*roots(machine), f"--cacert={pki.cert}"], {})
    assert flagged.cacert == pki.cert


def test_a_ca_with_a_plain_http_api_is_refused(machine: FakeMachine, pki: IssuedFiles) -> None:
    write(machine.env.proc_root / "cmdline", "metalcast.api=http://192.168.77.1:8080\n")
    with pytest.raises(ConfigError, match="plain HTTP but the agent has a CA certificate"):
        load_config([*roots(machine), f"--cacert={pki.ca_cert}"], {})


def test_a_missing_ca_file_is_refused(machine: FakeMachine, tmp_path: Path) -> None:
    write(machine.env.proc_root / "cmdline", "metalcast.api=https://192.168.77.1:8443\n")
    with pytest.raises(ConfigError, match=r"nope\.pem does not exist"):
        load_config([*roots(machine), f"--cacert={tmp_path / 'nope.pem'}"], {})


def test_an_unusable_ca_file_stops_the_agent(pki: IssuedFiles) -> None:
    with pytest.raises(ConfigError, match="cannot verify metalcast with CA"):
        Transport.for_config("https://192.168.77.1:8443", pki.key)
    assert not Transport.for_config("http://192.168.77.1:8080", None).https_only
    assert Transport.for_config("https://192.168.77.1:8443", pki.ca_cert).https_only


# -- requests --------------------------------------------------------------------------------


def test_the_api_is_verified_with_the_ca(server: TlsServer, pki: IssuedFiles) -> None:
    client = ApiClient(server.url, transport=Transport.for_config(server.url, pki.ca_cert))
    assert client.lookup(["52:54:00:12:34:56"]).token == "t0k"


@pytest.mark.parametrize("trust", ["other CA", "system store"])
def test_a_server_the_ca_did_not_sign_is_refused(
    server: TlsServer, other_ca: IssuedFiles, trust: str
) -> None:
    cacert = other_ca.ca_cert if trust == "other CA" else None
    client = ApiClient(server.url, transport=Transport.for_config(server.url, cacert))
    with pytest.raises(ApiUnreachable, match="CERTIFICATE_VERIFY_FAILED"):
        client.lookup(["52:54:00:12:34:56"])
    assert server.paths == []  # no request, no token, crossed the connection


def test_a_certificate_for_another_name_is_refused(tmp_path: Path) -> None:
    wrong = issue(tmp_path / "wrong", names=["localhost"])
    for served in TlsServer(wrong).serve():
        client = ApiClient(served.url, transport=Transport.for_config(served.url, wrong.ca_cert))
        with pytest.raises(ApiUnreachable, match="IP address mismatch"):
            client.lookup(["52:54:00:12:34:56"])


def test_downloads_are_verified_and_https_only(server: TlsServer, pki: IssuedFiles) -> None:
    transport = Transport.for_config(server.url, pki.ca_cert)
    with open_download(f"{server.url}/image", what="Image download", transport=transport) as got:
        assert got.length == len(IMAGE)
    plain = f"http://127.0.0.1:{server.port}/image"
    with pytest.raises(DownloadError, match=r"refused: the agent talks to metalcast over HTTPS"):
        open_download(plain, what="Image download", transport=transport)
    server.plain_port = server.port
    with pytest.raises(DownloadError, match=r"HTTP 302 redirect to http://127.0.0.1:\d+/image"):
        open_download(f"{server.url}/downgrade", what="Image download", transport=transport)
    assert server.paths == ["/image", "/downgrade"]


def test_signed_relative_urls_go_over_the_verified_https_api_url_with_the_token(
    server: TlsServer, pki: IssuedFiles, other_ca: IssuedFiles
) -> None:
    downloads = DownloadAccess(server.url, transport=Transport.for_config(server.url, pki.ca_cert))
    downloads.token = "t0k"
    with downloads.open("/image?node=n&expires=1&sig=ab", what="Image download") as got:
        assert got.stream.readinto(bytearray(len(IMAGE))) > 0
    assert (server.paths, server.tokens) == (["/image?node=n&expires=1&sig=ab"], ["t0k"])
    plain = f"http://127.0.0.1:{server.port}/image"
    with pytest.raises(DownloadError, match="refused: the agent talks to metalcast over HTTPS"):
        downloads.open(plain, what="Image download")
    stranger = DownloadAccess(
        server.url, transport=Transport.for_config(server.url, other_ca.ca_cert)
    )
    stranger.token = "t0k"
    with pytest.raises(DownloadError, match="CERTIFICATE_VERIFY_FAILED"):
        stranger.open("/image?node=n&expires=1&sig=ab", what="Image download")
    assert len(server.tokens) == 1  # the token never crossed an unverified connection
