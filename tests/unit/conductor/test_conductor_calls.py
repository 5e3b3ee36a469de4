"""The request model of metalcast.calls: every request has a conductor handler and is
plain, frozen data that a transport could carry as it is."""

from __future__ import annotations

import collections.abc
import dataclasses
import types
import typing
from typing import Any

import pytest
from conductor_env import ALICE, Env

from metalcast import calls
from metalcast.calls import Call
from metalcast.conductor.handlers import HANDLERS
from metalcast.reports import AgentReport
from metalcast.rpc.local import LocalConductorClient

REQUESTS = sorted(
    (
        value
        for value in vars(calls).values()
        if isinstance(value, type) and issubclass(value, Call) and value is not Call
    ),
    key=lambda kind: kind.__name__,
)
_PRIMITIVES = (int, float, str, bool, type(None))


def _plain(hint: object, *, in_json: bool = False) -> bool:
    """Whether a field of this type holds only plain data: primitives, JSON objects and
    lists (``Any`` only as a value inside them), the agent protocol's TypedDicts, and
    frozen dataclasses of such fields."""
    if hint in _PRIMITIVES:
        return True
    if hint is Any or hint is object:
        return in_json
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return all(type(arg) in _PRIMITIVES for arg in args)
    if typing.is_typeddict(hint):
        return all(_plain(h, in_json=True) for h in typing.get_type_hints(hint).values())
    if origin in (typing.Union, types.UnionType):
        return all(_plain(arg, in_json=in_json) for arg in args)
    if origin in (list, tuple):
        return all(_plain(arg, in_json=True) for arg in args if arg is not Ellipsis)
    if origin in (dict, collections.abc.Mapping):
        return args[0] is str and _plain(args[1], in_json=True)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _frozen(hint) and all(_plain(h) for h in typing.get_type_hints(hint).values())
    return False


def _frozen(kind: type) -> bool:
    params = getattr(kind, "__dataclass_params__", None)
    return params is not None and params.frozen and "__slots__" in vars(kind)


def test_there_are_requests() -> None:
    assert len(REQUESTS) > 40
    assert calls.ChangePowerState in REQUESTS


def test_every_request_has_a_handler_and_every_handler_a_request() -> None:
    assert set(HANDLERS) == set(REQUESTS)


@pytest.mark.parametrize("kind", REQUESTS, ids=lambda kind: kind.__name__)
def test_a_request_is_frozen_slotted_plain_data(kind: type[Call[Any]]) -> None:
    assert _frozen(kind)
    hints = typing.get_type_hints(kind)
    assert [f.name for f in dataclasses.fields(kind)] == list(hints)
    for name, hint in hints.items():
        assert _plain(hint), f"{kind.__name__}.{name}: {hint} is not plain data"


def test_the_check_refuses_what_a_transport_could_not_carry() -> None:
    assert not _plain(Any)
    assert not _plain(object)
    assert not _plain(typing.Callable[[], None])
    assert not _plain(dict[int, str])
    assert _plain(dict[str, Any] | None)


def test_secrets_stay_out_of_the_repr() -> None:
    secret = "hunter2"
    shown = [
        calls.CreateNode({"driver_info": {"ipmi_password": secret}}),
        calls.UpdateNode(1, {"driver_info": {"ipmi_password": secret}}),
        calls.ChangeProvisionState(
            1, calls.ProvisionRequest("rescue", configdrive=secret, rescue_password=secret)
        ),
        calls.VendorPassthru(1, "m", {"password": secret}),
        calls.DriverVendorPassthru("ipmi", "m", http_method="POST", args={"password": secret}),
        calls.CreateVolumeTarget({"properties": {"auth_password": secret}}),
        calls.UpdateVolumeTarget(1, {"properties": {"auth_password": secret}}),
        calls.AgentHeartbeat(1, AgentReport(token=secret)),
    ]
    for request in shown:
        assert secret not in repr(request)


@dataclasses.dataclass(frozen=True, slots=True)
class Unheard(Call[None]):
    """A request no conductor knows."""


def test_an_unknown_request_is_a_clear_error(env: Env) -> None:
    with pytest.raises(TypeError, match="no handler for Unheard"):
        env.service.execute(Unheard(), context=ALICE)


def test_the_local_client_hands_requests_to_the_service(env: Env) -> None:
    client = LocalConductorClient(env.service)
    node = client.call(calls.CreateNode({"driver": "fake-hardware"}), context=ALICE)
    assert client.call(calls.GetBootDevice(node.id), context=ALICE) == env.service.execute(
        calls.GetBootDevice(node.id), context=ALICE
    )
    client.call(calls.SetMaintenance(node.id, True, reason="swap"), context=ALICE)
    assert env.node(node.id).maintenance_reason == "swap"
