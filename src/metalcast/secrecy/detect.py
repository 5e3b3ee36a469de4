"""What is secret, and how a secret is hidden wherever it would be shown.

One definition serves every place that hides secrets: API responses (:func:`mask`),
free text such as ``last_error``, node history and log lines (:func:`scrub_text`),
encryption at rest (:class:`metalcast.secrecy.box.SecretBox` seals exactly what this
module finds), and masked values a client sends back (:func:`keep_masked`).

A value is secret when

- its key names a secret, at any depth of dicts and lists (``ipmi_password``,
  ``redfish_auth_token``, ``rescue_password``, ``configdrive``, ``user_data``,
  ``admin_pass``, ``snmp_auth_key``, …): then the whole value is, whatever its type;
- it is the password of a URL's user info (``http://user:pass@host/``) or follows a
  secret key in text: a query parameter (``?token=…``, ``&X-Amz-Signature=…``,
  ``temp_url_sig=…``), an assignment (``password=…``) or a quoted pair
  (``"ipmi_password": "…"``), in any string;
- it is sealed (``fernet:…``, see :mod:`metalcast.secrecy.box`): it shows only as
  the mask, or as the scrubbed text stored beside it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

MASK = "******"

_SECRET_KEY = re.compile(
    r"password|passwd|passphrase|pswd|secret|token|credential|creds"
    r"|configdrive|config_drive|user_?data"
    r"|(?:private|priv|access|api|auth|ssl|tls|encrypted|encryption|fernet|cephx|kg|signing"
    r"|session|master|shared)[_-]?key"
    # short words only as whole words: "admin_pass" is secret, "passthru" is not
    r"|(?:^|[^a-z0-9])(?:pass|pwd|psk|fsk|sig|signature)(?:$|[^a-z0-9])",
    re.IGNORECASE,
)
#: camelCase spellings (Nova's ``adminPass``)
_CAMEL_SECRET = re.compile(r"[a-z0-9](?:Pass|Pwd|Sig)(?:$|[A-Z_\-])")

#: a sealed value: ``fernet:<token>`` (a string), ``fernet+json:<token>`` (any JSON
#: value), optionally followed by a space and the scrubbed text it may be shown as
SEALED_PREFIX = "fernet:"
SEALED_JSON_PREFIX = "fernet+json:"
_TOKEN = re.compile(r"[A-Za-z0-9_\-]+=*")
#: how metalcast's own API tokens begin (``mct_`` + 43 URL-safe characters): a token
#: pasted into a path or a message is a secret wherever it appears
API_TOKEN_PREFIX = "mct_"
_API_TOKEN = re.compile(r"mct_[A-Za-z0-9_-]{16,}")
_SEALED_IN_TEXT = re.compile(r"fernet(?:\+json)?:[A-Za-z0-9_\-]+=*")

#: ``scheme://user:password@``; the password runs to the last ``@`` before a space or
#: quote, so a password holding ``/``, ``:`` or ``@`` (malformed, but seen) is hidden
#: whole, at the price of hiding a little more of a URL that has ``@`` in its path
_USERINFO = re.compile(
    r"(?P<head>\b[a-z][a-z0-9+.\-]*://[^\s:/@\"'<>]*:)(?P<value>[^\s\"'<>]+)@", re.IGNORECASE
)
#: ``key=`` (query parameters, command lines, log fields) and the value after it; a
#: key is found first and its value taken only when the key is secret, so that the
#: value of a harmless key (a whole JSON string) never hides a secret inside it
_ASSIGNMENT_KEY = re.compile(r"(?P<key>[A-Za-z_][\w.\-]*)\s*=\s*(?P<q>)")
_ASSIGNMENT_VALUE = re.compile(r"\"[^\"]*\"|'[^']*'|[^\s,;&#)\]}\"'<>]+")
#: ``"key": value`` in JSON or a Python repr, likewise
_PAIR_KEY = re.compile(r"(?P<q>[\"'])(?P<key>[^\"'\\]{1,100})(?P=q)\s*:\s*")
_PAIR_VALUE = re.compile(
    r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|\{[^{}]*\}|\[[^\[\]]*\]|[\w.+\-]+"
)
_NOT_A_VALUE = frozenset({"null", "None", '""', "''"})
#: known secrets shorter than this are not searched for in text (too many false hits)
MIN_KNOWN_LENGTH = 4


def is_secret_key(key: object) -> bool:
    """True when a value stored under ``key`` is a secret."""
    return isinstance(key, str) and _key_is_secret(key)


@functools.lru_cache(maxsize=8192)
def _key_is_secret(key: str) -> bool:
    return bool(_SECRET_KEY.search(key) or _CAMEL_SECRET.search(key))


# ------------------------------------------------------------------------- sealed values


def is_sealed(value: object) -> bool:
    """True for a value :class:`~metalcast.secrecy.box.SecretBox` encrypted."""
    return isinstance(value, str) and sealed_parts(value) is not None


def sealed_parts(value: str) -> tuple[str, bool, str | None] | None:
    """``(token, holds_json, shown_text)`` of a sealed value, else None."""
    if value.startswith(SEALED_PREFIX):
        holds_json, rest = False, value[len(SEALED_PREFIX) :]
    elif value.startswith(SEALED_JSON_PREFIX):
        holds_json, rest = True, value[len(SEALED_JSON_PREFIX) :]
    else:
        return None
    token, space, text = rest.partition(" ")
    if not _TOKEN.fullmatch(token):
        return None
    return token, holds_json, text if space else None


def sealed(token: str, *, holds_json: bool, shown: str | None) -> str:
    """The stored form of an encrypted value (see :func:`sealed_parts`)."""
    prefix = SEALED_JSON_PREFIX if holds_json else SEALED_PREFIX
    return f"{prefix}{token}" if shown is None else f"{prefix}{token} {shown}"


# ---------------------------------------------------------------------------- free text


def scrub_text(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every secret it holds replaced by ``******``: URL passwords,
    values after secret keys (``password=…``, ``?token=…``, ``"ipmi_password": …``),
    sealed values, metalcast API tokens, and each of the ``known`` secret values."""
    if "fernet" in text:
        text = _SEALED_IN_TEXT.sub(MASK, text)
    if API_TOKEN_PREFIX in text:
        text = _API_TOKEN.sub(MASK, text)
    if "://" in text and "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    if "'" in text or '"' in text:
        text = _masked_values(text, _PAIR_KEY, _PAIR_VALUE)
    if "=" in text:
        text = _masked_values(text, _ASSIGNMENT_KEY, _ASSIGNMENT_VALUE)
    for value in sorted(set(known), key=len, reverse=True):
        if len(value) >= MIN_KNOWN_LENGTH:
            text = text.replace(value, MASK)
    return text


