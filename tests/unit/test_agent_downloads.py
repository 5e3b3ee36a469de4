"""Signed download URLs: only one node's agent, with its token, before the expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.fernet import Fernet

from metalcast.agent_downloads import (
    PURPOSE,
    TOKEN_HEADER,
    DownloadRefused,
    UrlSigner,
    token_hash,
)
from metalcast.secrecy import SecretBox
from metalcast_agent.protocol import TOKEN_HEADER as AGENT_TOKEN_HEADER

NODE_A = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
NODE_B = "7f3a0b62-9c1d-4c6e-8d2a-2b1f0e9d8c7b"
PATH = "/images/cache/0123456789abcdef0123456789abcdef.raw"
NOW = 1_900_000_000
SIGNER = UrlSigner(b"s" * 32)


def sign(path: str = PATH, *, node: str = NODE_A, token: str = "token-a", ttl: int = 600) -> str:
    return SIGNER.sign(path, node=node, token_sha256=token_hash(token), expires=NOW + ttl)


def check(url: str, *, token: str | None = "token-a", now: float = NOW) -> None:
    parts = urlsplit(url)
    SIGNER.check(parts.path, parse_qs(parts.query), token=token, now=now)


def test_a_signed_url_works_for_its_token_until_it_expires() -> None:
    url = sign()
    assert url.startswith(f"{PATH}?node={NODE_A}&expires={NOW + 600}&sig=")
    check(url)
    check(url, now=NOW + 600)
    with pytest.raises(DownloadRefused, match="expired") as caught:
        check(url, now=NOW + 601)
    assert caught.value.status_code == 403


@pytest.mark.parametrize(
    ("url", "token", "why"),
    [
        (sign(), "token-b", "not valid for this agent token"),
        (sign(), None, "needs the node's agent token"),
        (sign(), "", "needs the node's agent token"),
        (sign().replace(NODE_A, NODE_B), "token-a", "not valid"),
        (sign(node=NODE_B, token="token-b").replace(NODE_B, NODE_A), "token-b", "not valid"),
        (sign().replace("0123456789", "9876543210", 1), "token-a", "not valid"),
        (sign().replace(str(NOW + 600), str(NOW + 6000)), "token-a", "not valid"),
        (sign()[:-1] + ("0" if sign()[-1] != "0" else "1"), "token-a", "not valid"),
        (PATH, "token-a", "needs a signed URL"),
        (sign() + f"&node={NODE_B}", "token-a", "needs a signed URL"),
        (sign().replace(f"expires={NOW + 600}", "expires=-5"), "token-a", "not a time"),
    ],
    ids=[
        "another-token",
        "no-token",
        "empty-token",
        "another-node",
        "node-b-url-for-node-a",
        "tampered-path",
        "tampered-expiry",
        "tampered-signature",
        "unsigned",
        "repeated-node",
        "negative-expiry",
    ],
)
def test_anything_else_is_refused(url: str, token: str | None, why: str) -> None:
    with pytest.raises(DownloadRefused, match=why):
        check(url, token=token)


def test_another_key_signs_nothing_this_one_accepts() -> None:
    forged = UrlSigner(b"t" * 32).sign(
        PATH, node=NODE_A, token_sha256=token_hash("token-a"), expires=NOW + 60
    )
    with pytest.raises(DownloadRefused, match="not valid"):
        check(forged)


def test_keys_are_derived_per_purpose_and_change_with_the_secret_key() -> None:
    key = Fernet.generate_key()
    box, same, other = SecretBox(key), SecretBox(key), SecretBox(Fernet.generate_key())
    assert box.derive_key(PURPOSE) == same.derive_key(PURPOSE)  # every process agrees
    assert len(box.derive_key(PURPOSE)) == 32
    assert box.derive_key(PURPOSE) != box.derive_key("image-cache-names")
    assert box.derive_key(PURPOSE) != other.derive_key(PURPOSE)
    assert key not in box.derive_key(PURPOSE)


def test_the_agent_sends_its_token_in_the_header_the_boot_server_reads() -> None:
    assert AGENT_TOKEN_HEADER == TOKEN_HEADER
