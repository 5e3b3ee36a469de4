"""The lab's test disk image boots from a virtio disk under QEMU (TCG), with SeaBIOS
and with OVMF (UEFI), and reads the config drive: a config-2 ISO as a second disk, as
a partition at the end of the boot disk (where the agent writes it), or none at all."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from lab_qemu import QemuRun

from metalcast.lab.diskimage import (
    IMAGE_SIZE,
    META_DATA_FUNCTIONS,
    build_test_image,
    qcow2_variant,
)
from metalcast.lab.qemu import OVMF_CODE, OVMF_VARS
from metalcast.ramdisk.debs import file_sha256

StartQemu = Callable[[Sequence[str]], QemuRun]
NODE_UUID = "1be26c0b-03f2-4d2e-ae87-c02d7f33c123"
META_DATA = {
    "uuid": NODE_UUID,
    "hostname": "node-7.example.org",
    "name": "node-7",
    "public_keys": {
        "alice": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 alice@example.org",
        "bob": "ssh-rsa AAAAB3NzaC1yc2E bob@example.org",
    },
    "launch_index": 0,
}
EXPECTED_DRIVE = f"METALCAST-CONFIGDRIVE hostname=node-7.example.org uuid={NODE_UUID} keys=2"
#: right after the boot partition, which ends where the 64 MiB image did
CONFIG_DRIVE_SECTOR = IMAGE_SIZE // 512
CONFIG_DRIVE_SECTORS = 2048


def _config_drive(directory: Path) -> Path:
    latest = directory / "tree" / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(META_DATA, indent=2))
    (latest / "user_data").write_text("#cloud-config\nhostname: node-7\n")
    iso = directory / "config-2.iso"
    subprocess.run(
        ["genisoimage", "-quiet", "-o", iso, "-V", "config-2", "-r", "-J", latest.parents[1]],
        check=True,
    )
    return iso


def _with_drive_partition(image: Path, iso: Path, target: Path) -> Path:
    """A copy of ``image`` with the ISO in a second partition after the first."""
    shutil.copyfile(image, target)
    with target.open("r+b") as stream:
        stream.truncate((CONFIG_DRIVE_SECTOR + CONFIG_DRIVE_SECTORS) * 512)
    subprocess.run(
        ["sfdisk", "-q", "--append", "--no-reread", "--no-tell-kernel", target],
        input=f"start={CONFIG_DRIVE_SECTOR}, size={CONFIG_DRIVE_SECTORS}, type=83\n".encode(),
        check=True,
    )
    with target.open("r+b") as stream:
        stream.seek(CONFIG_DRIVE_SECTOR * 512)
        stream.write(iso.read_bytes())
    return target


def _disk(path: Path, fmt: str = "raw") -> list[str]:
    """A virtio disk; guest writes go to a throw-away overlay."""
    return ["-drive", f"file={path},format={fmt},if=virtio,snapshot=on"]


def _parsed_by_busybox(meta_data: str) -> str:
    script = (
        'json=$(printf "%s" "$1" | tr -d "\\n")\n'
        + META_DATA_FUNCTIONS
        + 'echo "hostname=$(field hostname) uuid=$(field uuid) keys=$(count_keys)"\n'
    )
    done = subprocess.run(
        ["busybox", "sh", "-c", script, "sh", meta_data], capture_output=True, check=True
    )
    return done.stdout.decode().strip()


@pytest.mark.parametrize("indent", [None, 2])
def test_the_init_reads_meta_data_like_metalcast_writes_it(indent: int | None) -> None:
    meta_data = {**META_DATA, "meta": {"hostname": "not-this", "uuid": "nor-this"}}

    parsed = _parsed_by_busybox(json.dumps(meta_data, indent=indent))

    assert parsed == f"hostname=node-7.example.org uuid={NODE_UUID} keys=2"


def test_no_public_keys() -> None:
    parsed = _parsed_by_busybox(json.dumps({"uuid": NODE_UUID, "public_keys": {}}))

    assert parsed == f"hostname= uuid={NODE_UUID} keys=0"


@pytest.mark.e2e
def test_boots_and_reads_a_config_drive_disk(
    lab_disk_image: Path, start_qemu: StartQemu, tmp_path: Path
) -> None:
    iso = _config_drive(tmp_path)
    qemu = start_qemu([*_disk(lab_disk_image), *_disk(iso)])

    booted = qemu.wait_for(r"METALCAST-DISK-BOOTED root=(\S+)")
    drive = qemu.wait_for(r"METALCAST-CONFIGDRIVE .*")
    user_data = qemu.wait_for(r"METALCAST-USERDATA .*")

    assert booted.group(1) == "/dev/vda"
    assert drive.group(0).strip() == EXPECTED_DRIVE
    assert user_data.group(0).strip() == "METALCAST-USERDATA #cloud-config"
    assert "METALCAST-DISK-FIRMWARE bios" in qemu.log()
    # then a login prompt under the config drive's host name, as a deployed system's
    qemu.wait_for(r"node-7\.example\.org login: ")


@pytest.mark.e2e
@pytest.mark.skipif(not OVMF_CODE.is_file(), reason="needs OVMF (Debian package ovmf)")
def test_boots_under_uefi_and_reads_a_config_drive_partition(
    lab_disk_image: Path, start_qemu: StartQemu, tmp_path: Path
) -> None:
    disk = _with_drive_partition(lab_disk_image, _config_drive(tmp_path), tmp_path / "d.raw")
    nvram = tmp_path / "nvram.fd"
    shutil.copyfile(OVMF_VARS, nvram)
    firmware = [
        "-drive", f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on",
        "-drive", f"if=pflash,format=raw,unit=1,file={nvram}",
    ]  # fmt: skip
    qemu = start_qemu([*firmware, *_disk(disk)])

    drive = qemu.wait_for(r"METALCAST-CONFIGDRIVE .*")

    assert drive.group(0).strip() == EXPECTED_DRIVE
    log = qemu.log()
    assert "METALCAST-DISK-BOOTED root=/dev/vda" in log
    assert "METALCAST-DISK-FIRMWARE uefi" in log
    assert "efi: EFI v2.70 by EDK II" in log


@pytest.mark.e2e
def test_reads_a_config_drive_partition(
    lab_disk_image: Path, start_qemu: StartQemu, tmp_path: Path
) -> None:
    disk = _with_drive_partition(lab_disk_image, _config_drive(tmp_path), tmp_path / "d.raw")
    qemu = start_qemu(_disk(disk))

    drive = qemu.wait_for(r"METALCAST-CONFIGDRIVE .*")

    assert drive.group(0).strip() == EXPECTED_DRIVE
    assert "METALCAST-DISK-BOOTED root=/dev/vda" in qemu.log()


@pytest.mark.e2e
def test_the_qcow2_variant_stays_up_until_the_power_button(
    lab_disk_image: Path, start_qemu: StartQemu
) -> None:
    qcow2 = qcow2_variant(lab_disk_image)
    qemu = start_qemu(_disk(qcow2, "qcow2"))
    qemu.wait_for(r"METALCAST-DISK: active")
    qemu.wait_for(r"metalcast-lab login: ")  # no config drive: the image's own name
    assert qemu.process.poll() is None  # active machines stay up

    qemu.press_power_button()

    assert qemu.wait_exit() == 0
    log = qemu.log()
    assert "METALCAST-DISK-BOOTED root=/dev/vda" in log
    assert "METALCAST-CONFIGDRIVE none" in log
    assert "METALCAST-DISK: power button pressed, powering off" in log


@pytest.mark.e2e
def test_the_image_is_reproducible_and_cached(
    lab_disk_image: Path, lab_cache: Path, tmp_path: Path
) -> None:
    progress: list[str] = []

    rebuilt = build_test_image(tmp_path / "again.raw", cache_dir=lab_cache, force=True)
    again = build_test_image(lab_disk_image, cache_dir=lab_cache, progress=progress.append)

    assert file_sha256(rebuilt) == file_sha256(lab_disk_image)
    assert again == lab_disk_image
    assert progress[-1] == f"up to date: {lab_disk_image}"
