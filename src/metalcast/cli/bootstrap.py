"""The first administrator of the ``builtin`` strategy, and a way back in.

``metalcast server`` creates user ``admin`` with a random password when it starts
under "builtin" and finds no user at all, and prints the credentials once on stdout
(never through the logger, so never into a log file).  ``metalcast user
bootstrap-admin`` works on the database directly, server running or not, for when
those credentials are lost.
"""

from __future__ import annotations

import sys

import sqlalchemy as sa

from metalcast.db import identity, passwords
from metalcast.db.engine import Database

FIRST_ADMIN = "admin"


def create_first_admin(db: Database) -> str | None:
    """The password of the administrator just created, or None when there were users
    already (or another process created them at the same moment)."""
    with db.read() as conn:
        if identity.count_users(conn):
            return None
    password = passwords.random_password()
    hashed = passwords.hash_password(password)
    try:
        with db.begin() as conn:
            if identity.count_users(conn):
                return None
            identity.bootstrap_admin(conn, FIRST_ADMIN, password_hash=hashed)
    except sa.exc.IntegrityError:  # another server process made it first
        return None
    return password


def reset_admin(db: Database, name: str, password: str) -> bool:
    """Create or reset administrator ``name`` with ``password``; True if created."""
    hashed = passwords.hash_password(password)
    with db.begin() as conn:
        return identity.bootstrap_admin(conn, name, password_hash=hashed)


def print_credentials(name: str, password: str, *, url: str, why: str) -> None:
    """Show credentials once, on stdout only, with the lines that put them to use."""
    sys.stdout.write(
        f"\n{why}\n"
        f"This password is shown this once only; keep it somewhere safe.\n\n"
        f"    user:     {name}\n"
        f"    password: {password}\n\n"
        f"Use it with `metalcast` (for `baremetal` and openstacksdk see docs/auth.md):\n\n"
        f"    export METALCAST_URL={url} METALCAST_USERNAME={name}\n"
        f"    export METALCAST_PASSWORD='{password}'\n\n"
    )
    sys.stdout.flush()
