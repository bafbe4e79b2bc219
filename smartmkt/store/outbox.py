"""The webhook outbox: smartmkt's events for the shop's endpoints, kept in the database.

An event (``offer.created``, ``offer.redeemed``) is written by ``enqueue`` in the transaction
that made it happen, one row per endpoint that subscribed to it: if that transaction rolls
back, no event goes out; if it commits, the event is delivered even if the process dies a moment
later. A sender (smartmkt.notify.webhooks) ``claim``s due rows, posts them, and ``record``s each
outcome; a failure is tried again later, with the wait doubling (``BACKOFF_S``), up to
``MAX_ATTEMPTS``. A claim holds a row for ``CLAIM_S`` (taken with FOR UPDATE SKIP LOCKED on
PostgreSQL, under SQLite's one write lock): several senders (app replicas) never send one row at
the same time, and a sender that died mid-send leaves its rows to the others
once the claim runs out. So delivery is at least once: receivers deduplicate on the delivery id.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import hold_decision_lock, session_scope
from smartmkt.store.models import WebhookDelivery, WebhookEndpoint

EVENTS: dict[str, str] = {
    "offer.created": "the assistant made a customer an offer (with its discount code)",
    "offer.redeemed": "a shop's checkout redeemed an offer's code on an order",
}
MAX_ATTEMPTS = 8
BACKOFF_S = (60, 120, 300, 900, 1800, 3600, 7200)  # after attempt 1, 2, ...: then given up
CLAIM_S = 60


class EndpointError(ValueError):
    """An endpoint that cannot be added as asked."""


@dataclass(frozen=True)
class Due:
    """A delivery to send now."""

    id: int
    url: str
    secret: str
    event: str
    payload: dict[str, Any]
    attempts: int


def add_endpoint(engine: Engine, url: str, events: Sequence[str]) -> tuple[int, str]:
    """A new endpoint for ``events``: (its id, the signing secret, shown this once)."""
    if not url.startswith(("https://", "http://")) or len(url) > 1024:
        raise EndpointError("the URL must be http(s) and at most 1,024 characters")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown or not events:
        raise EndpointError(f"events must be among {', '.join(EVENTS)} (got {', '.join(unknown) or 'none'})")
    secret = "whsec_" + secrets.token_urlsafe(32)
    with session_scope(engine) as session:
        row = WebhookEndpoint(
            url=url, events=" ".join(sorted(set(events))), secret=secret, created_at=utcnow()
        )
        session.add(row)
        session.flush()
        return row.id, secret


def disable_endpoint(engine: Engine, endpoint_id: int) -> bool:
    with session_scope(engine) as session:
        done = session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.disabled_at.is_(None))
            .values(disabled_at=utcnow())
        )
        return bool(done.rowcount)  # type: ignore[attr-defined]


def enqueue(session: Session, event: str, payload: Mapping[str, Any], customer_ref: str | None = None) -> int:
    """The event for every live endpoint that wants it, in ``session``'s transaction; how many."""
    now = utcnow()
    endpoints = session.scalars(
        select(WebhookEndpoint.id).where(
            WebhookEndpoint.disabled_at.is_(None), WebhookEndpoint.events.contains(event)
        )
    ).all()
    for endpoint_id in endpoints:
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint_id,
                event=event,
                payload={"event": event, "created_at": now.isoformat(), **payload},
                customer_ref=customer_ref,
                created_at=now,
                attempts=0,
                next_attempt_at=now,
            )
        )
    return len(endpoints)


def claim(engine: Engine, limit: int = 20, now: datetime | None = None) -> list[Due]:
    """Up to ``limit`` deliveries due now, held for CLAIM_S seconds by this sender."""
    now = now or utcnow()
    with session_scope(engine) as session:
        due = (
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.delivered_at.is_(None),
                WebhookDelivery.next_attempt_at <= now,
                (WebhookDelivery.locked_until.is_(None)) | (WebhookDelivery.locked_until < now),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        if session.connection().dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)  # another sender's rows are skipped, not waited for
        else:
            hold_decision_lock(session, "webhooks")  # SQLite: the one write lock before reading
        ids = list(session.scalars(due))
        if not ids:
            return []
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids))
            .values(locked_until=now + timedelta(seconds=CLAIM_S))
            .execution_options(synchronize_session=False)
        )
        rows = session.execute(
            select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
            .join(WebhookEndpoint, WebhookDelivery.endpoint_id == WebhookEndpoint.id)
            .where(WebhookDelivery.id.in_(ids))
            .order_by(WebhookDelivery.id)
        ).all()
        return [Due(d.id, url, secret, d.event, dict(d.payload), d.attempts) for d, url, secret in rows]


def record(
    engine: Engine, delivery_id: int, status: int | None, error: str | None, now: datetime | None = None
) -> None:
    """A send's outcome: a 2xx is delivered; anything else is tried again after the backoff,
    or given up after MAX_ATTEMPTS (next_attempt_at None, delivered_at None)."""
    now = now or utcnow()
    with session_scope(engine) as session:
        row = session.get(WebhookDelivery, delivery_id)
        if row is None:  # erased meanwhile
            return
        row.attempts += 1
        row.last_status, row.last_error, row.locked_until = status, (error or None) and error[:512], None
        if status is not None and 200 <= status < 300:
            row.delivered_at, row.next_attempt_at = now, None
        elif row.attempts >= MAX_ATTEMPTS:
            row.next_attempt_at = None
        else:
            row.next_attempt_at = now + timedelta(seconds=BACKOFF_S[min(row.attempts, len(BACKOFF_S)) - 1])


# --- what the log shows (smartmkt webhook list / deliveries) --------------------------------------
@dataclass(frozen=True)
class EndpointSummary:
    id: int
    url: str
    events: tuple[str, ...]
    disabled: bool
    delivered: int
    waiting: int
    given_up: int


@dataclass(frozen=True)
class DeliveryView:
    id: int
    endpoint_id: int
    event: str
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    next_attempt_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        body = dict(vars(self))
        for name in ("created_at", "delivered_at", "next_attempt_at"):
            body[name] = body[name].isoformat() if body[name] else None
        body["state"] = (
            "delivered" if self.delivered_at else "waiting" if self.next_attempt_at else "given up"
        )
        return body


def endpoint_summaries(engine: Engine) -> list[EndpointSummary]:
    with session_scope(engine) as session:
        endpoints = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)).all()
        counts = session.execute(
            select(
                WebhookDelivery.endpoint_id,
                func.count(WebhookDelivery.delivered_at),
                func.count(WebhookDelivery.next_attempt_at),
                func.count(),
            ).group_by(WebhookDelivery.endpoint_id)
        ).all()
        by_endpoint = {
            e: (delivered, waiting, total - delivered - waiting) for e, delivered, waiting, total in counts
        }
        return [
            EndpointSummary(
                e.id,
                e.url,
                tuple(e.events.split()),
                e.disabled_at is not None,
                *by_endpoint.get(e.id, (0, 0, 0)),
            )
            for e in endpoints
        ]


def recent_deliveries(engine: Engine, limit: int = 20) -> list[DeliveryView]:
    with session_scope(engine) as session:
        rows = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)).all()
        return [
            DeliveryView(
                r.id,
                r.endpoint_id,
                r.event,
                as_utc(r.created_at),
                r.attempts,
                r.last_status,
                r.last_error,
                as_utc(r.delivered_at) if r.delivered_at else None,
                as_utc(r.next_attempt_at) if r.next_attempt_at else None,
            )
            for r in rows
        ]