def display_url(url: str) -> str:
    """``url`` as it may be shown: its password and secret query values masked."""
    return scrub_text(url)


def holds_secret(text: str) -> bool:
    """True when ``text`` holds a secret :func:`scrub_text` would hide."""
    return _might_hold_secret(text) and scrub_text(text) != text


def _might_hold_secret(text: str) -> bool:
    """A quick test that rules most strings out (rendering 1,000 nodes checks many)."""
    return (
        "@" in text
        or "=" in text
        or "fernet" in text
        or API_TOKEN_PREFIX in text
        or '"' in text
        or "'" in text
    )


def _secret_values_after_keys(
    text: str, keys: re.Pattern[str], values: re.Pattern[str]
) -> Iterator[tuple[re.Match[str], re.Match[str]]]:
    """``(key match, value match)`` for every secret key in ``text`` and its value."""
    end = 0
    for key in keys.finditer(text):
        if key.start() < end or not is_secret_key(key["key"]):
            continue
        value = values.match(text, key.end())
        if value is not None and value[0] not in _NOT_A_VALUE:
            end = value.end()
            yield key, value


def _masked_values(text: str, keys: re.Pattern[str], values: re.Pattern[str]) -> str:
    parts: list[str] = []
    done = 0
    for key, value in _secret_values_after_keys(text, keys, values):
        # quoted as the key is: a dict's repr inside a JSON log line stays valid JSON
        parts += [text[done : key.end()], f"{key['q']}{MASK}{key['q']}"]
        done = value.end()
    return "".join(parts) + text[done:] if parts else text


