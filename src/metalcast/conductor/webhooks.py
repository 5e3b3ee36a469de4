"""Sending node events to webhooks: a conductor's periodic pass (docs/events.md).

Each pass (every ``events.webhook_interval`` seconds, on every conductor) first fans
the new events of the log out into deliveries, webhook by webhook (one conductor
wins each batch: :func:`metalcast.db.webhooks.fan_out`), then claims the deliveries
that are due (:func:`metalcast.db.webhooks.claim`) and POSTs each one: the event as
JSON, signed with the webhook's secret::

    X-Metalcast-Timestamp: <unix seconds>
    X-Metalcast-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body>

A 2xx answer delivers it.  Anything else (another status, no answer, a refused
destination) is retried after ``webhook_retry_base`` seconds, doubled each time up to
``webhook_retry_cap``, until ``webhook_max_attempts`` tries: then it is failed.
Redirects are not followed.  With ``events.webhook_destinations`` set, every address
connected to must lie in one of those networks (checked at each connection, to the
address really used).

Nothing here raises: a pass logs what went wrong and records it on the delivery.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
import orjson

from metalcast.config import EventsSettings
from metalcast.db import webhooks
from metalcast.db.engine import Database
from metalcast.db.rows import utcnow
from metalcast.db.webhooks import DELIVERED, FAILED, PENDING, Delivery
from metalcast.images.access import AccessRefused, AddressGuard, GuardedTransport, parse_networks
from metalcast.secrecy import SecretBox

_log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Metalcast-Signature"
TIMESTAMP_HEADER = "X-Metalcast-Timestamp"
EVENT_HEADER = "X-Metalcast-Event"
DELIVERY_HEADER = "X-Metalcast-Delivery"
#: events fanned out per webhook per pass, deliveries sent per pass
BATCH = 200
#: how much of an error or answer a delivery keeps
_ERROR_CHARS = 500


def sign(secret: str, timestamp: int, *, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 with
    ``secret`` of ``"<timestamp>."`` followed by the body."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def retry_delay(attempts: int, *, base: float, cap: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: ``base`` doubled
    for each try after the first, at most ``cap``."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True, slots=True)
class DestinationGuard(AddressGuard):
    """Connects only to addresses inside ``allowed`` (``events.webhook_destinations``)."""

    def resolve(self, host: str, port: int) -> list[str]:
        """The addresses of ``host``, all inside ``allowed``.

        Raises:
            AccessRefused: one is not.  OSError: the name does not resolve.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            if not any(address in network for network in self.allowed):
                raise AccessRefused(
                    f"{host} resolves to {text}, outside events.webhook_destinations"
                )
        return addresses


class WebhookSender:
    """One conductor's webhook pass."""

    def __init__(
        self, db: Database, box: SecretBox, *, settings: EventsSettings, hostname: str
    ) -> None:
        self.db = db
        self.box = box
        self.settings = settings
        self.hostname = hostname
        if settings.webhook_destinations:
            guard = DestinationGuard(parse_networks(settings.webhook_destinations))
            transport: httpx.BaseTransport = GuardedTransport(verify=True, guard=guard)
        else:
            transport = httpx.HTTPTransport(trust_env=False)
        self.http = httpx.Client(
            transport=transport, timeout=settings.webhook_timeout, follow_redirects=False
        )

    def close(self) -> None:
        self.http.close()

    def run_once(self) -> dict[str, int]:
        """Fan out the new events, then send the due deliveries; how many of each."""
        return {"queued": self.fan_out(), "sent": self.send_due()}

    def fan_out(self) -> int:
        with self.db.read() as conn:
            hooks = webhooks.list_all(conn)
        made = 0
        for hook in hooks:
            with self.db.begin() as conn:
                made += webhooks.fan_out(conn, hook, limit=BATCH)
        return made

    def send_due(self) -> int:
        hold = self.settings.webhook_timeout * BATCH + 60
        with self.db.begin() as conn:
            claimed = webhooks.claim(conn, host=self.hostname, hold=hold, limit=BATCH)
        for delivery in claimed:
            self.send(delivery)
        return len(claimed)

    def send(self, delivery: Delivery) -> bool:
        """Try ``delivery`` once and record how it went; whether it was delivered."""
        with self.db.read() as conn:
            hook = webhooks.by_id(conn, delivery.webhook_id)
        if hook is None:
            return False  # deleted meanwhile, with its deliveries
        secret = str(self.box.reveal(hook.signing, where="webhook secret")["secret"])
        body = orjson.dumps(delivery.payload)
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "metalcast-webhook",
            EVENT_HEADER: f"node.{delivery.payload.get('type', 'updated')}",
            DELIVERY_HEADER: delivery.uuid,
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: sign(secret, stamp, body=body),
        }
        code: int | None = None
        try:
            response = self.http.post(hook.url, content=body, headers=headers)
            code = response.status_code
            error = None if response.is_success else f"HTTP {code}: {response.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self._record(delivery, code=code, error=error)
        return error is None

    def _record(self, delivery: Delivery, *, code: int | None, error: str | None) -> None:
        tries = delivery.attempts + 1
        retry_at = None
        if error is None:
            status = DELIVERED
        elif tries >= self.settings.webhook_max_attempts:
            status = FAILED
        else:
            status = PENDING
            delay = retry_delay(
                tries, base=self.settings.webhook_retry_base, cap=self.settings.webhook_retry_cap
            )
            retry_at = utcnow() + timedelta(seconds=delay)
        if error is not None:
            _log.info("webhook delivery %s, try %d: %s", delivery.uuid, tries, error)
        with self.db.begin() as conn:
            webhooks.finish(
                conn,
                delivery,
                status=status,
                response_code=code,
                error=None if error is None else error[:_ERROR_CHARS],
                retry_at=retry_at,
            )

    def prune(self) -> int:
        """Drop the finished deliveries past ``webhook_keep_seconds``."""
        before = utcnow() - timedelta(seconds=self.settings.webhook_keep_seconds)
        with self.db.begin() as conn:
            return webhooks.prune(conn, before=before)
