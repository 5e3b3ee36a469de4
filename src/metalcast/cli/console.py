"""``metalcast node console`` and ``metalcast node console-log``: a node's serial
console in this terminal, and what it printed before.

``console`` asks the API where the node's console is (``GET .../states/console``,
whose URL carries a short-lived token for this node) and connects to metalcast's
websocket proxy: the terminal goes into raw mode, what the node prints appears as
it comes, keystrokes go to the node, and ``~.`` at the start of a line leaves (as
in ssh; ``~~`` types one ``~``).
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from metalcast.cli.client import CliError, node_path
from metalcast.cli.output import print_json, stderr
from metalcast.cli.provision import NodeArg
from metalcast.cli.session import Session, session_of
from metalcast.tls.trust import ca_context

#: the escape character, and what follows it to leave
ESCAPE, LEAVE = b"~", b"."


def console(
    ctx: typer.Context,
    node: NodeArg,
    history: Annotated[
        int, typer.Option(help="Bytes of earlier output to show first.", min=0)
    ] = 4096,
) -> None:
    """Attach this terminal to the node's serial console (enable it first:
    `baremetal node console enable NODE`); `~.` at the start of a line leaves."""
    session = session_of(ctx)
    url = _console_url(session, node)
    from websockets.sync.client import connect  # loaded only for a console

    ssl = ca_context(session.cacert, setting="--cacert") if session.cacert else None
    options: dict[str, Any] = {"ssl": ssl} if url.startswith("wss://") else {}
    try:
        ws = connect(f"{url}&history={history}", open_timeout=30, **options)
    except OSError as exc:
        raise CliError(f"cannot reach the console of {node} at {url.split('?')[0]}: {exc}") from exc
    except Exception as exc:  # websockets' handshake errors: refused token, proxy
        raise CliError(f"the console of {node} refused the connection: {exc}") from exc
    stderr().print(f"Connected to the console of {node}; type ~. at the start of a line to leave.")
    with ws, _raw_terminal():
        closed = threading.Event()
        reason: list[str] = []
        printer = threading.Thread(target=_print_output, args=(ws, closed, reason), daemon=True)
        printer.start()
        _type_input(ws, closed)
    stderr().print(f"\r\nDisconnected from the console of {node}{_why(reason)}.")


def console_log(
    ctx: typer.Context,
    node: NodeArg,
    offset: Annotated[
        int | None, typer.Option(help="Output from this offset on (default: all kept).")
    ] = None,
) -> None:
    """Print what the node's console printed, as far back as the conductor keeps it
    (`conductor.console_log_bytes`, the last 1 MiB by default)."""
    session = session_of(ctx)
    params = {} if offset is None else {"offset": offset}
    found = session.client.get(node_path(node, "console", "log"), params=params)
    if session.as_json:
        print_json(found)
        return
    if found.get("missed"):
        stderr().print(f"({found['missed']} earlier bytes are no longer kept)")
    sys.stdout.write(found.get("output", ""))
    sys.stdout.flush()


def _console_url(session: Session, node: str) -> str:
    found = session.client.get(node_path(node, "states", "console"))
    if not found.get("console_enabled"):
        raise CliError(
            f"the console of {node} is not enabled: enable it with "
            f"`baremetal node console enable {node}` (and a console_interface such as "
            "ipmi-sol)"
        )
    info = found.get("console_info") or {}
    if info.get("type") != "websocket" or not info.get("url"):
        kind = info.get("type") or "none"
        raise CliError(
            f"the console of {node} is not one metalcast proxies (type {kind!r}): "
            "set its console_interface to ipmi-sol"
        )
    return str(info["url"])


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    """Raw mode on a terminal stdin (every key goes to the node, Ctrl-C included),
    restored on the way out."""
    fd = sys.stdin.fileno()
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _print_output(ws: Any, closed: threading.Event, reason: list[str]) -> None:
    out = sys.stdout.buffer
    try:
        for frame in ws:
            out.write(frame if isinstance(frame, bytes) else frame.encode())
            out.flush()
    except Exception as exc:  # the connection broke: say so on the way out
        reason.append(str(exc))
    if ws.close_reason:
        reason.append(ws.close_reason)
    closed.set()


def _type_input(ws: Any, closed: threading.Event) -> None:
    """Send stdin to the console until ``~.``, end of input or the console closes."""
    fd = sys.stdin.fileno()
    keys = EscapeReader()
    while not closed.is_set():
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        data = os.read(fd, 1024)
        if not data:
            return
        send, leave = keys.feed(data)
        if send:
            with contextlib.suppress(Exception):  # closed meanwhile: the printer says why
                ws.send(send)
        if leave:
            return


class EscapeReader:
    """Finds ``~.`` at the start of a line in typed input, as ssh does."""

    def __init__(self) -> None:
        self._line_start = True
        self._escaped = False

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        """What to send of ``data``, and whether the user asked to leave."""
        out = bytearray()
        for byte in data:
            char = bytes([byte])
            if self._escaped:
                self._escaped = False
                if char == LEAVE:
                    return bytes(out), True
                out += char if char == ESCAPE else ESCAPE + char
            elif char == ESCAPE and self._line_start:
                self._escaped = True
                continue
            else:
                out += char
            self._line_start = char in (b"\r", b"\n")
        return bytes(out), False


def _why(reason: list[str]) -> str:
    return f" ({reason[0]})" if reason else ""
