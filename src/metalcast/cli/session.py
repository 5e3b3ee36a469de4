"""What every client command shares: where the API is, which version, who is asking,
how to print."""

from __future__ import annotations

import getpass
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import typer

from metalcast.cli.client import ApiClient, CliError, TokenAuth
from metalcast.tls.trust import ca_context


@dataclass(slots=True)
class Session:
    """The global options of one CLI invocation and its lazily opened client."""

    url: str
    api_version: str | None = None
    as_json: bool = False
    #: where requests go instead of the network (tests pass one in ``obj``)
    transport: httpx.BaseTransport | None = None
    #: an API token (``--token``, ``METALCAST_TOKEN``)
    token: str | None = field(default=None, repr=False)
    #: a user name and password for HTTP Basic (``METALCAST_USERNAME``,
    #: ``METALCAST_PASSWORD``; asked for on a terminal when only the name is set)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: the CA certificate(s) to verify an https API with; None: the system's store
    cacert: Path | None = None
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def client(self) -> ApiClient:
        """The API client, created on first use.

        Raises:
            CliError: a user name without a password, and no terminal to ask on.
            TlsError: ``cacert`` cannot be read or holds no certificate.
        """
        if self._client is None:
            tls = ca_context(self.cacert, setting="--cacert") if self.cacert else None
            self._client = ApiClient(
                self.url,
                self.api_version,
                transport=self.transport,
                auth=self.auth(),
                tls=tls,
            )
        return self._client

    def auth(self) -> httpx.Auth | None:
        """The credentials requests carry: the token if given, else the user's
        password, else none.

        Raises:
            CliError: a user name without a password, and no terminal to ask on.
        """
        if self.token:
            return TokenAuth(self.token)
        if not self.username:
            return None
        if self.password is None:
            if not sys.stdin.isatty():
                raise CliError(
                    f"METALCAST_USERNAME is {self.username} but METALCAST_PASSWORD is not set."
                )
            self.password = getpass.getpass(f"Password of {self.username}: ")
        return httpx.BasicAuth(self.username, self.password)

    def close(self) -> None:
        """Close the client, if one was opened."""
        if self._client is not None:
            self._client.close()
            self._client = None


def session_of(ctx: typer.Context) -> Session:
    """The :class:`Session` the root command stored for this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, Session):
        raise RuntimeError("the root command did not set up a session")
    return obj
