"""Root-device selection by Ironic's hints."""

from __future__ import annotations

import pytest

from metalcast_agent.errors import DiskError, InvalidArguments
from metalcast_agent.hints import GIB, select_root_device
from metalcast_agent.protocol import Disk

DISKS = [
    Disk(
        "/dev/sda",
        1000 * GIB,
        model="ST1000NM0033",
        vendor="ATA",
        serial="Z1W2",
        wwn="0x5000c500a1b2c3d4",
        rotational=True,
    ),
    Disk(
        "/dev/sdb",
        480 * GIB,
        model="Micron_5300",
        vendor="ATA",
        serial="MX01",
        wwn="0x500a0751e1f2a3b4",
    ),
    Disk(
        "/dev/nvme0n1", 960 * GIB, model="Samsung PM983", serial="S4EU", wwn="eui.0025388b71b0f3a1"
    ),
]


def pick(hints: dict[str, object] | None, image: int | None = 10 * GIB) -> str:
    return select_root_device(DISKS, hints, image_size=image).name


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        (None, "/dev/sdb"),  # the smallest that holds the image
        ({"name": "/dev/nvme0n1"}, "/dev/nvme0n1"),
        ({"name": "sda"}, "/dev/sda"),
        ({"size": 960}, "/dev/nvme0n1"),
        ({"size": ">= 900"}, "/dev/nvme0n1"),
        ({"size": "< 500"}, "/dev/sdb"),
        ({"model": "micron_5300"}, "/dev/sdb"),
        ({"model": "<in> samsung"}, "/dev/nvme0n1"),
        ({"vendor": "s!= ATA"}, "/dev/nvme0n1"),
        ({"serial": "Z1W2"}, "/dev/sda"),
        ({"wwn": "0x500A0751E1F2A3B4"}, "/dev/sdb"),
        ({"rotational": True}, "/dev/sda"),
        ({"rotational": "false", "size": ">= 900"}, "/dev/nvme0n1"),
        ({"vendor": "ATA"}, "/dev/sdb"),
    ],
)
def test_hints_choose_the_disk(hints: dict[str, object] | None, expected: str) -> None:
    assert pick(hints) == expected


def test_without_hints_a_bigger_image_takes_a_bigger_disk() -> None:
    assert pick(None, image=600 * GIB) == "/dev/nvme0n1"
    assert pick(None, image=None) == "/dev/sdb"


def test_no_match_lists_the_hints_and_the_disks() -> None:
    with pytest.raises(DiskError) as caught:
        pick({"serial": "NOPE", "size": 480})

    assert str(caught.value) == (
        'No disk matches the root device hints {"serial": "NOPE", "size": 480}; disks: '
        "/dev/sda (1000.0 GiB, model ST1000NM0033, serial Z1W2), "
        "/dev/sdb (480.0 GiB, model Micron_5300, serial MX01), "
        "/dev/nvme0n1 (960.0 GiB, model Samsung PM983, serial S4EU)"
    )


def test_too_small_names_disk_and_image() -> None:
    disks = [Disk("/dev/vda", GIB)]

    with pytest.raises(DiskError) as caught:
        select_root_device(disks, None, image_size=2 * GIB)

    assert str(caught.value) == "Disk /dev/vda (1.0 GiB) is too small for the image (2.0 GiB)"


def test_a_matching_disk_too_small_is_an_error_not_another_disk() -> None:
    with pytest.raises(DiskError, match=r"^Disk /dev/sdb \(480.0 GiB\) is too small"):
        pick({"serial": "MX01"}, image=500 * GIB)


def test_no_disks_at_all() -> None:
    with pytest.raises(DiskError, match="No disks found"):
        select_root_device([], None, image_size=1)


@pytest.mark.parametrize(
    ("hints", "message"),
    [
        ({"hctl": "0:0:0:0"}, "Unknown root device hint(s) hctl; supported: name, size"),
        ({"size": "big"}, "Root device hint size='big' is not a whole number of GiB"),
        ({"rotational": "maybe"}, "Root device hint rotational='maybe' must be true or false"),
        ({"model": ["a"]}, "Root device hint model=['a'] must be a string"),
    ],
)
def test_bad_hints_say_what_is_wrong(hints: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArguments) as caught:
        pick(hints)

    assert str(caught.value).startswith(message)
