"""Requests crossing processes: the codec, the sealed messages, a conductor's RPC
endpoint and the API side's client that routes each request to its node's owner.

Real HTTP on loopback between a :class:`RemoteConductorClient` and conductors'
:class:`RpcServer` s, on one database, as ``metalcast api`` and ``metalcast
conductor`` use them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar, cast

import httpx
import pytest
from conductor_env import ALICE, Env
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families

from metalcast import calls as c
from metalcast.conductor.ring import NoValidHost
from metalcast.conductor.service import ConductorService
from metalcast.context import RequestContext
from metalcast.db import repository as repo
from metalcast.errors import Conflict, InvalidInput, NodeLocked, NotFound, ServiceUnavailable
from metalcast.hashring import Rings
from metalcast.reports import AgentReport
from metalcast.rpc import codec
from metalcast.rpc.remote import RemoteConductorClient
from metalcast.rpc.server import METRICS_PATH, PATH, RpcServer
from metalcast.rpc.wire import REQUEST, RESPONSE, WINDOW, RpcRefused, Seal
from metalcast.secrecy import SecretBox

T = TypeVar("T")
ADMIN = RequestContext(user="admin", roles=frozenset({"admin"}), system_scope="all")

# ---- the codec -----------------------------------------------------------------------


def test_requests_and_contexts_cross_as_they_are() -> None:
    values = [
        c.ChangeProvisionState(
            7,
            c.ProvisionRequest(
                "active", configdrive={"user_data": "#cloud-config"}, deploy_steps=[{"a": 1}]
            ),
        ),
        c.AgentHeartbeat(
            3, AgentReport(agent_version="1", token="t", results=({"id": "x"},), log=("l",))
        ),
        c.CreateNode({"driver": "fake-hardware", "extra": {"~dt": "not a date"}}),
        RequestContext(
            user="u",
            roles=frozenset({"admin", "reader"}),
            expires_at=datetime(2030, 1, 1, tzinfo=UTC),
        ),
        [c.HardwareTypeInfo("ipmi", ["h1"], {"power": ["ipmitool"]})],
    ]
    for value in values:
        assert codec.decode(codec.encode(value)) == value


def test_only_known_types_are_built() -> None:
    with pytest.raises(codec.CodecError, match="unknown type 'Popen'"):
        codec.decode({"~dc": ["Popen", {"args": ["rm"]}]})
    with pytest.raises(codec.CodecError, match="cannot be sent"):
        codec.encode({1, 2})


def test_errors_keep_their_class_status_and_details() -> None:
    locked = codec.decode_error(codec.encode_error(NodeLocked("n1", "conductor-2")))
    assert type(locked) is NodeLocked and locked.status_code == 409
    assert (locked.node, locked.holder) == ("n1", "conductor-2")
    assert "locked by host conductor-2" in locked.message
    no_host = codec.decode_error(codec.encode_error(NoValidHost("no conductor in group x")))
    assert type(no_host) is NoValidHost and no_host.status_code == 400
    # a class this side does not know: its nearest known base, same status
    unknown = {"lineage": ["Fancy", "Conflict", "MetalcastError"], "message": "m", "status": 409}
    error = codec.decode_error(unknown)
    assert type(error) is Conflict and error.message == "m"


# ---- sealed messages -----------------------------------------------------------------


def test_a_message_opens_only_with_the_same_key_and_direction() -> None:
    box = SecretBox(Fernet.generate_key())
    seal, same = Seal(box), Seal(box)
    data = seal.seal({"id": 1}, direction=REQUEST)
    assert b'"id"' not in data  # encrypted, not merely signed
    assert same.open(data, direction=REQUEST) == {"id": 1}
    with pytest.raises(RpcRefused, match="replayed"):
        same.open(data, direction=REQUEST)
    with pytest.raises(RpcRefused, match="secret key"):
        Seal(SecretBox(Fernet.generate_key())).open(data, direction=REQUEST)
    with pytest.raises(RpcRefused, match="secret key"):
        Seal(box).open(data, direction=RESPONSE)  # a request is no response
    with pytest.raises(RpcRefused, match="truncated"):
        same.open(b"x", direction=REQUEST)


def test_an_old_message_is_refused() -> None:
    box = SecretBox(Fernet.generate_key())
    now = [1000.0]
    seal = Seal(box, clock=lambda: now[0])
    data = seal.seal({"id": 1}, direction=REQUEST)
    now[0] += WINDOW + 1
    with pytest.raises(RpcRefused, match="window"):
        seal.open(data, direction=REQUEST)


# ---- conductors behind RPC servers ------------------------------------------------------

Serve = Callable[[ConductorService], RpcServer]


@pytest.fixture
def serve(env: Env) -> Iterator[Serve]:
    """``serve(service)``: an RPC server for the (started) service, registered."""
    servers: list[RpcServer] = []

    def start(service: ConductorService) -> RpcServer:
        server = RpcServer(service, env.secret_box, host="127.0.0.1", port=0)
        server.start()
        servers.append(server)
        me = service.ring.me
        with env.db.begin() as conn:
            repo.register_conductor(
                conn,
                hostname=me.hostname,
                conductor_group=me.conductor_group,
                hardware_types=list(me.hardware_types),
                rpc_url=server.url,
            )
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(env: Env) -> Iterator[RemoteConductorClient]:
    remote = RemoteConductorClient(env.db, env.secret_box, heartbeat_timeout=60, refresh=0)
    yield remote
    remote.close()


def test_a_request_runs_on_the_conductor_and_its_result_comes_back(
    env: Env, serve: Serve, client: RemoteConductorClient
) -> None:
    serve(env.service)
    node = client.call(c.CreateNode({"driver": "fake-hardware", "name": "n1"}), context=ALICE)
    assert node == env.node(node.id)
    client.call(c.ChangeProvisionState(node.id, c.ProvisionRequest("manage")), context=ALICE)
    assert env.wait_settled(node.id).provision_state == "manageable"
    # the conductor acted for the API's caller: history names alice and her project
    created = env.history(node.id)[0]
    assert (created.user, created.project) == ("alice", "p1")


def test_errors_cross_with_their_class(
    env: Env, serve: Serve, client: RemoteConductorClient
) -> None:
    serve(env.service)
    node = env.create()
    with env.db.begin() as conn:
        repo.reserve_node(conn, node.id, "elsewhere")
    with pytest.raises(NodeLocked, match="locked by host elsewhere"):
        client.call(c.ChangePowerState(node.id, "power on"), context=ADMIN)
    with pytest.raises(InvalidInput):
        client.call(c.CreateNode({"driver": "no-such-driver"}), context=ADMIN)
    with pytest.raises(NotFound):
        client.call(c.ChangePowerState(999_999, "power on"), context=ADMIN)
    with pytest.raises(NotFound, match="Port 4242"):
        client.call(c.DestroyPort(4242), context=ADMIN)


def test_each_node_goes_to_its_owner_and_to_another_when_the_owner_is_gone(
    env: Env, serve: Serve, client: RemoteConductorClient
) -> None:
    second = env.make(hostname="conductor-2")
    servers = {"conductor-1": serve(env.service), "conductor-2": serve(second)}
    nodes = [env.create(name=f"n{i}") for i in range(24)]
    rings = Rings([env.service.ring.me, second.ring.me])
    owners = {n.id: rings.owner(n.uuid, group="", hardware_type="fake-hardware") for n in nodes}
    assert set(owners.values()) == {"conductor-1", "conductor-2"}
    for node in nodes:
        client.call(c.SetMaintenance(node.id, True, "checking routing"), context=ADMIN)
    for node in nodes:
        assert env.history(node.id)[-1].conductor == owners[node.id]
    servers["conductor-2"].stop()  # its process died: connections are refused
    for node in nodes:
        client.call(c.SetMaintenance(node.id, False), context=ADMIN)
        assert env.history(node.id)[-1].conductor == "conductor-1"


def test_a_stopping_conductor_hands_requests_to_the_next(
    env: Env, serve: Serve, client: RemoteConductorClient
) -> None:
    second = env.make(hostname="conductor-2")
    serve(env.service)
    serve(second)
    nodes = [env.create(name=f"n{i}") for i in range(12)]
    second.rt.workers.close()  # what stop() does first: "conductor is shutting down"
    for node in nodes:
        client.call(c.ChangePowerState(node.id, "power on"), context=ADMIN)
    for node in nodes:
        assert env.wait_settled(node.id).power_state == "power on"
        assert env.history(node.id)[-1].conductor == "conductor-1"


def test_no_live_conductor_is_a_clear_503(env: Env, client: RemoteConductorClient) -> None:
    node = env.create()  # env.service never registered an RPC address: unreachable
    with pytest.raises(ServiceUnavailable, match="No conductor is alive"):
        client.call(c.ChangePowerState(node.id, "power on"), context=ADMIN)


def test_a_request_not_sealed_with_the_installation_key_is_refused(env: Env, serve: Serve) -> None:
    server = serve(env.service)
    node = env.create(name="target")
    request = c.SetMaintenance(node.id, True, "forged")
    message = {
        "jsonrpc": "2.0",
        "id": "1",
        "method": "SetMaintenance",
        "params": {"request": codec.encode(request), "context": codec.encode(ADMIN)},
    }
    forged = Seal(SecretBox(Fernet.generate_key())).seal(message, direction=REQUEST)
    for body in (forged, b"{}" * 20, b'{"jsonrpc": "2.0"}'):
        response = httpx.post(server.url + PATH, content=body)
        assert response.status_code == 401, response.text
    genuine = Seal(env.secret_box).seal(message, direction=REQUEST)
    assert httpx.post(server.url + PATH, content=genuine).status_code == 200
    replayed = httpx.post(server.url + PATH, content=genuine)
    assert replayed.status_code == 401 and "replayed" in replayed.text
    assert [e.event for e in env.history(node.id)].count("maintenance on: forged") <= 1
    assert env.node(node.id).maintenance_reason == "forged"


def test_a_newer_versions_request_is_refused_not_half_understood() -> None:
    newer = codec.encode(c.ChangePowerState(1, "power on"))
    newer["~dc"][1]["graceful_timeout_policy"] = "wait"  # a field of a later release
    with pytest.raises(codec.CodecError, match=r"graceful_timeout_policy.*upgrade conductors"):
        codec.decode(newer)
    with pytest.raises(codec.CodecError, match=r"FirmwareUpdate.*older than the sender"):
        codec.decode({"~dc": ["FirmwareUpdate", {"node_id": 1}]})


def test_a_newer_versions_request_that_uses_nothing_new_is_understood() -> None:
    """A field at its default is not sent: an older conductor, which lacks a field
    added since (here ``runbook``), takes a request that does not use it."""
    manage = c.ProvisionRequest("manage")
    sent = codec.encode(manage)
    assert sent == {"~dc": ["ProvisionRequest", {"verb": "manage"}]}
    assert codec.decode(sent) == manage
    clean = c.ProvisionRequest("clean", clean_steps=[], runbook="CUSTOM_X")
    assert codec.decode(codec.encode(clean)) == clean


def test_an_oversized_body_is_refused_before_it_is_read(env: Env) -> None:
    server = RpcServer(env.service, env.secret_box, host="127.0.0.1", port=0, max_body=4096)
    server.start()
    try:
        response = httpx.post(server.url + PATH, content=b"x" * 5000)
        assert response.status_code == 413, response.text
    finally:
        server.stop()


class _HeldConductor:
    """A conductor whose requests wait until the test releases them."""

    def __init__(self, service: ConductorService) -> None:
        self.service = service
        self.hostname = service.hostname
        self.started = threading.Event()
        self.release = threading.Event()

    def execute(self, request: c.Call[T], *, context: RequestContext) -> T:
        self.started.set()
        self.release.wait(timeout=30)
        return self.service.execute(request, context=context)


def test_a_stopping_server_answers_the_request_in_flight_and_refuses_later_ones(
    env: Env,
) -> None:
    held = _HeldConductor(env.service)
    server = RpcServer(cast(ConductorService, held), env.secret_box, host="127.0.0.1", port=0)
    server.start()
    node = env.create(name="n1")
    seal = Seal(env.secret_box)

    def sealed(reason: str) -> bytes:
        request = codec.encode(c.SetMaintenance(node.id, True, reason))
        message = {"jsonrpc": "2.0", "id": reason, "method": "SetMaintenance",
                   "params": {"request": request, "context": codec.encode(ADMIN)}}  # fmt: skip
        return seal.seal(message, direction=REQUEST)

    answers: list[httpx.Response] = []
    with httpx.Client() as in_flight, httpx.Client() as kept_alive:
        held.release.set()
        assert kept_alive.post(server.url + PATH, content=sealed("before")).status_code == 200
        held.release.clear()
        held.started.clear()
        sender = threading.Thread(
            target=lambda: answers.append(in_flight.post(server.url + PATH, content=sealed("in")))
        )
        sender.start()
        assert held.started.wait(timeout=10)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        while not server.stopping:
            time.sleep(0.01)
        held.release.set()
        sender.join(timeout=30)
        # a request on a connection kept alive from before, or on a new one, is
        # answered "shutting down", not cut
        later = kept_alive.post(server.url + PATH, content=sealed("later"))
        new = httpx.post(server.url + PATH, content=sealed("new"))
        stopper.join(timeout=30)
    assert answers[0].status_code == 200, answers[0].text
    assert "result" in seal.open(answers[0].content, direction=RESPONSE)
    assert answers[0].headers["connection"] == "close"
    for response in (later, new):
        error = seal.open(response.content, direction=RESPONSE)["error"]
        assert "shutting down" in error["message"]
    assert env.node(node.id).maintenance_reason == "in"


def test_the_conductor_serves_its_own_metrics_beside_its_rpc(env: Env, serve: Serve) -> None:
    server = serve(env.service)
    node = env.create("enroll", name="measured")
    labels = {"event": "manage", "from_state": "enroll", "to_state": "verifying"}

    def manages() -> float:
        response = httpx.get(server.url + METRICS_PATH)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain; version=")
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name == "metalcast_provision_transitions_total" and (
                    sample.labels == labels
                ):
                    return sample.value
        return 0.0

    before = manages()
    env.service.execute(
        c.ChangeProvisionState(node.id, c.ProvisionRequest("manage")), context=ALICE
    )
    assert env.wait_settled(node.id).provision_state == "manageable"
    assert manages() == before + 1
    assert httpx.get(server.url + "/rpc").status_code == 404