def _secrets_in_text(text: str) -> set[str]:
    """The secret values :func:`scrub_text` would hide in ``text`` (unquoted)."""
    if not _might_hold_secret(text):
        return set()
    found = {m["value"] for m in _USERINFO.finditer(text)}
    for keys, values in ((_PAIR_KEY, _PAIR_VALUE), (_ASSIGNMENT_KEY, _ASSIGNMENT_VALUE)):
        for _key, value in _secret_values_after_keys(text, keys, values):
            found.add(value[0].strip("\"'"))
    return found


# ---------------------------------------------------------------------- JSON documents


def mask(value: Any) -> Any:
    """A copy of the JSON value ``value`` as it may be shown: the value of every secret
    key (at any depth, of any type) replaced by ``******``, every string scrubbed
    (:func:`scrub_text`), every sealed value shown as its mask."""
    # exact type tests and no helper calls for the common cases: a list of 1,000
    # nodes masks some 50,000 values
    kind = type(value)
    if kind is str:
        return shown(value) if _might_hold_secret(value) else value
    if kind is dict:
        return {
            k: MASK
            if v is not None and v != "" and type(k) is str and _key_is_secret(k)
            else (v if type(v) in _SCALARS else mask(v))
            for k, v in value.items()
        }
    if kind is list:
        return [v if type(v) in _SCALARS else mask(v) for v in value]
    # subclasses, as the exact types
    if isinstance(value, dict):
        return mask(dict(value))
    if isinstance(value, list):
        return mask(list(value))
    if isinstance(value, str):
        return mask(str(value))
    return value


_SCALARS = frozenset({int, float, bool, type(None)})


def shown(text: str) -> str:
    """A string as it may be shown (sealed: its stored scrubbed text, or the mask)."""
    if not _might_hold_secret(text):
        return text
    parts = sealed_parts(text)
    if parts is not None:
        return parts[2] if parts[2] is not None else MASK
    return scrub_text(text)


def _secret_item(key: object, value: object) -> bool:
    return value is not None and value != "" and is_secret_key(key)


def has_unsealed_secret(value: Any) -> bool:
    """True when the JSON value ``value`` holds a secret that is not sealed."""
    if isinstance(value, dict):
        return any(
            not is_sealed(v) if _secret_item(k, v) else has_unsealed_secret(v)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(has_unsealed_secret(v) for v in value)
    return isinstance(value, str) and not is_sealed(value) and holds_secret(value)


def secret_values(value: Any) -> set[str]:
    """The secrets in a cleartext JSON value, as strings: everything under a secret key
    (numbers as their text) and what :func:`scrub_text` finds in strings.  Values
    shorter than :data:`MIN_KNOWN_LENGTH` are left out."""
    found: set[str] = set()
    _collect(value, found, secret=False)
    return {v for v in found if len(v) >= MIN_KNOWN_LENGTH and v != MASK}


def _collect(value: Any, found: set[str], *, secret: bool) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, found, secret=secret or is_secret_key(key))
    elif isinstance(value, list):
        for item in value:
            _collect(item, found, secret=secret)
    elif isinstance(value, str):
        if secret:
            found.add(value)
        else:
            found.update(_secrets_in_text(value))
    elif secret and isinstance(value, int | float) and not isinstance(value, bool):
        found.add(str(value))


def keep_masked(stored: Any, new: Any) -> Any:
    """``new`` with every value that is what the API showed for the stored value at the
    same place (``******``, a URL with its password masked) replaced by the stored
    value: a client that sends back what it read keeps the secret it could not see."""
    if isinstance(new, dict) and isinstance(stored, dict):
        return {k: _kept(stored, key=k, new=v) for k, v in new.items()}
    if isinstance(new, list) and isinstance(stored, list) and len(new) == len(stored):
        return [keep_masked(s, n) for s, n in zip(stored, new, strict=True)]
    if isinstance(new, str) and isinstance(stored, str) and new != stored and shown(stored) == new:
        return stored
    return new


def _kept(stored: dict[str, Any], *, key: str, new: Any) -> Any:
    if key not in stored:
        return new
    old = stored[key]
    if new == MASK and _secret_item(key, old):
        return old
    return keep_masked(old, new)
