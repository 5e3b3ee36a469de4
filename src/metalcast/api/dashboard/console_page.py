"""A node's serial console in the browser: xterm.js on the API's websocket proxy.

The page enables the console through the API (``PUT .../states/console``) when the
caller asks, then ``static/console.js`` reads ``console_info`` (through
``/dashboard/nodes/{node}/console/info``, the API's answer as the caller) and
connects xterm.js to its ``url``: the API's websocket, whose token the API gives
only to callers who may see this node's console (docs/console.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from metalcast.api.dashboard.api_calls import Answer, Api
from metalcast.api.dashboard.markup import Html, path, render


async def info(api: Api, uuid: str) -> Answer:
    """``GET /v1/nodes/{uuid}/states/console`` as the caller."""
    return await api.get("/v1/nodes/" + quote(uuid, safe="") + "/states/console")


async def switch(api: Api, uuid: str, *, enabled: bool) -> Answer:
    """Ask the API to enable or disable the console (asynchronous, as in Ironic)."""
    target = "/v1/nodes/" + quote(uuid, safe="") + "/states/console"
    return await api.send("PUT", target, body={"enabled": enabled})


_PAGE = """<p><a href="{back}">← {name}</a></p>
<h1>Console of {name} <span class="live" id="console-status">not connected</span></h1>
<p class="hint">Interface <code>{interface}</code>. Keys typed here go to the node's serial
console. The console's output is also kept in its log on the conductor.</p>
<div class="console-actions" hx-target="#console-result">
<button type="button" hx-post="{action}" name="enabled" value="true">Enable console</button>
<button type="button" hx-post="{action}" name="enabled" value="false">Disable console</button>
<span id="console-result" aria-live="polite"></span>
</div>
<div id="terminal" data-info="{info}"></div>"""


def page(node: Mapping[str, Any]) -> Html:
    uuid = str(node["uuid"])
    return render(
        _PAGE,
        back=path("nodes", uuid),
        name=node.get("name") or uuid,
        interface=node.get("console_interface") or "none",
        action=path("nodes", uuid, "console"),
        info=path("nodes", uuid, "console", "info"),
    )


def switched(answer: Answer, *, enabled: bool) -> Html:
    if not answer.ok:
        return render('<span class="error">{text}</span>', text=answer.error)
    text = "enabling the console…" if enabled else "disabling the console…"
    return render('<span class="ok">{text}</span>', text=text)
