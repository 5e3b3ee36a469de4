"""The whole-suite secret check: which secrets the tests use, and where they leaked.

Every secret an integration test hands to a server is registered here, either in
:data:`KNOWN` (values several tests share) or with :func:`register` (import this
module: ``from secret_scan import register``).  When a server started by
``conftest.running_server`` stops, its stdout, its stderr and the raw bytes of its
database files (``metalcast.sqlite``, ``-wal``, ``-shm``) are searched for every
registered value, as it is, JSON-escaped and base64-encoded (at each of the three
byte alignments it can have inside a longer encoded blob); a hit fails the test that
ran the server.

A value only counts when it is distinctive: a word that also names a setting
(``password``) cannot be registered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

#: secrets the suite's tests give to servers (kept distinctive on purpose)
KNOWN: frozenset[str] = frozenset(
    {
        "hunter2-Very-Secret",  # server/test_secrets.py
        "s3cret-pw",  # cli/test_cli_server.py, clients/test_baremetal_cli.py
        "Rescue-Sdk-Pass-4f1e",  # clients/test_openstacksdk.py
        "not-the-password",  # bmc/test_bmc_api.py
        "lab-pass-1",  # bmc/bmclab.py
    }
)
_REGISTERED: set[str] = set(KNOWN)
#: shorter values would match by chance inside random bytes and ciphertext
MIN_LENGTH = 6
#: base64 fragments shorter than this (48 bits) could match by chance
MIN_ENCODED = 8


def register(*values: str) -> None:
    """Add ``values`` to the secrets every server's files are searched for.

    Raises:
        ValueError: a value is too short to be told apart from chance.
    """
    for value in values:
        if len(value) < MIN_LENGTH:
            raise ValueError(f"a registered secret needs {MIN_LENGTH} characters at least")
        _REGISTERED.add(value)


def registered() -> frozenset[str]:
    """Every secret registered so far."""
    return frozenset(_REGISTERED)


def forms(value: str) -> dict[str, bytes]:
    """How ``value`` may appear in a file: ``{description: bytes}``."""
    raw = value.encode()
    found = {"as is": raw, "JSON-escaped": json.dumps(value)[1:-1].encode()}
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        # the characters that depend on the value's bytes only
        first = -(-offset // 3) * 4
        last = ((offset + len(raw)) // 3) * 4
        core = encoded[first:last]
        if len(core) >= MIN_ENCODED:
            found[f"base64 (alignment {offset})"] = core
            found[f"url-safe base64 (alignment {offset})"] = core.replace(b"+", b"-").replace(
                b"/", b"_"
            )
    return found


def leaks(paths: Iterable[Path], secrets: Iterable[str] | None = None) -> list[str]:
    """Where any of ``secrets`` (the registered ones by default) is in ``paths``:
    one line per hit, naming the file, the form and the secret's first characters."""
    wanted = sorted(registered() if secrets is None else set(secrets))
    found = []
    for path in paths:
        if not path.is_file():
            continue
        data = path.read_bytes()
        for secret in wanted:
            for how, pattern in forms(secret).items():
                if pattern in data:
                    found.append(f"{path.name}: {secret[:3]}… ({len(secret)} chars) {how}")
    return found
