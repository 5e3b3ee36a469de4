"""What every client command shares: where the API is, which version, how to print."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx
import typer

from metalcast.cli.client import ApiClient
from metalcast.tls.trust import ca_context


@dataclass(slots=True)
class Session:
    """The global options of one CLI invocation and its lazily opened client."""

    url: str
    api_version: str | None = None
    as_json: bool = False
    #: where requests go instead of the network (tests pass one in ``obj``)
    transport: httpx.BaseTransport | None = None
    #: the CA certificate(s) to verify an https API with; None: the system's store
    cacert: Path | None = None
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def client(self) -> ApiClient:
        """The API client, created on first use.

        Raises:
            TlsError: ``cacert`` cannot be read or holds no certificate.
        """
        if self._client is None:
            tls = ca_context(self.cacert, setting="--cacert") if self.cacert else None
            self._client = ApiClient(self.url, self.api_version, transport=self.transport, tls=tls)
        return self._client

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
