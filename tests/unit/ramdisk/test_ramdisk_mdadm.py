"""mdadm in the ramdisk: the binary and the libraries its ELF file names, from the
Debian packages only; the md modules and packages are part of every build's plan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ramdisk_fakes import FakeApt
from test_ramdisk_elf import shared_object

from metalcast.ramdisk import build, mdadm
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
def trees(tmp_path: Path) -> list[Path]:
    place(tmp_path, "mdadm", "sbin/mdadm", ["libudev.so.1", "libc.so.6"])
    place(tmp_path, "libudev1", f"{LIB}/libudev.so.1.7.5", ["libc.so.6"])
    os.symlink("libudev.so.1.7.5", tmp_path / "libudev1" / LIB / "libudev.so.1")
    place(tmp_path, "libc6", f"{LIB}/libc.so.6", [])
    place(tmp_path, "libc6", f"{LIB}/libm.so.6", ["libc.so.6"])  # not needed: not staged
    return [tmp_path / name for name in ("mdadm", "libudev1", "libc6")]


def test_mdadm_and_only_the_libraries_it_needs_are_staged(
    tmp_path: Path, trees: list[Path]
) -> None:
    stage = tmp_path / "stage"
    assert mdadm.stage_mdadm(trees, stage, tmp_path / "scratch") == "sbin/mdadm"
    staged = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if not p.is_dir())
    assert staged == [
        f"{LIB}/libc.so.6",
        f"{LIB}/libudev.so.1",
        f"{LIB}/libudev.so.1.7.5",
        "sbin/mdadm",
    ]
    assert os.readlink(stage / LIB / "libudev.so.1") == "libudev.so.1.7.5"


def test_a_library_no_package_has_is_an_error(tmp_path: Path, trees: list[Path]) -> None:
    with pytest.raises(RamdiskError, match=r"lack libudev\.so\.1, which sbin/mdadm needs"):
        mdadm.stage_mdadm([trees[0], trees[2]], tmp_path / "stage", tmp_path / "scratch")


def test_a_package_without_mdadm_is_an_error(tmp_path: Path, trees: list[Path]) -> None:
    with pytest.raises(RamdiskError, match="holds none of sbin/mdadm, usr/sbin/mdadm"):
        mdadm.stage_mdadm(trees[1:], tmp_path / "stage", tmp_path / "scratch")


def test_every_build_plans_mdadm_and_the_md_modules(tmp_path: Path) -> None:
    agent = tmp_path / "agent"
    agent.mkdir()
    (agent / "__init__.py").write_text("")
    plan = build.plan_ramdisk(FakeApt(), agent)
    assert {"mdadm", "libudev1"} <= {p.name for p in plan.packages}
    assert {"raid0", "raid1", "raid10"} <= set(build.MODULES)
    assert not {"raid0", "raid1", "raid10"} & build.OPTIONAL_MODULES
