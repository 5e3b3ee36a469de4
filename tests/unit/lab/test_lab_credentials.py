"""The lab enrols its machines with the caller's credentials."""

from __future__ import annotations

import httpx

from metalcast.cli.client import TokenAuth
from metalcast.lab.enrolment import ServerApi


def test_the_lab_sends_the_callers_credentials() -> None:
    seen: list[str | None] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-auth-token"))
        return httpx.Response(200, json={"id": "v1"})

    api = ServerApi(
        "http://api.test", transport=httpx.MockTransport(handle), auth=TokenAuth("mct_secret")
    )
    api.check()
    api.close()
    assert seen == ["mct_secret"]
