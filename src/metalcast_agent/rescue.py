"""The ``rescue`` command: a rescue user with the tenant's password, and an SSH server.

Arguments: ``user`` (``rescue``) and ``password_hash`` (SHA-512 crypt,
``$6$salt$…``: the conductor hashed the tenant's password, the agent never sees it).
The user gets uid 0 (a rescue system repairs the machine), home ``/root`` and shell
``/bin/sh``; its line in ``<etc>/passwd`` and ``<etc>/shadow`` (mode 0600) replaces any
earlier one.  Then the environment's SSH commands run in order (by default a new
ed25519 host key, then dropbear, which is listening once it returns).  The hash is
never logged nor reported back.

Once the result is reported the protocol loop stops heartbeating and the agent exits
with :data:`~metalcast_agent.agent.EXIT_RESCUE`; the ramdisk's ``/init`` then keeps
the machine up for the tenant instead of powering it off.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from metalcast_agent.commands import CommandContext, arg_str
from metalcast_agent.errors import InvalidArguments, RescueFailed
from metalcast_agent.log import get_logger

#: the after-report action of ``rescue`` (beside ``power_off`` and ``reboot``)
RESCUE_MODE = "rescue"
#: ``$6$`` [``rounds=N$``] salt ``$`` 86 characters: nothing that could break a line of
#: /etc/shadow (metalcast.secrecy.shadow.SHA512_CRYPT on the conductor's side)
_SHA512_CRYPT = re.compile(r"^\$6\$(?:rounds=[0-9]{1,9}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
#: seconds an SSH command (key generation, starting dropbear) may take
COMMAND_TIMEOUT = 120
_log = get_logger("rescue")


def rescue(args: Mapping[str, object], ctx: CommandContext) -> dict[str, object]:
    """The ``rescue`` command: see the module docstring."""
    user = arg_str(args, "user", command="rescue")
    if not _USER.match(user):
        raise InvalidArguments(f"rescue argument 'user' {user!r} is not a user name")
    hashed = arg_str(args, "password_hash", command="rescue")
    if not _SHA512_CRYPT.match(hashed):
        # not shown: it may be a password sent by mistake
        raise InvalidArguments("rescue argument 'password_hash' is not a SHA-512 crypt hash")
    etc = ctx.env.etc_root
    _replace_line(etc / "passwd", user, f"{user}:x:0:0:rescue:/root:/bin/sh", mode=0o644)
    # 0 days since the last change would force a new password at the first login
    days = 1
    _replace_line(etc / "shadow", user, f"{user}:{hashed}:{days}:0:99999:7:::", mode=0o600)
    _log.info("rescue: user %s can log in with the rescue password", user)
    (etc / "dropbear").mkdir(exist_ok=True)  # where the host key is generated
    for command in ctx.env.ssh_commands:
        _run(command)
    _log.info("rescue: SSH server started")
    ctx.power_request.append(RESCUE_MODE)
    return {"user": user}


def _replace_line(path: Path, user: str, line: str, *, mode: int) -> None:
    """Write ``path`` with ``user``'s line replaced by ``line`` (a new file, renamed
    over the old one, created with ``mode``)."""
    try:
        old = path.read_text().splitlines() if path.exists() else []
    except OSError as exc:
        raise RescueFailed(f"rescue: cannot read {path}: {exc.strerror}") from None
    kept = [existing for existing in old if existing.split(":", 1)[0] != user]
    content = "".join(f"{entry}\n" for entry in [*kept, line])
    partial = path.with_name(f".{path.name}.rescue")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(partial, mode)  # whatever the umask took away
        partial.replace(path)
    except OSError as exc:
        raise RescueFailed(f"rescue: cannot write {path}: {exc.strerror}") from None


def _run(command: tuple[str, ...]) -> None:
    """Run one SSH command to its end.  Raises RescueFailed with its output's tail.

    The output goes to a file, not a pipe: a server that goes to the background may
    keep its stderr open (dropbear -E), and reading a pipe would wait for it."""
    with tempfile.TemporaryFile() as output:
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RescueFailed(f"rescue: {command[0]} could not run: {exc}") from None
        if done.returncode == 0:
            return
        output.seek(0)
        tail = output.read(64 * 1024).decode(errors="replace").strip().splitlines()[-3:]
    detail = "; ".join(tail) or "no output"
    raise RescueFailed(f"rescue: {command[0]} exited with {done.returncode}: {detail}")
