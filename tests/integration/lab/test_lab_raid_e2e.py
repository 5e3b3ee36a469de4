"""Software RAID in the lab: manual cleaning builds a RAID-1 over a machine's two
disks (2 GiB and 3 GiB) with the agent's mdadm, the deploy writes the image onto it,
and the machine boots from it.  Each member then starts with the whole image (md
metadata 1.0 sits at the end), checked on both qcow2 disks from the host: the
machine boots from either disk (docs/raid.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lablib import DEPLOY_TIMEOUT, Lab, baremetal, deploy_and_boot, disk_head

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

TARGET = {
    "logical_disks": [
        {"size_gb": "MAX", "raid_level": "1", "is_root_volume": True, "controller": "software"}
    ]
}
STEPS = [
    {"interface": "raid", "step": "delete_configuration"},
    {"interface": "raid", "step": "create_configuration"},
]


def test_cleaning_builds_a_raid_1_the_deploy_goes_onto_it_and_the_machine_boots(
    lab_env: Lab, lab_disk_image: Path, tmp_path: Path
) -> None:
    lab = lab_env
    lab.up(nodes=1)
    baremetal(lab, "node", "set", "lab-0", "--raid-interface", "agent")
    # automated cleaning erases every disk's metadata, md superblocks included
    baremetal(lab, "node", "set", "lab-0", "--no-automated-clean")
    # a separate call: the client sets the target before it changes the interface
    baremetal(lab, "node", "set", "lab-0", "--target-raid-config", json.dumps(TARGET))
    baremetal(lab, "node", "manage", "lab-0", "--wait", "120")
    baremetal(lab,
        "node", "clean", "lab-0", "--clean-steps", json.dumps(STEPS), "--wait", DEPLOY_TIMEOUT,
    )  # fmt: skip
    node = lab.node("lab-0")
    assert (node["provision_state"], node["last_error"]) == ("manageable", None)
    [volume] = node["raid_config"]["logical_disks"]
    assert volume["physical_disks"] == ["/dev/vda", "/dev/vdb"]
    assert volume["controller"] == "software" and volume["size_gb"] == 1  # 2 GiB less md's room
    assert node["properties"]["local_gb"] == 1

    # booted from the array's members: which one's partitions the test disk's /init
    # finds first (same labels on both) may be either
    roots = ("/dev/vda", "/dev/vdb")
    deploy_and_boot(lab, lab_disk_image, tmp_path, hostname="raid.lab", managed=True, roots=roots)
    # each member starts with the image's boot code and the partition table the agent
    # wrote through the array (the image's, plus the config drive's entry)
    image_head = lab_disk_image.read_bytes()[:440]
    first = disk_head(lab.lab_dir / "lab-0.qcow2", tmp_path)
    second = disk_head(lab.lab_dir / "lab-0-1.qcow2", tmp_path)
    assert first == second
    assert first[:440] == image_head and first[510:512] == b"\x55\xaa"
    log = "\n".join(lab.node("lab-0")["driver_internal_info"].get("agent_log") or [])
    assert "raid: root volume" in log and "is /dev/md" in log, log
