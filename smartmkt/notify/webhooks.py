"""Sending the outbox's events (smartmkt.store.outbox) to the shop's endpoints, signed.

Each delivery is a POST of the event's JSON with:
- ``X-Smartmkt-Event``: the event (``offer.created``, ``offer.redeemed``);
- ``X-Smartmkt-Delivery``: the delivery's id, the same on every retry (deduplicate on it);
- ``X-Smartmkt-Signature``: ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`` under
  the endpoint's secret. The time is signed with the body, so a receiver that also refuses a
  ``t`` older than a few minutes (``verify`` does, 300 s) cannot be fed a captured delivery again.

A 2xx within ``TIMEOUT_S`` is delivered; anything else is tried again with backoff (the outbox
records it). ``WebhookSender`` runs in each app process: their claims keep them off each other's
rows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time

import httpx
from sqlalchemy import Engine

from smartmkt.periodic import Periodic
from smartmkt.store import outbox

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, body: bytes, header: str, now: float | None = None, tolerance_s: int = TOLERANCE_S
) -> bool:
    """What a receiver checks: the signature over its time and the body, and that time is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    now = time.time() if now is None else now
    fresh = abs(now - timestamp) <= tolerance_s
    return fresh and hmac.compare_digest(sign(secret, body, timestamp), header.strip())


def send_due(engine: Engine, client: httpx.Client, limit: int = 20) -> int:
    """Send the deliveries due now (at most ``limit``); how many were delivered."""
    delivered = 0
    for due in outbox.claim(engine, limit):
        body = json.dumps(due.payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {
            "content-type": "application/json",
            "x-smartmkt-event": due.event,
            "x-smartmkt-delivery": str(due.id),
            "x-smartmkt-signature": sign(due.secret, body, int(time.time())),
        }
        status, error = None, None
        try:
            answer = client.post(due.url, content=body, headers=headers, timeout=TIMEOUT_S)
            status = answer.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {answer.text[:200]}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        outbox.record(engine, due.id, status, error)
        delivered += error is None
    return delivered


class WebhookSender(Periodic):
    """Every ``poll_s`` seconds, sends what is due (a batch at a time while there is more)."""

    def __init__(self, engine: Engine, poll_s: float) -> None:
        super().__init__("smartmkt-webhooks", poll_s, self._send_all_due, "webhooks: could not send")
        self.engine = engine
        self.client = httpx.Client(follow_redirects=False)

    def _send_all_due(self) -> None:
        while send_due(self.engine, self.client) and not self.stopping:
            pass

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.client.close()
