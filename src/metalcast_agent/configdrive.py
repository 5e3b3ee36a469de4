"""``write_configdrive``: add a partition at the end of the disk and copy the ISO in.

The partition is 64 MiB, or the ISO's size rounded up to 1 MiB when larger, and goes
in a free MBR slot or a new GPT entry (see :mod:`metalcast_agent.partitions`).
cloud-init finds the drive by its ``config-2`` filesystem label. When the server does
not announce a length, the ISO is read into memory first (up to 256 MiB) to size the
partition. Raises the errors of :mod:`metalcast_agent.imagewrite` and
:class:`~metalcast_agent.errors.PartitionTableError`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from metalcast_agent import raid
from metalcast_agent.client import Download, Readable
from metalcast_agent.commands import CommandContext, arg_str
from metalcast_agent.disks import (
    disks_named,
    flush_device,
    open_device,
    open_direct,
    reread_partitions,
)
from metalcast_agent.errors import DownloadError
from metalcast_agent.imagewrite import (
    Source,
    Target,
    check_checksum,
    check_length,
    new_digest,
    read_block,
    stream_to_device,
)
from metalcast_agent.log import get_logger, redact_url
from metalcast_agent.partitions import add_partition_at_end, partition_device

MIB = 1024**2
MIN_PARTITION = 64 * MIB
MAX_UNSIZED = 256 * MIB
LABEL = "config-2"
_WHAT = "Config drive download"
_log = get_logger("configdrive")


@dataclass(frozen=True, slots=True)
class ConfigDriveArgs:
    """The arguments of ``write_configdrive``."""

    url: str
    algorithm: str
    checksum: str
    device: str

    @classmethod
    def parse(cls, args: Mapping[str, object]) -> ConfigDriveArgs:
        """Validate ``args``; raises InvalidArguments naming the bad argument."""
        command = "write_configdrive"
        algorithm = arg_str(args, "checksum_algo", command=command)
        new_digest(algorithm)
        return cls(
            url=arg_str(args, "url", command=command),
            algorithm=algorithm,
            checksum=arg_str(args, "checksum", command=command),
            device=arg_str(args, "device", command=command),
        )


def partition_size(iso_size: int) -> int:
    """64 MiB, or ``iso_size`` rounded up to 1 MiB when larger."""
    return max(MIN_PARTITION, -(-iso_size // MIB) * MIB)


def write_configdrive(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``write_configdrive`` command of docs/agent-protocol.md."""
    spec = ConfigDriveArgs.parse(args)
    url = redact_url(ctx.downloads.resolve(spec.url))
    # the disk write_image chose: a whole disk, or the software RAID root volume
    disk = raid.running_array(ctx.env, spec.device) or disks_named(ctx.env, [spec.device])[0]
    with ctx.downloads.open(spec.url, what=_WHAT) as download:
        stream, length = _sized(download, url)
        size = partition_size(length)
        path = ctx.env.device_path(disk.name)
        with open_device(path, name=disk.name) as fd, open_direct(path) as direct:
            added = add_partition_at_end(fd, size=size, name=disk.name, label=LABEL)
            _log.info(
                "write_configdrive: %s created (%s MiB at %s)",
                partition_device(disk.name, added.number),
                size // MIB,
                added.offset,
            )
            target = Target(fd, disk.name, added.offset, added.size, direct)
            source = Source(stream, url, _WHAT, length)
            streamed = stream_to_device(
                source, target, algorithm=spec.algorithm, progress=ctx.report_progress
            )
            flush_device(fd, name=disk.name)
            reread_partitions(fd, name=disk.name)
    check_length(streamed.size, length, what=_WHAT, url=url)
    check_checksum(streamed, spec.checksum, algorithm=spec.algorithm, url=url)
    return {
        "device": disk.name,
        "partition": partition_device(disk.name, added.number),
        "offset": added.offset,
        "size": added.size,
    }


def _sized(download: Download, url: str) -> tuple[Readable, int]:
    """The stream and its length, read into memory when the server did not say."""
    if download.length is not None:
        return download.stream, download.length
    buffer = io.BytesIO()
    block = bytearray(MIB)
    source = Source(download.stream, url, _WHAT, None)
    while count := read_block(source, block):
        buffer.write(memoryview(block)[:count])
        if buffer.tell() > MAX_UNSIZED:
            raise DownloadError(
                f"{_WHAT} from {url} failed: no Content-Length and more than "
                f"{MAX_UNSIZED // MIB} MiB; serve it with a Content-Length"
            )
    length = buffer.tell()
    buffer.seek(0)
    return buffer, length
