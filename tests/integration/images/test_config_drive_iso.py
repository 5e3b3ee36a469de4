"""Config drives built with the real genisoimage and read back with isoinfo; Ironic's
pre-built form (made by openstacksdk, as Ironic clients do) and URLs round-trip."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from image_http_server import ImageServer
from openstack.baremetal import configdrive as sdk_configdrive

from metalcast.errors import InvalidInput
from metalcast.images.configdrive import (
    ConfigDriveImage,
    InstanceIdentity,
    RemoteConfigDrive,
    fetch_config_drive,
    prepare_config_drive,
)
from metalcast.images.download import Fetcher
from metalcast.images.errors import ImageDownloadError

INSTANCE = InstanceIdentity(
    "8f1b6f0e-8d55-4a53-9bd0-4f4ad8f1c0de",
    name="db-7",
    public_keys={"ops": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB ops@example"},
    availability_zone="zone-a",
)
NETWORK = {"links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}]}


def isoinfo(iso: Path, *args: str) -> str:
    done = subprocess.run(
        ["isoinfo", "-i", str(iso), *args], check=True, capture_output=True, text=True
    )
    return done.stdout


def iso_file(iso: Path, name: str) -> str:
    return isoinfo(iso, "-J", "-x", name)


def build(tmp_path: Path, configdrive: str | dict[str, object]) -> ConfigDriveImage:
    drive = prepare_config_drive(configdrive, instance=INSTANCE, directory=tmp_path / "node")
    assert isinstance(drive, ConfigDriveImage)
    return drive


def test_object_form_builds_a_config_2_iso(tmp_path: Path) -> None:
    drive = build(
        tmp_path,
        {
            "meta_data": {"meta": {"role": "db"}},
            "user_data": "#cloud-config\npackages: [postgresql]\n",
            "network_data": NETWORK,
            "vendor_data": {"cloud-init": "#cloud-config\n"},
        },
    )

    assert "Volume id: config-2" in isoinfo(drive.path, "-d")
    assert drive.sha256 == hashlib.sha256(drive.path.read_bytes()).hexdigest()
    assert drive.size == drive.path.stat().st_size
    for version in ("latest", "2012-08-10"):
        meta = json.loads(iso_file(drive.path, f"/openstack/{version}/meta_data.json"))
        assert meta == {
            "uuid": INSTANCE.uuid,
            "name": "db-7",
            "hostname": "db-7",
            "launch_index": 0,
            "availability_zone": "zone-a",
            "public_keys": {"ops": INSTANCE.public_keys["ops"]},
            "meta": {"role": "db"},
        }
        assert iso_file(drive.path, f"/openstack/{version}/user_data").startswith("#cloud-config")
        network = iso_file(drive.path, f"/openstack/{version}/network_data.json")
        assert json.loads(network) == NETWORK
        vendor = iso_file(drive.path, f"/openstack/{version}/vendor_data.json")
        assert json.loads(vendor) == {"cloud-init": "#cloud-config\n"}


def test_minimal_object_has_meta_data_and_empty_vendor_data(tmp_path: Path) -> None:
    drive = build(tmp_path, {})

    listing = isoinfo(drive.path, "-J", "-f").split()

    assert sorted(f for f in listing if f.startswith("/openstack/latest/")) == [
        "/openstack/latest/meta_data.json",
        "/openstack/latest/vendor_data.json",
    ]
    assert json.loads(iso_file(drive.path, "/openstack/latest/vendor_data.json")) == {}
    assert sorted(p.name for p in (tmp_path / "node").iterdir()) == ["configdrive.iso"]


def test_user_data_object_is_json_encoded(tmp_path: Path) -> None:
    drive = build(tmp_path, {"user_data": {"ignition": {"version": "3.2.0"}}})

    assert json.loads(iso_file(drive.path, "/openstack/latest/user_data")) == {
        "ignition": {"version": "3.2.0"}
    }


def test_ironic_prebuilt_form_round_trips(tmp_path: Path) -> None:
    built = build(tmp_path / "a", {"user_data": "#!/bin/sh\necho hi\n"})
    encoded = base64.b64encode(gzip.compress(built.path.read_bytes())).decode()

    unpacked = build(tmp_path / "b", encoded)

    assert unpacked.path.read_bytes() == built.path.read_bytes()
    assert unpacked.sha256 == built.sha256


def test_drive_built_by_openstacksdk_is_accepted(tmp_path: Path) -> None:
    encoded = sdk_configdrive.build(
        {"uuid": INSTANCE.uuid, "name": "db-7"}, user_data=b"#cloud-config\n", network_data=NETWORK
    )

    drive = build(tmp_path, encoded)

    assert "Volume id: config-2" in isoinfo(drive.path, "-d")
    meta = json.loads(iso_file(drive.path, "/openstack/latest/meta_data.json"))
    assert meta == {"uuid": INSTANCE.uuid, "name": "db-7"}


def test_drive_too_large_for_the_limit_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="larger than the 100000 bytes"):
        prepare_config_drive(
            {"user_data": "x"}, instance=INSTANCE, directory=tmp_path, max_bytes=100_000
        )
    with pytest.raises(InvalidInput, match="its files take"):
        prepare_config_drive(
            {"user_data": "x" * 60_000}, instance=INSTANCE, directory=tmp_path, max_bytes=100_000
        )


@pytest.mark.parametrize("encoding", ["iso", "gzip", "gzip+base64"])
def test_url_form_is_fetched_in_any_encoding(
    image_server: ImageServer, tmp_path: Path, encoding: str
) -> None:
    iso = build(tmp_path / "src", {"meta_data": {"x": 1}}).path.read_bytes()
    body = {
        "iso": iso,
        "gzip": gzip.compress(iso),
        "gzip+base64": base64.b64encode(gzip.compress(iso)),
    }[encoding]
    url = image_server.serve("/cd", body)

    remote = prepare_config_drive(url, instance=INSTANCE, directory=tmp_path / "node")
    assert remote == RemoteConfigDrive(url)
    drive = fetch_config_drive(remote, directory=tmp_path / "node", fetcher=Fetcher())

    assert drive.path.read_bytes() == iso
    assert drive.sha256 == hashlib.sha256(iso).hexdigest()


def test_url_form_errors(image_server: ImageServer, tmp_path: Path) -> None:
    missing = RemoteConfigDrive(image_server.url + "/nothing")
    garbage = RemoteConfigDrive(image_server.serve("/garbage", b"\x00\xff" * 100))

    with pytest.raises(ImageDownloadError) as caught:
        fetch_config_drive(missing, directory=tmp_path, fetcher=Fetcher())
    assert caught.value.message == (
        f"Config drive download from {missing.url} failed: HTTP 404 Not Found"
    )
    with pytest.raises(InvalidInput, match="serves neither an ISO image nor a gzipped one"):
        fetch_config_drive(garbage, directory=tmp_path, fetcher=Fetcher())
    assert not (tmp_path / "configdrive.iso").exists()
