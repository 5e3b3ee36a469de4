"""Who set what a deploy fetches: a system administrator, or someone else.

``instance_info`` names what the conductor downloads (the image, its checksum file,
a config drive URL).  An administrator may name local files (inside
``images.file_roots``) and any host; anyone else (an owner or lessee project) may name
neither a local file nor a loopback or link-local host (:mod:`metalcast.images.access`).
The API refuses what it can see at once; the conductor remembers, per key, that a
non-administrator set it (``driver_internal_info.tenant_sources``, which no API
caller can write) and fetches those sources under the stricter rule.
"""

from __future__ import annotations

from collections.abc import Mapping

from metalcast.db.models import JSONDict
from metalcast.images.access import FETCHED_KEYS, IMAGE_KEYS

__all__ = ["FETCHED_KEYS", "IMAGE_KEYS", "TENANT_SOURCES", "tenant_keys", "track"]
#: the ``driver_internal_info`` key listing the fetched keys a non-administrator set
TENANT_SOURCES = "tenant_sources"


def track(
    info: Mapping[str, object],
    *,
    before: Mapping[str, object],
    after: Mapping[str, object],
    admin: bool,
) -> JSONDict:
    """``driver_internal_info`` once ``instance_info`` went from ``before`` to
    ``after`` by a caller who is (``admin``) or is not a system administrator."""
    tenant = set(tenant_keys(info))
    for key in FETCHED_KEYS:
        if before.get(key) == after.get(key):
            continue
        if admin or after.get(key) in (None, ""):
            tenant.discard(key)
        else:
            tenant.add(key)
    out = dict(info)
    if tenant:
        out[TENANT_SOURCES] = sorted(tenant)
    else:
        out.pop(TENANT_SOURCES, None)
    return out


def tenant_keys(info: Mapping[str, object]) -> frozenset[str]:
    """The fetched ``instance_info`` keys a non-administrator set."""
    keys = info.get(TENANT_SOURCES)
    if not isinstance(keys, list):
        return frozenset()
    return frozenset(k for k in keys if isinstance(k, str))
