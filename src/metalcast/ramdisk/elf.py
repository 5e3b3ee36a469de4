"""Just enough ELF: section contents, the shared libraries a file needs, its interpreter.

Reading these ourselves (rather than running ``ldd`` or ``readelf``) keeps the build
from ever loading a library from the host instead of from the Debian packages.
Only 64-bit little-endian files are understood: the ramdisk is amd64.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from metalcast.ramdisk.errors import RamdiskError

_HEADER = struct.Struct("<16sHHIQQQIHHHHHH")
_SECTION = struct.Struct("<IIQQQQIIQQ")
_DYNAMIC_ENTRY = struct.Struct("<qQ")
_SHT_DYNAMIC = 6
_DT_NULL = 0
_DT_NEEDED = 1


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    kind: int
    offset: int
    size: int
    link: int


def _sections(data: bytes, path: Path) -> list[Section]:
    if len(data) < _HEADER.size or data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        raise RamdiskError(f"{path} is not a 64-bit little-endian ELF file")
    fields = _HEADER.unpack_from(data)
    shoff, shentsize, shnum, shstrndx = fields[6], fields[11], fields[12], fields[13]
    raw = [_SECTION.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    names_offset = raw[shstrndx][4] if shnum else 0
    return [
        Section(
            name=_cstring(data, names_offset + entry[0]),
            kind=entry[1],
            offset=entry[4],
            size=entry[5],
            link=entry[6],
        )
        for entry in raw
    ]


def _cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset : end if end >= 0 else len(data)].decode(errors="replace")


def section(path: Path, name: str) -> bytes | None:
    """The content of the section called ``name``, or None if the file has none.

    Raises:
        RamdiskError: the file is not a 64-bit little-endian ELF file.
    """
    data = path.read_bytes()
    for entry in _sections(data, path):
        if entry.name == name:
            return data[entry.offset : entry.offset + entry.size]
    return None


def needed_libraries(path: Path) -> list[str]:
    """The ``DT_NEEDED`` sonames of a shared object or executable, in file order.

    Raises:
        RamdiskError: the file is not a 64-bit little-endian ELF file.
    """
    data = path.read_bytes()
    sections = _sections(data, path)
    needed = []
    for dynamic in (s for s in sections if s.kind == _SHT_DYNAMIC):
        strings = sections[dynamic.link]
        for index in range(dynamic.size // _DYNAMIC_ENTRY.size):
            tag, value = _DYNAMIC_ENTRY.unpack_from(
                data, dynamic.offset + index * _DYNAMIC_ENTRY.size
            )
            if tag == _DT_NULL:
                break
            if tag == _DT_NEEDED:
                needed.append(_cstring(data, strings.offset + value))
    return needed


def interpreter(path: Path) -> str | None:
    """The program interpreter (``/lib64/ld-linux-x86-64.so.2``), None for a library."""
    content = section(path, ".interp")
    return content.rstrip(b"\0").decode() if content else None


def modinfo(path: Path) -> dict[str, str]:
    """A kernel module's ``.modinfo`` fields (``name``, ``depends``, …); repeated keys
    keep their first value.

    Raises:
        RamdiskError: the file is not a 64-bit little-endian ELF file.
    """
    content = section(path, ".modinfo") or b""
    fields: dict[str, str] = {}
    for item in content.split(b"\0"):
        key, sep, value = item.decode(errors="replace").partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields
