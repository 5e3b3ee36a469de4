"""The ``metalcast host`` commands: a bare-metal host in one call, and gone in another.

``host create`` is what ZStack's "create a bare-metal host" does, on Ironic's terms:
allocate a node (resource class, traits), give it the image (``instance_info``) and a
config drive (``meta_data`` with the hostname and SSH key, ``user_data``), deploy it,
and follow the deploy with ``--wait``.  Whatever fails on the way, it gives back what
it took (the deploy is undeployed, the allocation deleted) and says why.  A host is
its allocation: its name is the allocation's (``--name``, else the hostname), and
``extra`` records the hostname and image.  ``host delete`` undeploys the node (which
deletes the allocation) and deletes the allocation if it is still there.
"""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Annotated, Any

import typer

from metalcast import cloud_init
from metalcast.cli import allocations
from metalcast.cli.allocations import allocation_path, note, wait_for_allocation
from metalcast.cli.client import JSON, ApiClient, ApiError, CliError, node_path
from metalcast.cli.output import print_json, print_ok, short, stdout, table
from metalcast.cli.provision import TimeoutOpt, WaitOpt, follow
from metalcast.cli.session import Session, session_of
from metalcast.cli.waiting import (
    EXPECTED_STATES,
    Mark,
    Verdict,
    WaitTimeout,
    failure_message,
    judge_provision,
)

app = typer.Typer(help="Create and delete bare-metal hosts in one call.", no_args_is_help=True)

HostArg = Annotated[str, typer.Argument(help="Host (allocation) name or UUID.", show_default=False)]
#: seconds ``host create`` waits for its allocation when --wait-timeout is not given
ALLOCATION_TIMEOUT = 120.0
#: the ``instance_info`` keys ``host create`` sets, removed again if it gives up
_IMAGE_KEYS = ("image_source", "image_checksum")


# ------------------------------------------------------------------------- inputs


def check_hostname(hostname: str) -> str:
    """A DNS host name (RFC 1123 labels).  Raises InvalidInput."""
    return cloud_init.check_hostname(hostname, label="--hostname")


def read_ssh_key(value: str) -> str:
    """An OpenSSH public key, given as itself or as the file holding it.

    Raises:
        CliError: not a public key (a private key is refused), or a missing file.
    """
    path = Path(value).expanduser()
    text = path.read_text(errors="replace").strip() if path.is_file() else value.strip()
    if cloud_init.is_private_key(text):
        raise CliError(f"--ssh-key {value!r} is a private key: give the public one (.pub)")
    if not cloud_init.is_public_key(text):
        if "/" in value or value.endswith(".pub"):
            raise CliError(f"--ssh-key {value!r}: no such file, or not an OpenSSH public key")
        raise CliError(
            f"--ssh-key {short(value, 40)!r} is neither an OpenSSH public key "
            "(ssh-ed25519 AAAA…) nor a file holding one"
        )
    return text.splitlines()[0]


def read_user_data(path: Path | None) -> str | None:
    """The user data file's text.  Raises CliError when it cannot be read."""
    if path is None:
        return None
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--user-data {str(path)!r} cannot be read: {exc}") from None


def config_drive(*, hostname: str, ssh_key: str, user_data: str | None) -> JSON:
    """The config drive object the server builds the ISO from (API 1.56)."""
    return cloud_init.config_drive(hostname=hostname, ssh_keys=[ssh_key], user_data=user_data)


# ------------------------------------------------------------------------- create


@app.command()
def create(  # noqa: PLR0913 - one parameter per command-line option
    ctx: typer.Context,
    *,
    resource_class: Annotated[str, typer.Option(help="The kind of node to take.")],
    image: Annotated[str, typer.Option(help="The image: an http(s):// or file:// URL.")],
    checksum: Annotated[str, typer.Option(help="Its checksum (hex digest) or checksum URL.")],
    ssh_key: Annotated[str, typer.Option(help="An OpenSSH public key, or a file holding it.")],
    hostname: Annotated[str, typer.Option(help="The host's name, for cloud-init.")],
    trait: Annotated[
        list[str] | None,
        typer.Option(
            "--trait", "--traits", help="A trait the node must have (repeat).", show_default=False
        ),
    ] = None,
    user_data: Annotated[
        Path | None, typer.Option(help="A cloud-init user data file.", show_default=False)
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            help="The host's (allocation's) name; default: the hostname.", show_default=False
        ),
    ] = None,
    wait: WaitOpt = False,
    wait_timeout: TimeoutOpt = 0,
) -> None:
    """Allocate a node, write the image and a config drive to it, deploy it."""
    session = session_of(ctx)
    hostname = check_hostname(hostname)
    drive = config_drive(
        hostname=hostname, ssh_key=read_ssh_key(ssh_key), user_data=read_user_data(user_data)
    )
    body: JSON = {
        "resource_class": resource_class,
        "name": name or hostname,
        "extra": {"hostname": hostname, "image_source": image},
    }
    if trait:
        body["traits"] = trait
    host = Host(session.client, label=str(body["name"]))
    host.allocate(body, timeout=wait_timeout or ALLOCATION_TIMEOUT)
    host.deploy(image=image, checksum=checksum, drive=drive)
    if wait:
        host.follow_deploy(timeout=wait_timeout)
    report(session, host, deployed=wait)


class Host:
    """One ``host create`` in progress: what it took so far, to give back on failure."""

    def __init__(self, client: ApiClient, *, label: str) -> None:
        self.client = client
        self.label = label
        self.allocation: JSON = {}
        self.node: str | None = None
        self.deploying = False
        self.last: JSON = {}

    def allocate(self, body: JSON, *, timeout: float) -> None:
        """Create the allocation and wait until it has a node.  Raises CliError
        (after deleting the allocation again)."""
        self.allocation = self.client.post("/v1/allocations", body)
        note(f"allocation {self.label} created; finding a node")
        self._guard(lambda: self._await_node(timeout))

    def _await_node(self, timeout: float) -> None:
        self.allocation = wait_for_allocation(
            self.client, str(self.allocation["uuid"]), timeout=timeout
        )
        self.node = str(self.allocation["node_uuid"])
        note(f"host {self.label}: node {self.node} allocated")

    def deploy(self, *, image: str, checksum: str, drive: JSON) -> None:
        """Give the node the image and start the deploy.  Raises CliError (after
        giving back what was taken)."""
        self._guard(lambda: self._start_deploy(image=image, checksum=checksum, drive=drive))

    def _start_deploy(self, *, image: str, checksum: str, drive: JSON) -> None:
        assert self.node is not None
        patch = [
            {"op": "add", "path": "/instance_info/image_source", "value": image},
            {"op": "add", "path": "/instance_info/image_checksum", "value": checksum},
        ]
        self.client.request("PATCH", node_path(self.node), json=patch)
        self.last = self.client.get(node_path(self.node))
        self.client.put(
            node_path(self.node, "states", "provision"), {"target": "active", "configdrive": drive}
        )
        self.deploying = True
        note(f"host {self.label}: deploying node {self.node}")

    def follow_deploy(self, *, timeout: float) -> None:
        """Follow the deploy to its end, as ``node deploy --wait`` does.  Raises
        CliError when it fails (after undeploying and freeing the node), or
        WaitTimeout (leaving the host as it is, to be deleted or waited for)."""
        assert self.node is not None
        judge = functools.partial(
            judge_provision, expected=EXPECTED_STATES["active"], before=Mark.of(self.last)
        )
        try:
            self.last = follow(self.client, self.node, judge=judge, timeout=timeout)
        except WaitTimeout as exc:
            raise CliError(
                f"{exc.message}; host {self.label} is left as it is: wait with "
                f"`metalcast node show {self.node} --wait`, or free it with "
                f"`metalcast host delete {self.label}`"
            ) from None
        if judge(self.last) is Verdict.FAILED:
            self._give_back(failure_message(self.node, self.last, wanted="active"))

    def _guard(self, step: Any) -> None:
        try:
            step()
        except WaitTimeout as exc:
            self._give_back(exc.message)
        except CliError as exc:
            self._give_back(exc.message)

    def _give_back(self, why: str) -> None:
        """Free what was taken, then raise CliError saying why and what was freed."""
        freed = free(self.client, self.allocation, node=self.node, deployed=self.deploying)
        raise CliError(f"host {self.label} not created: {why.rstrip('.')}; {freed}")


def report(session: Session, host: Host, *, deployed: bool) -> None:
    """Say where the host is."""
    node = host.last if deployed else host.client.get(node_path(str(host.node)))
    where = {
        "host": host.label,
        "allocation": host.allocation.get("uuid"),
        "node": node.get("uuid"),
        "node_name": node.get("name"),
        "provision_state": node.get("provision_state"),
    }
    if session.as_json:
        print_json(where)
        return
    named = f"{where['node_name']} ({where['node']})" if where["node_name"] else where["node"]
    if deployed:
        print_ok(f"host {host.label} is up on node {named}")
    else:
        print_ok(f"host {host.label} is deploying on node {named}; follow it with --wait")


# ------------------------------------------------------------------------ freeing


def free(client: ApiClient, allocation: JSON, *, node: str | None, deployed: bool) -> str:
    """Give back a host's node and allocation, each as far as possible; what was
    freed, and what could not be (with what to do about it)."""
    done: list[str] = []
    if node is not None and deployed:
        try:
            undeploy(client, node)
            done.append(f"node {node} undeployed")
        except CliError as exc:
            done.append(f"node {node} could not be undeployed ({exc.message})")
    elif node is not None:
        remove = [{"op": "remove", "path": f"/instance_info/{key}"} for key in _IMAGE_KEYS]
        # nothing to remove when the request that set them failed
        with contextlib.suppress(CliError):
            client.request("PATCH", node_path(node), json=remove)
    if allocation.get("uuid"):
        label = allocation.get("name") or allocation["uuid"]
        try:
            _quietly(lambda: client.delete(allocation_path(str(allocation["uuid"]))))
            done.append(f"allocation {label} deleted")
        except CliError as exc:
            done.append(
                f"allocation {label} could not be deleted ({exc.message}); "
                f"see `metalcast host delete {label}`"
            )
    return ", ".join(done) or "nothing to free"


def _quietly(call: Any) -> None:
    """Run ``call``; a 404 means it is gone already, which is what we wanted."""
    try:
        call()
    except ApiError as exc:
        if exc.status != 404:
            raise


def undeploy(client: ApiClient, node: str, *, timeout: float = 0) -> JSON:
    """Undeploy ``node`` and wait until it is available (its allocation goes with it).

    Raises:
        CliError: the undeploy failed.
    """
    before = Mark.of(client.get(node_path(node)))
    client.put(node_path(node, "states", "provision"), {"target": "deleted"})
    judge = functools.partial(judge_provision, expected=EXPECTED_STATES["deleted"], before=before)
    current = follow(client, node, judge=judge, timeout=timeout)
    if judge(current) is Verdict.FAILED:
        raise CliError(failure_message(node, current, wanted="available"))
    return current


# ------------------------------------------------------------------ delete, list

#: states a node can be undeployed from (what `deleted` accepts)
_UNDEPLOYABLE = frozenset({"active", "deploy failed", "error", "wait call-back", "rescue"})


@app.command()
def delete(ctx: typer.Context, host: HostArg, *, wait_timeout: TimeoutOpt = 0) -> None:
    """Undeploy the host's node (waiting for it) and delete its allocation."""
    client = session_of(ctx).client
    found: JSON = client.get(allocation_path(host))
    node = found.get("node_uuid")
    if node:
        state = client.get(node_path(str(node))).get("provision_state")
        if state in _UNDEPLOYABLE:
            note(f"host {host}: undeploying node {node}")
            undeploy(client, str(node), timeout=wait_timeout)
    _quietly(lambda: client.delete(allocation_path(str(found["uuid"]))))
    print_ok(f"host {host} deleted" + (f"; node {node} is free" if node else ""))


@app.command("list")
def list_hosts(ctx: typer.Context) -> None:
    """List hosts: allocations, their nodes and how far their deploys are."""
    session = session_of(ctx)
    client = session.client
    rows = []
    for allocation in client.paginate("/v1/allocations", "allocations", params={}):
        node = allocation.get("node_uuid")
        state = client.get(node_path(str(node))).get("provision_state") if node else None
        extra = allocation.get("extra") or {}
        rows.append({**allocation, "hostname": extra.get("hostname"), "provision_state": state})
    if session.as_json:
        print_json(rows)
        return
    columns = ("Host", "Hostname", "Allocation", "Node", "Provision state", "Last error")
    stdout().print(table(columns, [_row(r) for r in rows]))


def _row(host: JSON) -> list[Any]:
    return [
        host.get("name") or host.get("uuid"),
        host.get("hostname"),
        allocations.list_rows([host])[0][2],
        host.get("node_uuid"),
        host.get("provision_state"),
        short(host.get("last_error")),
    ]
