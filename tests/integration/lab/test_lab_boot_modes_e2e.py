"""Deploys in the virtual lab beyond the first one: a UEFI machine (OVMF) and a
machine whose node uses the ``pxe`` boot interface (TFTP only).  Each goes manage →
provide → deploy with a config drive → active, boots from its own disk and reads the
config drive, then undeploy → available; through the real ``metalcast lab`` and
``baremetal`` CLIs, with the fixtures of ``test_lab_deploy_e2e``."""

from __future__ import annotations

from pathlib import Path

import pytest
from lablib import Lab, baremetal, deploy_and_boot, qemu_command_line, undeploy

from metalcast.lab.qemu import OVMF_CODE

# a whole deploy under TCG on a loaded CI machine outlasts the suite's 300 s default
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


@pytest.mark.skipif(not OVMF_CODE.is_file(), reason="needs OVMF (Debian package ovmf)")
def test_a_uefi_machine_deploys_and_boots_its_disk_under_ovmf(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(nodes=1)
    assert lab.node("lab-0")["properties"]["capabilities"] == "boot_mode:bios"
    # as with Ironic: the node's boot mode; the IPMI driver sets the boot device with
    # the EFI flag, and the lab machine's firmware follows it
    baremetal(lab, "node", "set", "lab-0", "--property", "capabilities=boot_mode:uefi")

    # (no automated cleaning: the deploy's ramdisk boot is the one under test)
    console = deploy_and_boot(
        lab, lab_disk_image, tmp_path, hostname="uefi-node.lab", automated_clean=False
    )

    assert "METALCAST-DISK-FIRMWARE uefi" in console
    # OVMF's own PXE client loaded iPXE for UEFI, which booted the deploy ramdisk
    assert '"UEFI PXEv4 (MAC:5254006D6300)"' in console
    assert "/snponly.efi to " in lab.dnsmasq_log()
    args = qemu_command_line(lab)
    assert f"if=pflash,format=raw,unit=0,file={OVMF_CODE},readonly=on" in args
    assert any(arg.startswith("virtio-blk-pci,drive=disk0,bootindex=0") for arg in args)

    undeploy(lab, tmp_path, cleaned=False)


def test_the_pxe_boot_interface_deploys_over_tftp_only(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(nodes=1)
    baremetal(lab, "node", "set", "lab-0", "--boot-interface", "pxe")
    assert lab.node("lab-0")["boot_interface"] == "pxe"

    # (no automated cleaning: the deploy's ramdisk boot is the one under test)
    console = deploy_and_boot(
        lab, lab_disk_image, tmp_path, hostname="pxe-node.lab", automated_clean=False
    )

    assert "METALCAST-DISK-FIRMWARE bios" in console
    # the NIC's iPXE ROM only ran PXELINUX, which loaded the deploy ramdisk over TFTP
    assert "Filename: pxelinux.0" in console
    assert "BOOTIF=01-52-54-00-6d-63-00" in console  # IPAPPEND 2
    # PXELINUX ran: it fetched its core module over TFTP. (Its "PXELINUX 6.04" banner
    # was missing from the serial file once, on a host at load 10, though it booted:
    # the banner reaches the serial port only through SeaBIOS's screen-to-serial
    # emulation; the TFTP log is the record that does not depend on it.)
    tftp = lab.dnsmasq_log()
    assert "/pxelinux.0 to " in tftp and "/ldlinux.c32 to " in tftp, tftp[-3000:]
    assert "/deploy.kernel to " in tftp and "/deploy.initramfs to " in tftp
    assert lab.server_logs is not None
    assert "GET /boot/" not in lab.server_logs()  # nothing of the boot over HTTP

    undeploy(lab, tmp_path, cleaned=False)
