"""Downloads of what a command names: relative URLs go to the agent's API URL (the
boot server), and the agent token goes along with every one."""

from __future__ import annotations

import os

import pytest
from agent_machine import MIB, FakeMachine, FileServer, sha256

from metalcast_agent.client import DownloadAccess
from metalcast_agent.commands import CommandContext
from metalcast_agent.errors import DownloadError
from metalcast_agent.imagewrite import write_image
from metalcast_agent.protocol import TOKEN_HEADER

TOKEN = "tok-6f1c2b0e-secret"
SIGNED = "/images/cache/0123abcd.raw?node=n1&expires=1900000000&sig=c0ffee"


def access(files: FileServer, token: str | None = TOKEN) -> DownloadAccess:
    downloads = DownloadAccess(files.url(""))
    downloads.token = token
    return downloads


def test_a_relative_url_is_fetched_from_the_api_url_with_the_token(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 16 * MIB)
    image = os.urandom(MIB)
    files.files["/images/cache/0123abcd.raw"] = image
    files.token = TOKEN
    args = {"url": SIGNED, "checksum_algo": "sha256", "checksum": sha256(image), "size": MIB}

    result = write_image(args, CommandContext(machine.env, downloads=access(files)))

    assert result["bytes"] == MIB
    assert machine.disk_bytes("vda")[:MIB] == image
    ((path, headers),) = files.requests
    assert path == SIGNED  # the signature's query goes along unchanged
    assert headers[TOKEN_HEADER] == TOKEN


def test_a_refused_download_says_why_and_hides_the_signature(
    machine: FakeMachine, files: FileServer
) -> None:
    machine.add_disk("vda", 16 * MIB)
    files.token = TOKEN
    args = {"url": SIGNED, "checksum_algo": "sha256", "checksum": "00" * 32}

    with pytest.raises(DownloadError) as caught:
        write_image(args, CommandContext(machine.env, downloads=access(files, "wrong")))

    message = str(caught.value)
    assert "HTTP 403 Forbidden: needs the agent token" in message
    assert "sig=***" in message and "c0ffee" not in message


def test_without_a_token_no_header_is_sent(files: FileServer) -> None:
    files.files["/x"] = b"x"
    with access(files, None).open("/x", what="Image download") as download:
        assert download.stream.read() == b"x"  # type: ignore[attr-defined]
    assert TOKEN_HEADER not in files.requests[0][1]


def test_the_token_does_not_follow_a_redirect(files: FileServer) -> None:
    with FileServer().running() as elsewhere:
        elsewhere.files["/y"] = b"y"
        files.redirects["/x"] = elsewhere.url("/y")
        with access(files).open("/x", what="Image download") as download:
            assert download.stream.read() == b"y"  # type: ignore[attr-defined]
    assert files.requests[0][1][TOKEN_HEADER] == TOKEN
    assert TOKEN_HEADER not in elsewhere.requests[0][1]


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("/images/a.raw?sig=1", "http://192.168.77.1:8080/images/a.raw?sig=1"),
        ("http://10.0.0.9/b.raw", "http://10.0.0.9/b.raw"),
        ("//evil.example/c.raw", "//evil.example/c.raw"),
    ],
)
def test_only_paths_are_resolved_against_the_api_url(url: str, resolved: str) -> None:
    assert DownloadAccess("http://192.168.77.1:8080/").resolve(url) == resolved
