"""The deploy ramdisk: a Debian kernel and a small initramfs that start metalcast-agent.

Everything in it comes from Debian packages (``apt-get download`` and ``dpkg -x``,
cached), nothing from the build host: the kernel ``linux-image-amd64`` points at, its
virtio (and e1000) modules, ``busybox-static``, and Debian's python3.11 cut down to the
standard-library modules the agent imports.  ``/init`` brings the network up with
``udhcpc`` and runs ``python3 -I -S -m metalcast_agent``.

Modules: :mod:`~metalcast.ramdisk.debs` (packages), :mod:`~metalcast.ramdisk.kmod`
(kernel modules in load order), :mod:`~metalcast.ramdisk.elf` (sections, DT_NEEDED),
:mod:`~metalcast.ramdisk.python_runtime` (the slim Python),
:mod:`metalcast.cpio` (newc archives, shared with the boot services' CA initrd),
:mod:`~metalcast.ramdisk.initscripts` (``/init``), :mod:`~metalcast.ramdisk.manifest`
(inputs hash, ``manifest.json``), :mod:`~metalcast.ramdisk.build` (the build).

Errors::

    MetalcastError
    └── RamdiskError    a build step failed: the message names the step, the tool's
                        stderr tail and what to check
"""

from __future__ import annotations

from metalcast.ramdisk.build import build_ramdisk, find_ramdisk
from metalcast.ramdisk.errors import RamdiskError
from metalcast.ramdisk.manifest import RamdiskManifest

__all__ = ["RamdiskError", "RamdiskManifest", "build_ramdisk", "find_ramdisk"]
