"""The deploy form of a node's page, and the live panel of its deploy.

A deploy does what ``metalcast host create`` does to its node once allocated: the
image and its checksum go into ``instance_info`` (JSON-Patch), then the provision
target ``active`` with a config drive built by :func:`metalcast.cloud_init.config_drive`
from the host name, SSH keys and user data.  Should the API refuse the deploy, the
node's ``instance_info`` image keys are put back as they were.

User data is a secret: it is sent to the API, which keeps it encrypted, and never
written into a page again (a refused form comes back with that field empty).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from metalcast import cloud_init
from metalcast.api.dashboard.api_calls import Answer, Api
from metalcast.api.dashboard.markup import Html, path, render
from metalcast.api.dashboard.table import progress
from metalcast.errors import InvalidInput

#: the largest deploy form (user data included)
MAX_FORM = 256 * 1024
#: the ``instance_info`` keys the form sets
IMAGE_KEYS = ("image_source", "image_checksum")
_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True, slots=True)
class DeployForm:
    """What the form asks for; ``user_data`` None when none was given."""

    image: str
    checksum: str
    hostname: str
    ssh_keys: str
    user_data: str | None

    @classmethod
    def of(cls, form: Mapping[str, list[str]]) -> DeployForm:
        def value(name: str) -> str:
            return (form.get(name) or [""])[0]

        user_data = value("user_data")
        return cls(
            image=value("image_source").strip(),
            checksum=value("image_checksum").strip(),
            hostname=value("hostname").strip(),
            ssh_keys=value("ssh_keys"),
            user_data=user_data if user_data.strip() else None,
        )

    def drive(self) -> dict[str, Any]:
        """The config drive, once every field is checked.

        Raises:
            InvalidInput: a field is missing or wrong; the message names it.
        """
        parts = urlsplit(self.image)
        if parts.scheme not in _SCHEMES or not (parts.netloc or parts.path):
            raise InvalidInput("Image URL: give an http://, https:// or file:// URL.")
        if not self.checksum:
            raise InvalidInput("Image checksum: give the image's checksum (or its URL).")
        hostname = cloud_init.check_hostname(self.hostname, label="Host name")
        keys = cloud_init.public_keys(self.ssh_keys, label="SSH keys")
        return cloud_init.config_drive(hostname=hostname, ssh_keys=keys, user_data=self.user_data)


async def start(api: Api, node: Mapping[str, Any], form: DeployForm) -> Answer:
    """Set the image and ask for ``active`` with the config drive; the API's answer
    to the deploy (or to the image patch, when that was refused).

    Raises:
        InvalidInput: the form is wrong (nothing was sent).
    """
    drive = form.drive()
    base = "/v1/nodes/" + quote(str(node["uuid"]), safe="")
    before = dict(node.get("instance_info") or {})
    patch = [
        {"op": "add", "path": "/instance_info/image_source", "value": form.image},
        {"op": "add", "path": "/instance_info/image_checksum", "value": form.checksum},
    ]
    patched = await api.send("PATCH", base, body=patch)
    if not patched.ok:
        return patched
    answer = await api.send(
        "PUT", base + "/states/provision", body={"target": "active", "configdrive": drive}
    )
    if not answer.ok:
        await api.send("PATCH", base, body=_restore(before))
    return answer


def _restore(before: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The patch that puts the image keys back as they were."""
    ops: list[dict[str, Any]] = []
    for key in IMAGE_KEYS:
        if key in before:
            ops.append({"op": "add", "path": f"/instance_info/{key}", "value": before[key]})
        else:
            ops.append({"op": "remove", "path": f"/instance_info/{key}"})
    return ops


# ------------------------------------------------------------------------ rendering

_FORM = """<form class="deploy" hx-post="{action}" hx-target="#deploy" hx-swap="innerHTML"
 method="post" action="{action}">
<input type="hidden" name="csrf" value="{csrf}">
{error}
<label>Image URL <input type="url" name="image_source" value="{image}" required
 placeholder="https://example.com/images/debian-12.qcow2"></label>
<label>Image checksum <input type="text" name="image_checksum" value="{checksum}" required
 placeholder="sha256 hex digest, or its URL"></label>
<label>Host name <input type="text" name="hostname" value="{hostname}" required></label>
<label>SSH public keys, one a line <textarea name="ssh_keys" rows="3">{keys}</textarea></label>
<label>User data (cloud-init), not shown again once sent
<textarea name="user_data" rows="5" autocomplete="off"></textarea></label>
<button type="submit">Deploy</button>
</form>"""


def form(
    node: Mapping[str, Any], *, csrf: str, given: DeployForm | None = None, error: str = ""
) -> Html:
    """The deploy form (for an available node), or why there is none; ``given``: the
    values of a refused form, shown again but for the user data."""
    state = node.get("provision_state")
    if state != "available" and given is None:
        return render(
            '<p class="notice">A node is deployed from <em>available</em>; '
            "this one is {state}.</p>",
            state=state or "unknown",
        )
    info = node.get("instance_info") or {}
    name = str(node.get("name") or "")
    default_host = name if _is_hostname(name) else ""
    return render(
        _FORM,
        action=path("nodes", str(node["uuid"]), "deploy"),
        csrf=csrf,
        error=render('<p class="error" id="deploy-error">{text}</p>', text=error) if error else "",
        image=given.image if given else info.get("image_source") or "",
        checksum=given.checksum if given else info.get("image_checksum") or "",
        hostname=given.hostname if given else default_host,
        keys=given.ssh_keys if given else "",
    )


def accepted(node: Mapping[str, Any]) -> Html:
    return render(
        '<p class="ok" id="deploy-accepted">Deploy of {name} accepted: its progress shows '
        "above as it goes.</p>",
        name=node.get("name") or node["uuid"],
    )


def _is_hostname(name: str) -> bool:
    try:
        cloud_init.check_hostname(name)
    except InvalidInput:
        return False
    return bool(name)


def panel(node: Mapping[str, Any]) -> Html:
    """The node's state and the agent's progress: what the event stream redraws."""
    state = str(node.get("provision_state") or "")
    target = node.get("target_provision_state")
    bar = progress(node)
    agent = render('<div class="bar">{bar}</div>', bar=bar) if bar else Html("")
    done = ""
    if state == "active" and not target:
        done = "Deployed."
    elif node.get("last_error") and not target:
        done = "Failed: " + str(node.get("last_error"))
    return render(
        '<div id="live-state" data-state="{state}" data-target="{target}">'
        '<span class="state">{text}</span> · {power}{agent}'
        '<p class="outcome">{done}</p></div>',
        state=state,
        target=target or "",
        text=f"{state} → {target}" if target else state,
        power=node.get("power_state") or "power unknown",
        agent=agent,
        done=done,
    )
