"""Ironic's configdrive forms are accepted, and malformed ones refused clearly.

Building an ISO runs genisoimage: that is in tests/integration/images.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from pathlib import Path

import pytest

from metalcast.errors import InvalidInput
from metalcast.images.configdrive import (
    ISO_NAME,
    ConfigDriveContent,
    ConfigDriveImage,
    InstanceIdentity,
    RemoteConfigDrive,
    check_config_drive_iso,
    content_from_request,
    prepare_config_drive,
    remove_config_drive,
)

INSTANCE = InstanceIdentity(
    "1be26c0b-03f2-4d2e-ae87-c02d7f33c123",
    name="web-1",
    public_keys={"ops": "ssh-ed25519 AAAAC3 ops@example"},
    availability_zone="rack-4",
    meta={"role": "web"},
)


def fake_iso(label: str = "config-2", *, pvd_type: int = 1) -> bytes:
    """The first 34 KiB of an ISO 9660 image: system area and primary descriptor."""
    descriptor = bytearray(2048)
    descriptor[0] = pvd_type
    descriptor[1:7] = b"CD001\x01"
    descriptor[40:72] = label.encode().ljust(32)
    return bytes(32768) + bytes(descriptor) + b"openstack/latest/meta_data.json"


def ironic_form(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data)).decode()


def prepare(
    value: str, tmp_path: Path, *, max_bytes: int = 1 << 20
) -> ConfigDriveImage | RemoteConfigDrive:
    return prepare_config_drive(
        value, instance=INSTANCE, directory=tmp_path / "node", max_bytes=max_bytes
    )


def unpacked(value: str, tmp_path: Path) -> ConfigDriveImage:
    drive = prepare(value, tmp_path)
    assert isinstance(drive, ConfigDriveImage)
    return drive


def test_ironic_prebuilt_form_is_unpacked_into_the_node_directory(tmp_path: Path) -> None:
    iso = fake_iso()

    drive = unpacked(ironic_form(iso), tmp_path)

    assert drive.path == tmp_path / "node" / ISO_NAME
    assert drive.path.read_bytes() == iso
    assert drive.sha256 == hashlib.sha256(iso).hexdigest()
    assert drive.size == len(iso)
    assert sorted(p.name for p in (tmp_path / "node").iterdir()) == [ISO_NAME]


def test_base64_with_line_breaks_is_accepted(tmp_path: Path) -> None:
    text = ironic_form(fake_iso())
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))

    assert unpacked(wrapped, tmp_path).size == len(fake_iso())


@pytest.mark.parametrize("url", ["http://h/drive.iso.gz", " https://h/cd?x=1 "])
def test_url_is_recorded_to_fetch_later(url: str, tmp_path: Path) -> None:
    assert prepare(url, tmp_path) == RemoteConfigDrive(url.strip())
    assert not (tmp_path / "node").exists()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64 at all!", "this is not valid base64"),
        (base64.b64encode(fake_iso()).decode(), "is not gzip-compressed"),
        (ironic_form(b"just some text"), "not an ISO 9660 image"),
        (ironic_form(fake_iso(pvd_type=2)), "not an ISO 9660 image"),
        (ironic_form(fake_iso("CIDATA")), "volume label is 'CIDATA', not 'config-2'"),
        (base64.b64encode(gzip.compress(fake_iso())[:-20]).decode(), "truncated gzip"),
        (base64.b64encode(b"\x1f\x8b" + b"\xff" * 40).decode(), "corrupt gzip data"),
        ("", "give an object"),
        ("   ", "give an object"),
    ],
)
def test_malformed_strings_are_refused(value: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=message):
        prepare(value, tmp_path)
    assert not (tmp_path / "node" / ISO_NAME).exists()


def test_label_check_ignores_case() -> None:
    check_config_drive_iso(fake_iso("CONFIG-2"))


def test_gzip_bomb_stops_at_the_size_limit(tmp_path: Path) -> None:
    bomb = ironic_form(fake_iso() + bytes(8 << 20))

    with pytest.raises(InvalidInput, match="larger than the 1048576 bytes"):
        prepare(bomb, tmp_path, max_bytes=1 << 20)


def test_oversized_base64_is_refused_before_decoding(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="larger than the 1000 bytes"):
        prepare("A" * 4000, tmp_path, max_bytes=1000)


def test_request_meta_data_wins_over_the_instance_defaults() -> None:
    content = content_from_request(
        {"meta_data": {"hostname": "custom", "extra": [1, 2]}}, instance=INSTANCE
    )

    assert content.meta_data == {
        "uuid": INSTANCE.uuid,
        "name": "web-1",
        "hostname": "custom",
        "launch_index": 0,
        "availability_zone": "rack-4",
        "public_keys": {"ops": "ssh-ed25519 AAAAC3 ops@example"},
        "meta": {"role": "web"},
        "extra": [1, 2],
    }
    assert content.user_data is None
    assert content.network_data is None
    assert content.files()["vendor_data.json"] == b"{}"


@pytest.mark.parametrize(
    ("user_data", "expected"),
    [
        ("#cloud-config\nhostname: x\n", b"#cloud-config\nhostname: x\n"),
        ({"ignition": {"version": "3.0.0"}}, b'{"ignition": {"version": "3.0.0"}}'),
        (["a", 1], b'["a", 1]'),
        ("", None),
    ],
)
def test_user_data_is_encoded_as_ironic_does(user_data: object, expected: bytes | None) -> None:
    content = content_from_request({"user_data": user_data}, instance=INSTANCE)

    assert content.user_data == expected
    assert ("user_data" in content.files()) is (expected is not None)


def test_files_of_a_full_drive() -> None:
    content = ConfigDriveContent(
        meta_data={"uuid": "u"},
        user_data=b"#!/bin/sh\n",
        network_data={"links": []},
        vendor_data={"cloud-init": "#cloud-config\n"},
    )

    files = content.files()

    assert json.loads(files["meta_data.json"]) == {"uuid": "u"}
    assert files["user_data"] == b"#!/bin/sh\n"
    assert json.loads(files["network_data.json"]) == {"links": []}
    assert json.loads(files["vendor_data.json"]) == {"cloud-init": "#cloud-config\n"}


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"metadata": {}}, "unknown keys metadata"),
        ({"meta_data": "uuid=x"}, "meta_data must be an object"),
        ({"network_data": []}, "network_data must be an object"),
        ({"vendor_data": 3}, "vendor_data must be an object"),
        ({"user_data": 42}, "user_data must be a string, an object or a list"),
        ({"meta_data": {"x": object()}}, "not JSON-serialisable"),
    ],
)
def test_malformed_objects_are_refused(request_: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        content_from_request(request_, instance=INSTANCE).files()


def test_instance_without_name_has_no_name_or_hostname() -> None:
    assert InstanceIdentity("u").meta_data() == {
        "uuid": "u",
        "launch_index": 0,
        "availability_zone": "",
        "public_keys": {},
    }


def test_remove_config_drive(tmp_path: Path) -> None:
    drive = unpacked(ironic_form(fake_iso()), tmp_path)

    remove_config_drive(tmp_path / "node")
    remove_config_drive(tmp_path / "node")

    assert not drive.path.exists()
