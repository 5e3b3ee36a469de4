"""Add one partition at the end of a disk, in its MBR or its GPT.

For a GPT the backup header and entry array move to the real end of the disk (a
whole-disk image written to a larger disk leaves them at the end of the image), both
headers and the entry-array CRC32 are rewritten, and the protective MBR is stretched
to the disk. Partitions are aligned to 1 MiB. Raises
:class:`~metalcast_agent.errors.PartitionTableError` saying why no partition fits.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import astuple, dataclass, replace

from metalcast_agent.disks import device_size, sector_size
from metalcast_agent.errors import DiskError, PartitionTableError

MIB = 1024**2
MBR_LINUX = 0x83
MBR_GPT_PROTECTIVE = 0xEE
MBR_LIMIT = 2**32  # sectors an MBR entry can address
_MBR_ENTRIES = 446
_MBR_ENTRY = struct.Struct("<B3sB3sII")
_CHS_LBA_ONLY = b"\xfe\xff\xff"
GPT_SIGNATURE = b"EFI PART"
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
_GPT_ENTRY = struct.Struct("<16s16sQQQ72s")
#: Linux filesystem data, 0FC63DAF-8483-4772-8E79-3D69D8477DE4, in on-disk byte order
GPT_LINUX_DATA = bytes.fromhex("af3dc60f838472478e793d69d8477de4")


@dataclass(frozen=True, slots=True)
class NewPartition:
    """The partition added: its 1-based number, byte offset and byte size."""

    number: int
    offset: int
    size: int


def partition_device(disk: str, number: int) -> str:
    """``/dev/vda`` + 2 is ``/dev/vda2``; ``/dev/nvme0n1`` + 2 is ``/dev/nvme0n1p2``."""
    return f"{disk}p{number}" if disk[-1:].isdigit() else f"{disk}{number}"


def add_partition_at_end(fd: int, *, size: int, name: str, label: str) -> NewPartition:
    """Add a ``size``-byte partition (a multiple of 1 MiB) at the end of the disk ``fd``.

    ``label`` names a GPT entry (an MBR has no names). Raises PartitionTableError, or
    DiskError when the disk cannot be read or written.
    """
    try:
        return _add_at_end(fd, size=size, name=name, label=label)
    except OSError as exc:
        raise DiskError(f"Updating the partition table of {name} failed: {exc.strerror}") from None


def _add_at_end(fd: int, *, size: int, name: str, label: str) -> NewPartition:
    sector = sector_size(fd)
    total = device_size(fd) // sector
    mbr = os.pread(fd, 512, 0)
    entries = _mbr_entries(mbr)
    if entries is None:
        raise PartitionTableError(
            f"{name} has no partition table (MBR or GPT): write a partitioned whole-disk "
            "image before the config drive"
        )
    if any(entry[2] == MBR_GPT_PROTECTIVE for entry in entries):
        return _add_gpt(fd, _Disk(name, sector, total), size=size, label=label)
    return _add_mbr(fd, _Disk(name, sector, total), entries, size=size)


@dataclass(frozen=True, slots=True)
class _Disk:
    name: str
    sector: int
    total: int  # sectors

    @property
    def align(self) -> int:
        return max(1, MIB // self.sector)


def _mbr_entries(mbr: bytes) -> list[tuple[int, bytes, int, bytes, int, int]] | None:
    """The four MBR entries, or ``None`` when sector 0 holds no partition table."""
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xaa":
        return None
    entries = [_MBR_ENTRY.unpack_from(mbr, _MBR_ENTRIES + 16 * i) for i in range(4)]
    if any(entry[0] not in (0x00, 0x80) for entry in entries):
        return None  # a boot sector of a bare filesystem, not a partition table
    return entries


def _place_at_end(disk: _Disk, *, end: int, size: int, used_until: int, first: int) -> int:
    """The first sector of ``size`` bytes ending at or before sector ``end`` (exclusive)."""
    count = size // disk.sector
    start = (end // disk.align) * disk.align - count
    if start < max(used_until, first):
        raise PartitionTableError(
            f"No room for a {size // MIB} MiB partition at the end of {disk.name}: the "
            f"partitions reach {used_until * disk.sector // MIB} MiB of "
            f"{disk.total * disk.sector // MIB} MiB"
        )
    return start


def _add_mbr(
    fd: int, disk: _Disk, entries: list[tuple[int, bytes, int, bytes, int, int]], *, size: int
) -> NewPartition:
    free = [i for i, entry in enumerate(entries) if entry[2] == 0 and entry[5] == 0]
    if not free:
        raise PartitionTableError(
            f"{disk.name} has four primary partitions: no MBR slot left for the config drive"
        )
    used_until = max((entry[4] + entry[5] for entry in entries if entry[2] != 0), default=0)
    end = min(disk.total, MBR_LIMIT)
    start = _place_at_end(disk, end=end, size=size, used_until=used_until, first=disk.align)
    entry = _MBR_ENTRY.pack(0, _CHS_LBA_ONLY, MBR_LINUX, _CHS_LBA_ONLY, start, size // disk.sector)
    os.pwrite(fd, entry, _MBR_ENTRIES + 16 * free[0])
    return NewPartition(free[0] + 1, start * disk.sector, size)


@dataclass(frozen=True, slots=True)
class _GptHeader:
    signature: bytes
    revision: int
    header_size: int
    header_crc: int
    reserved: int
    my_lba: int
    alternate_lba: int
    first_usable: int
    last_usable: int
    disk_guid: bytes
    entries_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int

    def pack(self, sector: int) -> bytes:
        """The header sector, with its CRC32 computed."""
        fields = replace(self, header_crc=0)
        raw = bytearray(_GPT_HEADER.pack(*astuple(fields)))
        raw += bytes(self.header_size - len(raw))
        struct.pack_into("<I", raw, 16, zlib.crc32(raw))
        return bytes(raw) + bytes(sector - len(raw))


def _read_gpt(fd: int, disk: _Disk) -> tuple[_GptHeader, bytearray]:
    raw = os.pread(fd, disk.sector, disk.sector)
    if raw[:8] != GPT_SIGNATURE:
        raise PartitionTableError(f"{disk.name} has a protective MBR but no GPT header")
    header = _GptHeader(*_GPT_HEADER.unpack_from(raw))
    check = bytearray(raw[: header.header_size])
    struct.pack_into("<I", check, 16, 0)
    if not 92 <= header.header_size <= disk.sector or zlib.crc32(check) != header.header_crc:
        raise PartitionTableError(f"The GPT header of {disk.name} is corrupt (bad size or CRC)")
    if header.entry_size < _GPT_ENTRY.size or header.entry_count > 4096:
        raise PartitionTableError(f"The GPT of {disk.name} has an unsupported entry layout")
    length = header.entry_count * header.entry_size
    table = bytearray(os.pread(fd, length, header.entries_lba * disk.sector))
    if len(table) != length or zlib.crc32(table) != header.entries_crc:
        raise PartitionTableError(f"The GPT partition entries of {disk.name} are corrupt (bad CRC)")
    return header, table


def _add_gpt(fd: int, disk: _Disk, *, size: int, label: str) -> NewPartition:
    header, table = _read_gpt(fd, disk)
    entries = [
        _GPT_ENTRY.unpack_from(table, i * header.entry_size) for i in range(header.entry_count)
    ]
    free = [i for i, entry in enumerate(entries) if entry[0] == bytes(16)]
    if not free:
        raise PartitionTableError(f"The GPT of {disk.name} has no free partition entry")
    entry_sectors = -(-len(table) // disk.sector)
    backup_lba = disk.total - 1
    backup_entries_lba = backup_lba - entry_sectors
    last_usable = backup_entries_lba - 1
    used_until = max((entry[3] + 1 for entry in entries if entry[0] != bytes(16)), default=0)
    start = _place_at_end(
        disk, end=last_usable + 1, size=size, used_until=used_until, first=header.first_usable
    )
    last = start + size // disk.sector - 1
    name = gpt_name(label)
    entry = _GPT_ENTRY.pack(GPT_LINUX_DATA, _random_guid(), start, last, 0, name)
    table[free[0] * header.entry_size : free[0] * header.entry_size + len(entry)] = entry
    primary = replace(
        header,
        alternate_lba=backup_lba,
        last_usable=last_usable,
        entries_crc=zlib.crc32(table),
    )
    backup = replace(
        primary, my_lba=backup_lba, alternate_lba=primary.my_lba, entries_lba=backup_entries_lba
    )
    _write_gpt(fd, disk, primary, backup, table, old_backup=header.alternate_lba)
    return NewPartition(free[0] + 1, start * disk.sector, size)


def _write_gpt(
    fd: int,
    disk: _Disk,
    primary: _GptHeader,
    backup: _GptHeader,
    table: bytes | bytearray,
    *,
    old_backup: int,
) -> None:
    if old_backup != backup.my_lba and 1 < old_backup < disk.total:
        os.pwrite(fd, bytes(disk.sector), old_backup * disk.sector)  # a stale backup confuses tools
    os.pwrite(fd, table, primary.entries_lba * disk.sector)
    os.pwrite(fd, table, backup.entries_lba * disk.sector)
    os.pwrite(fd, backup.pack(disk.sector), backup.my_lba * disk.sector)
    os.pwrite(fd, primary.pack(disk.sector), primary.my_lba * disk.sector)
    _stretch_protective_mbr(fd, disk)


def _stretch_protective_mbr(fd: int, disk: _Disk) -> None:
    mbr = bytearray(os.pread(fd, 512, 0))
    for i in range(4):
        at = _MBR_ENTRIES + 16 * i
        fields = _MBR_ENTRY.unpack_from(mbr, at)
        if fields[2] == MBR_GPT_PROTECTIVE:
            count = min(disk.total - fields[4], 0xFFFFFFFF)
            _MBR_ENTRY.pack_into(mbr, at, *fields[:5], count)
    os.pwrite(fd, bytes(mbr), 0)


def gpt_name(label: str) -> bytes:
    """``label`` as a GPT entry name: 36 UTF-16LE code units, zero-padded.

    Encoded by hand: the ``utf-16-le`` codec is looked up by name at run time, and the
    slim ramdisk only ships the codecs its module probe sees.
    """
    units = b"".join(struct.pack("<H", ord(char)) for char in label[:36] if ord(char) < 0x10000)
    return units.ljust(72, b"\x00")


def _random_guid() -> bytes:
    """A random (version 4) GUID in on-disk byte order."""
    guid = bytearray(os.urandom(16))
    guid[7] = (guid[7] & 0x0F) | 0x40
    guid[8] = (guid[8] & 0x3F) | 0x80
    return bytes(guid)
