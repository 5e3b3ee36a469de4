#!/usr/bin/env python3
"""What authentication adds to one request, in process: each strategy's
``authenticate()`` for a credential it has already confirmed (the warm path every
request after a client's first takes), timed over many calls on one event loop.

Unlike ``bench/auth.py``, which runs whole servers and clients on the same cores,
this has no network, no other process and no request handling in it: the numbers
are the strategies' own cost, and hardly move with the machine's load.

    .venv/bin/python bench/auth_micro.py                 # 200,000 calls per strategy
    .venv/bin/python bench/auth_micro.py --calls 50000

keystone: keystonemiddleware is set up with settings pointing at a Keystone that is
never asked (the token's identity is put in the cache as a first validation would).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.datastructures import Headers

from metalcast.api.auth import Credentials
from metalcast.api.auth.builtin import BuiltinAuth
from metalcast.api.auth.cache import CredentialCache
from metalcast.api.auth.keystone import KeystoneAuth, _cache_key
from metalcast.api.auth.noauth import NoAuth
from metalcast.cli import bootstrap
from metalcast.config import KeystoneSettings
from metalcast.context import RequestContext
from metalcast.db import identity
from metalcast.db.engine import Database


def _credentials(headers: dict[str, str]) -> Credentials:
    return Credentials(headers=Headers(headers), client="127.0.0.1", request_id="req-1")


async def _time(auth: object, credentials: Credentials, calls: int) -> float:
    authenticate = auth.authenticate  # type: ignore[attr-defined]
    await authenticate(credentials)  # the first: validated, then cached
    started = time.perf_counter()
    for _ in range(calls):
        await authenticate(credentials)
    return (time.perf_counter() - started) / calls * 1e6


def _builtin(state: Path) -> tuple[BuiltinAuth, Credentials]:
    db = Database(f"sqlite:///{state / 'metalcast.sqlite'}")
    db.migrate()
    bootstrap.create_first_admin(db)
    with db.begin() as conn:
        admin = identity.get_user(conn, bootstrap.FIRST_ADMIN)
        _, secret = identity.create_token(
            conn, admin, project=None, expires_at=datetime.now(UTC) + timedelta(hours=1)
        )
    auth = BuiltinAuth(db, cache=CredentialCache(300))
    return auth, _credentials({"X-Auth-Token": secret})


def _keystone() -> tuple[KeystoneAuth, Credentials]:
    settings = KeystoneSettings(
        www_authenticate_uri="http://127.0.0.1:1/v3",
        auth_url="http://127.0.0.1:1/v3",
        auth_type="password",
        username="metalcast",
        password="unused",
        project_name="service",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    cache = CredentialCache(300)
    auth = KeystoneAuth(settings, cache=cache)
    credentials = _credentials({"X-Auth-Token": "gAAAAA" + "k" * 180})
    known = RequestContext(roles=frozenset({"admin"}), system_scope="all", request_id="x")
    cache.put(_cache_key(credentials), known, generation=cache.generation, seconds=300)
    return auth, credentials


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        strategies = {
            "noauth": (NoAuth(), _credentials({})),
            "builtin-token": _builtin(Path(state)),
            "keystone": _keystone(),
        }
        print(f"| strategy | µs per request ({calls:,} calls, warm) |")
        print("|---|---|")
        for name, (auth, credentials) in strategies.items():
            print(f"| {name} | {await _time(auth, credentials, calls):.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    asyncio.run(main(parser.parse_args().calls))
