"""``metalcast tls``: certificates for the API and the boot HTTP server.

``metalcast tls generate`` makes a CA and a server certificate in
``<state_dir>/tls/`` (or ``--dir``) for this host's names and addresses, the boot
network's address and every ``--name``, and prints the settings that use them and
what clients need.  Run again, it issues a new server certificate from the same CA,
so that clients and nodes keep trusting it (``--new-ca`` replaces the CA too).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from metalcast.cli.output import print_json, print_ok
from metalcast.config import Settings, load_settings
from metalcast.tls.authority import SERVER_DAYS, IssuedFiles, issue

app = typer.Typer(help="TLS certificates for the API and the boot HTTP server.")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", envvar="METALCAST_CONFIG", help="TOML settings file.", show_default=False
    ),
]
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


@app.callback()
def tls() -> None:
    """TLS certificates for the API and the boot HTTP server."""


def default_names(settings: Settings) -> list[str]:
    """Where this server is reached: loopback, this host's names, the API's listen
    address and public URL, the boot network's address and the agents' API URL."""
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), socket.getfqdn()]
    if settings.api.host not in _WILDCARDS:
        names.append(settings.api.host)
    names.append(str(settings.boot.address))
    for url in (settings.api.public_url, settings.boot.node_api_url):
        host = urlsplit(url).hostname if url else None
        if host:
            names.append(host)
    return list(dict.fromkeys(names))


@app.command("generate")
def generate(
    *,
    config: ConfigOpt = None,
    state_dir: Annotated[
        Path | None, typer.Option(help="metalcast's state directory.", show_default=False)
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            help="Another DNS name or IP address the server is reached at (repeatable).",
            show_default=False,
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to write (default: <state_dir>/tls).", show_default=False
        ),
    ] = None,
    days: Annotated[
        int, typer.Option(min=1, max=3650, help="Validity of the server certificate.")
    ] = SERVER_DAYS,
    new_ca: Annotated[
        bool, typer.Option("--new-ca", help="Replace the CA too (clients must trust the new one).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Make a CA and a server certificate, and print the settings that use them."""
    environ = dict(os.environ)
    if state_dir is not None:
        environ["METALCAST_STATE_DIR"] = str(state_dir)
    settings = load_settings(config, environ)
    target = directory or settings.state_dir / "tls"
    issued = issue(
        target, names=[*default_names(settings), *(name or [])], days=days, new_ca=new_ca
    )
    if as_json:
        print_json({"files": _files(issued), "names": issued.names, "new_ca": issued.new_ca})
    else:
        print_ok(_summary(issued, settings))


def _files(issued: IssuedFiles) -> dict[str, str]:
    return {
        "ca_cert": str(issued.ca_cert),
        "ca_key": str(issued.ca_key),
        "cert": str(issued.cert),
        "key": str(issued.key),
    }


def _summary(issued: IssuedFiles, settings: Settings) -> str:
    made = "a new CA and " if issued.new_ca else ""
    host = settings.api.host if settings.api.host not in _WILDCARDS else socket.getfqdn()
    url = f"https://{f'[{host}]' if ':' in host else host}:{settings.api.port}"
    return (
        f"Wrote {made}a server certificate to {issued.cert.parent}, valid for: "
        f"{', '.join(issued.names)}\n"
        "Serve the API and the boot HTTP server with it (environment or settings file):\n"
        f"  METALCAST_API__TLS_CERT_FILE={issued.cert}\n"
        f"  METALCAST_API__TLS_KEY_FILE={issued.key}\n"
        f"  METALCAST_BOOT__TLS_CA_FILE={issued.ca_cert}\n"
        f"Clients trust {issued.ca_cert}:\n"
        f"  metalcast --url {url} --cacert {issued.ca_cert} node list\n"
        f"  baremetal --os-endpoint {url} --os-cacert {issued.ca_cert} node list\n"
        f'  openstack.connect(..., baremetal_endpoint_override="{url}", '
        f'cacert="{issued.ca_cert}")\n'
        f"Keep {issued.ca_key} private: it signs certificates everyone here trusts."
    )
