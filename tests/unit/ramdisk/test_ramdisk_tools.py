"""The tools in the ramdisk (mdadm, dropbear, nvme-cli, hdparm): each program and
the libraries its ELF file names, from the Debian packages only; the tools' packages
and the md and server-hardware modules are part of every build's plan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ramdisk_fakes import FakeApt
from test_ramdisk_elf import shared_object

from metalcast.ramdisk import build, tools
from metalcast.ramdisk.errors import RamdiskError

LIB = "lib/x86_64-linux-gnu"


def place(tmp_path: Path, tree: str, relative: str, needed: list[str]) -> Path:
    """An ELF file naming ``needed`` at ``tree/relative``."""
    made = shared_object(tmp_path, needed)
    target = tmp_path / tree / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    made.rename(target)
    return target


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, Path]:
    place(tmp_path, "mdadm", "sbin/mdadm", ["libudev.so.1", "libc.so.6"])
    place(tmp_path, "libudev1", f"{LIB}/libudev.so.1.7.5", ["libc.so.6"])
    os.symlink("libudev.so.1.7.5", tmp_path / "libudev1" / LIB / "libudev.so.1")
    place(tmp_path, "nvme-cli", "usr/sbin/nvme", ["libnvme.so.1", "libz.so.1", "libc.so.6"])
    place(tmp_path, "libnvme1", f"{LIB}/libnvme.so.1", ["libcrypto.so.3", "libc.so.6"])
    place(tmp_path, "libssl3", f"{LIB}/libcrypto.so.3", ["libc.so.6"])
    place(tmp_path, "zlib1g", f"{LIB}/libz.so.1", ["libc.so.6"])
    place(tmp_path, "hdparm", "sbin/hdparm", ["libc.so.6"])
    place(tmp_path, "libc6", f"{LIB}/libc.so.6", [])
    place(tmp_path, "libc6", f"{LIB}/libm.so.6", ["libc.so.6"])  # not needed: not staged
    names = ("mdadm", "libudev1", "nvme-cli", "libnvme1", "libssl3", "zlib1g", "hdparm", "libc6")
    return {name: tmp_path / name for name in names}


def staged(stage: Path) -> list[str]:
    return sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if not p.is_dir())


def test_mdadm_and_only_the_libraries_it_needs_are_staged(
    tmp_path: Path, trees: dict[str, Path]
) -> None:
    stage = tmp_path / "stage"
    assert tools.stage_tool(tools.MDADM, trees, stage, tmp_path / "scratch") == ["sbin/mdadm"]
    assert staged(stage) == [
        f"{LIB}/libc.so.6",
        f"{LIB}/libudev.so.1",
        f"{LIB}/libudev.so.1.7.5",
        "sbin/mdadm",
    ]
    assert os.readlink(stage / LIB / "libudev.so.1") == "libudev.so.1.7.5"


def test_nvme_cli_brings_its_libraries_from_its_packages_and_the_python_runtimes(
    tmp_path: Path, trees: dict[str, Path]
) -> None:
    stage = tmp_path / "stage"
    assert tools.stage_tool(tools.NVME, trees, stage, tmp_path / "s") == ["usr/sbin/nvme"]
    assert tools.stage_tool(tools.HDPARM, trees, stage, tmp_path / "s") == ["sbin/hdparm"]
    assert staged(stage) == [
        f"{LIB}/libc.so.6",
        f"{LIB}/libcrypto.so.3",  # libssl3: the Python runtime's package
        f"{LIB}/libnvme.so.1",
        f"{LIB}/libz.so.1",
        "sbin/hdparm",
        "usr/sbin/nvme",
    ]


def test_a_library_no_package_has_is_an_error(tmp_path: Path, trees: dict[str, Path]) -> None:
    del trees["libudev1"]
    with pytest.raises(RamdiskError, match=r"lack libudev\.so\.1, which sbin/mdadm need"):
        tools.stage_tool(tools.MDADM, trees, tmp_path / "stage", tmp_path / "scratch")


def test_a_package_without_its_program_is_an_error(tmp_path: Path, trees: dict[str, Path]) -> None:
    del trees["mdadm"]
    with pytest.raises(RamdiskError, match="mdadm holds none of sbin/mdadm, usr/sbin/mdadm"):
        tools.stage_tool(tools.MDADM, trees, tmp_path / "stage", tmp_path / "scratch")


def test_every_build_plans_the_tools_and_the_md_and_hardware_modules(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "__init__.py").write_text("")
    plan = build.plan_ramdisk(FakeApt(), agent)
    planned = {p.name for p in plan.packages}
    assert {"mdadm", "libudev1", "dropbear-bin", "nvme-cli", "libnvme1", "hdparm"} <= planned
    assert {"raid0", "raid1", "raid10", "nvme", "ahci", "ixgbe"} <= set(build.MODULES)
    # md is required; a kernel without a server NIC or disk driver still builds
    assert not {"raid0", "raid1", "raid10"} & build.OPTIONAL_MODULES
    assert {"nvme", "ahci", "mlx5_core"} <= build.OPTIONAL_MODULES
