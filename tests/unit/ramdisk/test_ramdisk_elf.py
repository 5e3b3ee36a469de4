"""Reading ELF sections: kernel module info, DT_NEEDED, the program interpreter."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from metalcast.ramdisk import elf
from metalcast.ramdisk.errors import RamdiskError

HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
SECTION = struct.Struct("<IIQQQQIIQQ")
DYNAMIC = struct.Struct("<qQ")
SHT_PROGBITS, SHT_STRTAB, SHT_DYNAMIC = 1, 3, 6

Section = tuple[str, int, bytes, int]  # name, type, data, link (section index)


def elf_bytes(sections: list[Section]) -> bytes:
    """A minimal 64-bit little-endian ELF file holding ``sections`` (index 1 onwards)."""
    names = b"\0"
    offsets_of_names = []
    for name in [*(s[0] for s in sections), ".shstrtab"]:
        offsets_of_names.append(len(names))
        names += name.encode() + b"\0"
    everything = [*sections, (".shstrtab", SHT_STRTAB, names, 0)]
    body, data_offsets = b"", []
    for _, _, data, _ in everything:
        data_offsets.append(HEADER.size + len(body))
        body += data
    table = SECTION.pack(*[0] * 10)
    for index, (_, kind, data, link) in enumerate(everything):
        table += SECTION.pack(
            offsets_of_names[index], kind, 0, 0, data_offsets[index], len(data), link, 0, 1, 0
        )
    ident = b"\x7fELF\x02\x01\x01" + bytes(9)
    count = len(everything) + 1
    header = HEADER.pack(
        ident, 3, 62, 1, 0, 0, HEADER.size + len(body), 0, HEADER.size, 0, 0,
        SECTION.size, count, count - 1,
    )  # fmt: skip
    return header + body + table


def shared_object(tmp_path: Path, needed: list[str], interp: str | None = None) -> Path:
    strings = b"\0" + b"".join(n.encode() + b"\0" for n in needed)
    entries, offset = b"", 1
    for name in needed:
        entries += DYNAMIC.pack(1, offset)
        offset += len(name) + 1
    entries += DYNAMIC.pack(0, 0) + DYNAMIC.pack(1, 0)  # after DT_NULL: ignored
    sections: list[Section] = [
        (".dynstr", SHT_STRTAB, strings, 0),
        (".dynamic", SHT_DYNAMIC, entries, 1),
    ]
    if interp is not None:
        sections.append((".interp", SHT_PROGBITS, interp.encode() + b"\0", 0))
    path = tmp_path / "lib.so"
    path.write_bytes(elf_bytes(sections))
    return path


def test_needed_libraries_in_file_order(tmp_path: Path) -> None:
    path = shared_object(tmp_path, ["libm.so.6", "libz.so.1", "libc.so.6"])

    assert elf.needed_libraries(path) == ["libm.so.6", "libz.so.1", "libc.so.6"]


def test_interpreter_of_an_executable_and_of_a_library(tmp_path: Path) -> None:
    program = shared_object(tmp_path, ["libc.so.6"], interp="/lib64/ld-linux-x86-64.so.2")
    assert elf.interpreter(program) == "/lib64/ld-linux-x86-64.so.2"

    library = shared_object(tmp_path, ["libc.so.6"])
    assert elf.interpreter(library) is None


def test_modinfo_fields(tmp_path: Path) -> None:
    info = b"license=GPL\0depends=virtio_ring,virtio\0name=virtio_blk\0alias=a\0alias=b\0"
    path = tmp_path / "virtio_blk.ko"
    path.write_bytes(elf_bytes([(".modinfo", SHT_PROGBITS, info, 0)]))

    fields = elf.modinfo(path)

    assert fields["depends"] == "virtio_ring,virtio"
    assert fields["name"] == "virtio_blk"
    assert fields["alias"] == "a"


def test_a_module_without_modinfo_has_no_fields(tmp_path: Path) -> None:
    path = tmp_path / "plain.ko"
    path.write_bytes(elf_bytes([(".text", SHT_PROGBITS, b"\x90", 0)]))

    assert elf.modinfo(path) == {}
    assert elf.needed_libraries(path) == []


def test_not_an_elf_file(tmp_path: Path) -> None:
    path = tmp_path / "script"
    path.write_text("#!/bin/sh\n")

    with pytest.raises(RamdiskError, match="is not a 64-bit little-endian ELF file"):
        elf.needed_libraries(path)
