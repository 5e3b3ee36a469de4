"""Whom the boot services trust and what they give the agents to trust them with.

Network-boot firmware cannot check a certificate, so the deploy ramdisk is fetched
over plain HTTP or TFTP.  Beside it the boot loader loads :data:`CA_INITRD`, a small
gzip-compressed cpio archive holding ``/etc/metalcast/ca.pem``; Linux unpacks every
archive it is given into one root filesystem, so the agent finds its CA there without
a ramdisk rebuild.  The boot services write the archive each time they start, from
``boot.tls_ca_file`` or else the server certificate itself: a new CA or certificate
reaches the next node that boots.

Compressed, the archive unpacks wherever the loader places it: the kernel reads an
uncompressed archive only at a 4-byte boundary, and not every loader pads the
ramdisk before it to one.

The relay from the boot server to the API verifies the API too (:func:`relay_trust`).
"""

from __future__ import annotations

import gzip
import io
import ssl
import stat
from urllib.parse import urlsplit

from metalcast import cpio
from metalcast.boot.errors import BootSetupError
from metalcast.boot.settings import BootSettings
from metalcast.tls.certificates import ServerCertificate
from metalcast.tls.trust import ca_context, pem_context, pinned_context, read_ca_bundle, rehearse

#: the file name the boot loaders fetch, in the boot directory
CA_INITRD = "tls-ca.cpio.gz"
#: where the agent finds its CA (``metalcast_agent.config.DEFAULT_CACERT``)
CA_PATH = "etc/metalcast/ca.pem"


def ca_initrd(pem: bytes) -> bytes:
    """The CA initrd holding ``pem`` at :data:`CA_PATH` (the same bytes for the same
    ``pem``: no timestamps)."""
    archive = io.BytesIO()
    cpio.write(
        archive,
        [
            cpio.directory("etc"),
            cpio.directory("etc/metalcast"),
            cpio.Entry(CA_PATH, stat.S_IFREG | 0o644, pem),
        ],
    )
    return gzip.compress(archive.getvalue(), compresslevel=9, mtime=0)


def agent_ca(settings: BootSettings, certificate: ServerCertificate) -> bytes:
    """The PEM certificates the agents verify the boot server with:
    ``boot.tls_ca_file``'s, else the server certificate itself.

    Raises:
        TlsError: ``boot.tls_ca_file`` is unreadable or holds no certificate.
    """
    if settings.tls_ca_file is None:
        return certificate.leaf_pem()
    return read_ca_bundle(settings.tls_ca_file, setting="boot.tls_ca_file")


def check_agents_accept(
    settings: BootSettings, certificate: ServerCertificate, *, ca: bytes, node_api_url: str
) -> None:
    """Make sure the agents, verifying with ``ca``, will accept ``certificate`` at
    the address they are given (when that is this server), and are never sent to a
    plain-HTTP API.

    Raises:
        BootSetupError: what the agents would refuse, and what to change.
    """
    url = urlsplit(node_api_url)
    if url.scheme != "https":
        raise BootSetupError(
            f"boot.node_api_url {node_api_url} is plain HTTP while the boot server serves "
            "TLS: agents would send their token in the clear; give an https:// URL or unset it"
        )
    host = url.hostname or ""
    if (host, url.port or 443) != (str(settings.address), settings.https_port):
        return  # another server: its certificate is not this one
    problem = rehearse(certificate, pem_context(ca), host=host)
    if problem is not None:
        trusted = f"boot.tls_ca_file {settings.tls_ca_file}" if settings.tls_ca_file else "it"
        raise BootSetupError(
            f"agents reaching the boot server at {host} would refuse its certificate "
            f"{certificate.cert_file} (names: {', '.join(certificate.names()) or 'none'}) "
            f"when they trust {trusted}: {problem}. Issue one for {host} signed by that CA "
            f"(metalcast tls generate --name {host}) or set boot.tls_cert_file"
        )


def relay_trust(
    settings: BootSettings, api_certificate: ServerCertificate | None
) -> ssl.SSLContext | None:
    """How the relay verifies the API: ``boot.api_ca_file``; else, relaying to
    metalcast's own API (``boot.api_url`` unset), exactly the certificate that API
    serves; else the system's trust store.  None: the API is plain HTTP.

    Raises:
        TlsError: ``boot.api_ca_file`` is unreadable or holds no certificate.
    """
    if settings.api_ca_file is not None:
        return ca_context(settings.api_ca_file, setting="boot.api_ca_file")
    if settings.api_url is None:
        return pinned_context(api_certificate.leaf) if api_certificate is not None else None
    return ca_context() if settings.api_url.startswith("https:") else None
