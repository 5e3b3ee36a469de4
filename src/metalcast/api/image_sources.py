"""Who may name what a deploy fetches (the rules: :mod:`metalcast.images.access`).

A system administrator may give local files (``file://`` URLs and absolute paths,
which the conductor reads only inside ``images.file_roots``) and any http(s) host.
Anyone else (an owner's or lessee's member, whatever the policy lets update or
deploy a node) may give neither a local file nor an http(s) URL whose host is a
loopback name or a loopback, link-local or unspecified address; names are resolved
and checked again by the conductor when it fetches.  Refused with 403 and a message
naming the key, before anything is written.

Errors: ``Forbidden`` (403).
"""

from __future__ import annotations

from collections.abc import Mapping

from metalcast.config import Settings
from metalcast.context import RequestContext
from metalcast.errors import Forbidden
from metalcast.images.access import (
    FETCHED_KEYS,
    IMAGE_KEYS,
    TENANT_LOCAL_REFUSED,
    is_local_source,
    literal_host_reason,
    parse_networks,
)

_GROUPS = (IMAGE_KEYS, frozenset(FETCHED_KEYS) - IMAGE_KEYS)


def check_instance_info(
    context: RequestContext,
    settings: Settings,
    *,
    before: Mapping[str, object],
    after: Mapping[str, object],
) -> None:
    """Refuse ``after`` (a node's new ``instance_info``) if ``context`` may not set
    it: when a non-administrator changes a key of the image (or the config drive),
    every key of that group must be allowed to it, so that it cannot reuse a local
    path an administrator had given.

    Raises:
        Forbidden: the message names the key and the rule.
    """
    if context.is_admin:
        return
    for group in _GROUPS:
        if all(before.get(key) == after.get(key) for key in group):
            continue
        for key in sorted(group):
            reason = _reason(after.get(key), settings)
            if reason is not None:
                raise Forbidden(f"instance_info/{key}: {reason}.")


def check_configdrive(context: RequestContext, settings: Settings, configdrive: object) -> None:
    """Refuse a provision request's ``configdrive`` URL that ``context`` may not give.

    Raises:
        Forbidden: a non-administrator's URL names an internal host.
    """
    if context.is_admin:
        return
    reason = _reason(configdrive, settings)
    if reason is not None:
        raise Forbidden(f"configdrive: {reason}.")


def _reason(value: object, settings: Settings) -> str | None:
    if not isinstance(value, str):
        return None  # an object (a config drive to build), a number: nothing fetched
    if is_local_source(value):
        return TENANT_LOCAL_REFUSED
    allowed = parse_networks(settings.images.allowed_internal_networks)
    return literal_host_reason(value, allowed)
