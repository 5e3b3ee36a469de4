"""The ``firmware.update`` step's arguments, as Ironic's firmware interfaces take them.

``settings``: a non-empty list of ``{"component": <name>, "url": <http(s) URL>,
"wait": <seconds, optional>}``.  Checked here once for every firmware interface,
without echoing a URL (it may hold credentials).

Errors::

    InvalidInput   malformed settings, a URL that is not http(s), a bad ``wait``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from metalcast.errors import InvalidInput

#: how the step is named in messages and progress reports
STEP_NAME = "firmware.update"
#: the longest ``wait`` a setting may ask for (Ironic's is unbounded; an hour is
#: already more than any BMC needs to settle)
MAX_WAIT = 3600
STEP_ARGSINFO: Mapping[str, str] = {
    "settings": 'A list of {"component": ..., "url": ..., "wait": ...} to update '
    "(required): the component (bios, bmc, or another the node lists), the http(s) "
    "URL the BMC fetches the image from, and seconds to wait after the update.",
}
_SETTINGS_HELP = (
    'firmware.update needs "settings": a non-empty list of {"component": <name>, '
    '"url": <http(s) URL of the image>, "wait": <seconds, optional>}'
)


@dataclass(frozen=True, slots=True)
class FirmwareSetting:
    """One element of the update step's ``settings``."""

    component: str
    url: str
    wait: int | None = None


def parse_settings(args: Mapping[str, Any]) -> list[FirmwareSetting]:
    """The update step's ``settings``, checked.  Never echoes a URL (it may hold
    credentials).

    Raises:
        InvalidInput: malformed settings or a URL that is not http(s).
    """
    settings = args.get("settings")
    extra = sorted(set(args) - {"settings"})
    if extra:
        raise InvalidInput(f"firmware.update takes only 'settings', not {', '.join(extra)}")
    if not isinstance(settings, list) or not settings:
        raise InvalidInput(_SETTINGS_HELP)
    return [_setting(item, number) for number, item in enumerate(settings, 1)]


def _setting(item: object, number: int) -> FirmwareSetting:
    where = f"firmware.update setting {number}"
    if not isinstance(item, dict):
        raise InvalidInput(f"{where} is not an object. {_SETTINGS_HELP}")
    unknown = sorted(set(item) - {"component", "url", "wait"})
    if unknown:
        raise InvalidInput(f"{where} has unknown key(s) {', '.join(unknown)}. {_SETTINGS_HELP}")
    component, url, wait = item.get("component"), item.get("url"), item.get("wait")
    if not isinstance(component, str) or not component.strip():
        raise InvalidInput(f"{where} needs a 'component' (a name such as bios or bmc)")
    if not isinstance(url, str) or not _http_url(url):
        raise InvalidInput(
            f"{where} ({component}): 'url' must be an http or https URL the BMC can fetch"
        )
    if wait is not None and (
        isinstance(wait, bool) or not isinstance(wait, int) or not 1 <= wait <= MAX_WAIT
    ):
        raise InvalidInput(f"{where} ({component}): 'wait' must be whole seconds, 1 to {MAX_WAIT}")
    return FirmwareSetting(component.strip(), url, wait)


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False
