"""newc cpio archives: what the kernel unpacks, owned by root, reproducible."""

from __future__ import annotations

import io
import stat
from pathlib import Path

from metalcast import cpio


def read_newc(archive: bytes) -> list[dict[str, object]]:
    """Parse a newc archive (enough for these tests) into member dicts."""
    members: list[dict[str, object]] = []
    offset = 0
    while True:
        assert archive[offset : offset + 6] == b"070701"
        fields = [int(archive[offset + 6 + i * 8 : offset + 14 + i * 8], 16) for i in range(13)]
        name_size, file_size = fields[11], fields[6]
        name_start = offset + 110
        name = archive[name_start : name_start + name_size - 1].decode()
        data_start = name_start + name_size + (-(110 + name_size) % 4)
        data = archive[data_start : data_start + file_size]
        offset = data_start + file_size + (-file_size % 4)
        if name == "TRAILER!!!":
            assert offset == len(archive)
            return members
        members.append(
            {"name": name, "mode": fields[1], "uid": fields[2], "gid": fields[3],
             "mtime": fields[5], "rdev": (fields[9], fields[10]), "data": data}
        )  # fmt: skip


def test_members_round_trip_with_padding() -> None:
    out = io.BytesIO()
    entries = [
        cpio.directory("dev"),
        cpio.char_device("dev/console", 5, 1),
        cpio.Entry("init", stat.S_IFREG | 0o755, b"#!/bin/sh\n"),
        cpio.Entry("odd", stat.S_IFREG | 0o644, b"12345"),
    ]

    cpio.write(out, entries)

    members = read_newc(out.getvalue())
    assert [m["name"] for m in members] == ["dev", "dev/console", "init", "odd"]
    assert members[1]["rdev"] == (5, 1)
    assert stat.S_ISCHR(int(str(members[1]["mode"])))
    assert members[3]["data"] == b"12345"
    assert all(m["uid"] == 0 and m["gid"] == 0 and m["mtime"] == cpio.MTIME for m in members)


def test_a_tree_is_archived_parents_first_with_normalized_modes(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "usr" / "bin" / "python3.11").write_bytes(b"ELF")
    (tmp_path / "usr" / "bin" / "python3.11").chmod(0o700)
    (tmp_path / "usr" / "bin" / "python3").symlink_to("python3.11")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (tmp_path / "etc" / "hosts").chmod(0o600)

    entries = {e.path: e for e in cpio.tree_entries(tmp_path)}

    assert list(entries) == [
        "etc", "usr", "etc/hosts", "usr/bin", "usr/bin/python3", "usr/bin/python3.11",
    ]  # fmt: skip
    assert entries["usr/bin/python3.11"].mode == stat.S_IFREG | 0o755
    assert entries["etc/hosts"].mode == stat.S_IFREG | 0o644
    assert entries["usr/bin/python3"].mode == stat.S_IFLNK | 0o777
    assert entries["usr/bin/python3"].data == b"python3.11"


def test_the_same_tree_gives_the_same_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("a")
    first, second = io.BytesIO(), io.BytesIO()

    cpio.write(first, cpio.tree_entries(tmp_path))
    (tmp_path / "a").touch()
    cpio.write(second, cpio.tree_entries(tmp_path))

    assert first.getvalue() == second.getvalue()
