"""Webhook deliveries as the conductor makes and claims them: one fan-out and one
claim per delivery however many conductors try, the signature, the backoff."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

from conductor_env import ALICE, Env

from metalcast.calls import SetMaintenance
from metalcast.conductor.webhooks import retry_delay, sign
from metalcast.context import acting_for
from metalcast.db import webhooks


def test_the_signature_is_an_hmac_of_the_timestamp_and_body() -> None:
    expected = hmac.new(b"k" * 16, b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k" * 16, 1700000000, body=b"{}") == f"sha256={expected}"


def test_retries_back_off_exponentially_up_to_the_cap() -> None:
    delays = [retry_delay(n, base=5, cap=60) for n in range(1, 7)]
    assert delays == [5, 10, 20, 40, 60, 60]


def _hook(env: Env, **filters: list[str]) -> webhooks.Webhook:
    with env.db.begin() as conn:
        return webhooks.create(
            conn,
            url="http://127.0.0.1:9/",
            secret="s" * 20,
            kinds=filters.get("kinds", []),
            nodes=filters.get("nodes", []),
            description=None,
        )


def test_the_secret_is_sealed_at_rest(env: Env) -> None:
    hook = _hook(env)
    assert hook.signing["secret"] != "s" * 20
    assert env.secret_box.reveal(hook.signing)["secret"] == "s" * 20


def test_events_fan_out_once_and_are_claimed_once(env: Env) -> None:
    hook = _hook(env, kinds=["maintenance"])
    stale = dataclasses.replace(hook)  # a second conductor's read, from before
    node = env.create("manageable")
    with acting_for(ALICE):
        env.service.execute(SetMaintenance(node_id=node.id, enabled=True), context=ALICE)
    with env.db.begin() as conn:
        assert webhooks.fan_out(conn, hook, limit=100) == 1  # not the creation
    with env.db.begin() as conn:
        assert webhooks.fan_out(conn, stale, limit=100) == 0  # the cursor moved
    with env.db.begin() as conn:
        first = webhooks.claim(conn, host="c1", hold=60, limit=10)
    with env.db.begin() as conn:
        second = webhooks.claim(conn, host="c2", hold=60, limit=10)
    assert [d.payload["node_uuid"] for d in first] == [node.uuid]
    assert second == []
