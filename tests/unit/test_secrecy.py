"""What counts as a secret, and how it is masked, scrubbed, sealed and rotated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from metalcast.secrecy import (
    MASK,
    SecretBox,
    UndecryptableSecret,
    is_sealed,
    is_secret_key,
    keep_masked,
    keyfile,
    mask,
    scrub_text,
    secret_values,
)

SECRET_KEYS = (
    "ipmi_password",
    "redfish_password",
    "redfish_auth_token",
    "rescue_password",
    "configdrive",
    "user_data",
    "admin_pass",
    "adminPass",
    "snmp_auth_key",
    "snmp_priv_key",
    "private_key",
    "agent_secret_token",
    "X-Amz-Signature",
    "temp_url_sig",
    "pass",
    "CHAPPASSWORD",
)
PLAIN_KEYS = (
    "ipmi_username",
    "ipmi_address",
    "redfish_address",
    "redfish_auth_type",
    "vendor_passthru",
    "bypass",
    "image_source",
    "image_checksum",
    "secure_boot",
    "ssh_public_key",
    "sort_key",
    "deploy_kernel",
)


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", PLAIN_KEYS)
def test_keys_that_are_not_secret(key: str) -> None:
    assert not is_secret_key(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:Pa55-w0rd@host/x.raw", "http://user:******@host/x.raw"),
        # a malformed password with '/' and '@' is hidden whole
        (
            "Image https://u:p/a@ss@img.example/os failed",
            "Image https://u:******@img.example/os failed",
        ),
        ("GET /v1/x?token=abc&limit=1", "GET /v1/x?token=******&limit=1"),
        (
            "https://s3/i?X-Amz-Signature=ab12&X-Amz-Date=1",
            "https://s3/i?X-Amz-Signature=******&X-Amz-Date=1",
        ),
        (
            "ipmi_password=hunter2 ipmi_address=10.0.0.1",
            "ipmi_password=****** ipmi_address=10.0.0.1",
        ),
        ("{'ipmi_password': 'x1', 'a': 'b'}", "{'ipmi_password': '******', 'a': 'b'}"),
        ('{"rescue_password": 12345, "n": null}', '{"rescue_password": "******", "n": null}'),
        ("sealed fernet:gAAAAB_ab-c== here", f"sealed {MASK} here"),
        ("http://host:8080/path and user=bob", "http://host:8080/path and user=bob"),
        # a metalcast API token pasted into a path
        ("DELETE /v1/nodes/mct_Zm9vYmFyYmF6cXV4LWJsYWgtYmxhaF9oZWxsbw", f"DELETE /v1/nodes/{MASK}"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected
    assert scrub_text(expected) == expected  # idempotent


def test_scrub_text_hides_known_values_longest_first() -> None:
    text = "login as admin with Tr0ub4dor&3 failed (Tr0ub4dor)"
    assert scrub_text(text, ["Tr0ub4dor", "Tr0ub4dor&3", "ab"]) == (
        f"login as admin with {MASK} failed ({MASK})"
    )


def test_mask_hides_secret_keys_at_any_depth_and_of_any_type() -> None:
    doc = {
        "ipmi_password": 12345678,
        "nested": [{"bmc": {"redfish_password": {"a": 1}, "user": "root"}}],
        "flag_token": False,
        "empty_password": "",
        "image_source": "http://alice:s3cret@img.example/os.raw",
        "configdrive": {"user_data": "#cloud-config", "meta_data": {"admin_pass": "x"}},
        "count": 3,
    }
    assert mask(doc) == {
        "ipmi_password": MASK,
        "nested": [{"bmc": {"redfish_password": MASK, "user": "root"}}],
        "flag_token": MASK,
        "empty_password": "",
        "image_source": "http://alice:******@img.example/os.raw",
        "configdrive": MASK,
        "count": 3,
    }


def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


DOC: dict[str, Any] = {
    "ipmi_password": 12345678,
    "ipmi_username": "admin",
    "nested": [{"auth": {"password": "Deep-Secret-1"}}, "http://u:Url-Secret-2@h/x"],
    "configdrive": {"user_data": "#cloud-config\npassword: Cloud-3"},
    "image_source": "http://images.example/os.raw",
    "kernel": "console=ttyS0 token=Kern-Tok-4",
    "nothing": None,
}


def test_seal_encrypts_every_secret_and_reveal_restores_the_value() -> None:
    b = box()
    sealed = b.seal(DOC)
    text = repr(sealed)
    for secret in ("12345678", "Deep-Secret-1", "Url-Secret-2", "Cloud-3", "Kern-Tok-4"):
        assert secret not in text
    assert sealed["ipmi_username"] == "admin"
    assert sealed["image_source"] == "http://images.example/os.raw"
    assert is_sealed(sealed["ipmi_password"]) and is_sealed(sealed["configdrive"])
    assert b.seal(sealed) == sealed  # idempotent
    assert b.reveal(sealed) == DOC  # types come back: an int stays an int


def test_sealed_values_show_masked_or_as_their_scrubbed_text() -> None:
    shown = mask(box().seal(DOC))
    assert shown["ipmi_password"] == MASK
    assert shown["nested"] == [{"auth": {"password": MASK}}, "http://u:******@h/x"]
    assert shown["kernel"] == "console=ttyS0 token=******"
    assert shown["configdrive"] == MASK


def test_secret_values_lists_the_cleartext_secrets() -> None:
    assert secret_values(DOC) >= {
        "12345678",
        "Deep-Secret-1",
        "Url-Secret-2",
        "#cloud-config\npassword: Cloud-3",
        "Kern-Tok-4",
    }
    assert "admin" not in secret_values(DOC)


def test_keep_masked_keeps_what_the_client_could_not_see() -> None:
    stored = box().seal(DOC)
    sent_back = mask(stored)
    sent_back["ipmi_username"] = "operator"
    sent_back["nested"][0]["auth"]["password"] = "New-Secret-5"
    kept = keep_masked(stored, sent_back)
    assert kept["ipmi_password"] == stored["ipmi_password"]
    assert kept["configdrive"] == stored["configdrive"]
    assert kept["nested"][1] == stored["nested"][1]  # the URL with its password
    assert kept["nested"][0]["auth"]["password"] == "New-Secret-5"
    assert kept["ipmi_username"] == "operator"


def test_reveal_with_another_key_names_the_value() -> None:
    sealed = box().seal({"driver_info": {"ipmi_password": "x"}})
    with pytest.raises(UndecryptableSecret, match="ipmi_password"):
        box().reveal(sealed)


def test_rotate_re_encrypts_with_the_newest_key() -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    sealed = SecretBox(old).seal(DOC)
    rotated = SecretBox(new, old).rotate(sealed)
    assert SecretBox(new).reveal(rotated) == DOC
    with pytest.raises(UndecryptableSecret):
        SecretBox(old).reveal(rotated)


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secret.key"
    first = keyfile.load(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert keyfile.load(path).reveal(first.seal({"password": "p1"})) == {"password": "p1"}


def test_a_broken_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not a key")
    with pytest.raises(keyfile.KeyFileError, match="does not hold a Fernet key"):
        keyfile.load(path)


def test_rotation_steps_keep_every_value_readable(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    before = keyfile.load(path).seal(DOC)
    during = keyfile.begin_rotation(path)
    assert during.rotating
    # interrupted here: both keys load, whichever sealed a value
    half = keyfile.load(path).rotate(before)
    assert keyfile.load(path).reveal(before) == keyfile.load(path).reveal(half) == DOC
    # running again reuses the new key rather than making a third one
    assert keyfile.begin_rotation(path).reveal(half) == DOC
    assert keyfile.pending(path).reveal(half) == DOC
    keyfile.finish_rotation(path)
    after = keyfile.load(path)
    assert not after.rotating
    assert after.reveal(half) == DOC
    with pytest.raises(UndecryptableSecret):
        after.reveal(before)
    with pytest.raises(keyfile.KeyFileError, match="No key rotation"):
        keyfile.finish_rotation(path)
