"""Network-boot services: DHCP/TFTP (dnsmasq), iPXE scripts and the boot HTTP server.

The conductor asks for a node to network-boot into the deploy ramdisk with
:meth:`~metalcast.boot.service.BootServices.prepare_node` and forgets it with
:meth:`~metalcast.boot.service.BootServices.clean_node`; the server starts and stops the
services with :meth:`~metalcast.boot.service.BootServices.start` and ``stop``.

Layout of the boot state (defaults, under ``<state_dir>/boot``)::

    files/                 TFTP root, and served over HTTP at /boot/
      undionly.kpxe        iPXE for BIOS PXE ROMs, snponly.efi for UEFI (copies)
      boot.ipxe            generic script: chain the per-MAC script or boot the disk
      boot-tftp.ipxe       the same for nodes that boot over TFTP only
      pxelinux.0, ldlinux.c32, pxelinux.cfg/default
                           PXELINUX, for BIOS machines of nodes that boot over TFTP only
      pxelinux.cfg/01-<mac> -> ../nodes/<uuid>/pxelinux.cfg, such a node's config
      deploy.kernel        -> the configured deploy kernel (symlink)
      deploy.initramfs     -> the configured deploy ramdisk (symlink)
      nodes/<uuid>/        a node's script (and its own kernel/ramdisk links)
      nodes/<mac>.ipxe     -> <uuid>/boot.ipxe, one per port MAC (aa-bb-cc-dd-ee-ff)
    dhcp-hosts/<uuid>      the node's dnsmasq host entries, read through inotify
    dnsmasq.conf, dnsmasq.log, dnsmasq.leases

Errors::

    MetalcastError
    └── BootError                 the boot services cannot do what was asked
        ├── BootSetupError        a file or setting the services need is missing/invalid
        ├── DnsmasqError          dnsmasq failed to start (the message has its last log lines)
        ├── BootHttpError         the boot HTTP server failed to start
        └── NetnsError            an ``ip`` command on a network namespace failed

This package imports only the shared vocabulary (``metalcast.config``, ``errors``,
``logs``, ``secrecy``); ``metalcast.boot.settings`` imports nothing of metalcast, so
that ``metalcast.config`` can include it.
"""
