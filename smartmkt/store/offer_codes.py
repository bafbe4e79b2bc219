"""Discount codes: what a shop's checkout takes for an offer, and their redemption.

A code reads ``SMK-XXXX-XXXX-XXXX-XXXX``: 16 characters of Crockford's base32 (no I, L, O or U,
so it can be read aloud and typed), 80 random bits from ``secrets``. Guessing one is hopeless,
and the API that checks codes takes an API key and is rate-limited. A code is looked up
whatever its case, dashes or spaces (``normalize``).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, select, update
from sqlalchemy.orm import Session

from smartmkt.store import outbox
from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, Offer, Product

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
PREFIX = "SMK"
GROUPS, GROUP_LENGTH = 4, 4


def new_code() -> str:
    """A fresh random code, e.g. ``SMK-7Q2M-K9TD-4XWB-R1HC``."""
    return _grouped("".join(secrets.choice(ALPHABET) for _ in range(GROUPS * GROUP_LENGTH)))


def _grouped(body: str) -> str:
    """``SMK-`` and the body in groups of ``GROUP_LENGTH``, the form codes are stored in."""
    return "-".join([PREFIX, *(body[i : i + GROUP_LENGTH] for i in range(0, len(body), GROUP_LENGTH))])


def normalize(text: str) -> str | None:
    """The stored form of a code as typed (``smk 7q2m k9td 4xwb r1hc``), or None when it cannot
    be one. Crockford's reading rules: O is 0, I and L are 1."""
    cleaned = "".join(ch for ch in text.upper() if ch not in "- \t")
    if not cleaned.startswith(PREFIX):
        return None
    body = cleaned[len(PREFIX) :].translate(str.maketrans("OIL", "011"))
    if len(body) != GROUPS * GROUP_LENGTH or any(ch not in ALPHABET for ch in body):
        return None
    return _grouped(body)


# --- checking and redeeming codes (the shop API's /api/v1/offers) --------------------------------
@dataclass(frozen=True)
class CodeView:
    """An offer as a shop's checkout sees it through its code."""

    code: str
    customer_id: str  # the shop's ids
    product_id: str
    product_title: str
    percent_off: int
    price_cents: int
    offer_price_cents: int
    currency: str
    expires_at: datetime
    status: str
    redeemed_at: datetime | None
    redeemed_order_id: str | None

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        for name in ("expires_at", "redeemed_at"):
            body[name] = body[name].isoformat() if body[name] else None
        return body


class CodeRefused(Exception):
    """Why a code cannot be used: ``status`` 404 unknown, 409 redeemed by another order, 410
    expired or withdrawn, 422 bound to another customer or product."""

    def __init__(self, status: int, reason: str, view: CodeView | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.view = status, reason, view


def check_code(
    engine: Engine, code: str, customer_id: str | None = None, product_id: str | None = None
) -> tuple[CodeView, CodeRefused | None]:
    """The code's offer, and why it could not be redeemed now by ``customer_id`` for
    ``product_id`` (either may be left out), or None when it could. Unknown: CodeRefused."""
    with session_scope(engine) as session:
        row = _find(session, code)
        view = code_view(*row)
        return view, _refusal(row[0], view, customer_id, product_id, utcnow())


def redeem_code(
    engine: Engine, code: str, customer_id: str, order_id: str, product_id: str | None = None
) -> tuple[CodeView, bool]:
    """Record that the shop's order ``order_id`` used the code: (the offer now, True when this
    call recorded it; False when that same order had already). One transaction. Two redemptions
    at once race on one conditional UPDATE: one wins, the other is told the code was used (409),
    on SQLite (one writer at a time) and on PostgreSQL (the row's lock) alike."""
    with session_scope(engine) as session:
        offer, customer_ref, product = _find(session, code)
        view = code_view(offer, customer_ref, product)
        if offer.redeemed_at is not None and offer.redeemed_order_ref == order_id:
            return view, False  # the same request again: nothing changes
        refused = _refusal(offer, view, customer_id, product_id, utcnow())
        if refused is not None:
            raise refused
        now = utcnow()
        won = session.execute(
            update(Offer)
            .where(Offer.id == offer.id, Offer.redeemed_at.is_(None))
            .values(redeemed_at=now, redeemed_order_ref=order_id, status="accepted", decided_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        session.expire_all()
        offer, customer_ref, product = _find(session, code)
        view = code_view(offer, customer_ref, product)
        if not won:
            if offer.redeemed_order_ref == order_id:
                return view, False
            raise _used(view)
        outbox.enqueue(session, "offer.redeemed", {"offer": view.as_dict()}, view.customer_id)
        return view, True


def _offers_with_customer_and_product() -> Select[Offer, str, Product]:
    """Offers with their customer's reference and their product (what a code's view shows)."""
    return (
        select(Offer, Customer.external_ref, Product)
        .join(Customer, Offer.customer_id == Customer.id)
        .join(Product, Offer.product_id == Product.id)
    )


def _find(session: Session, code: str) -> tuple[Offer, str, Product]:
    stored = normalize(code)
    query = _offers_with_customer_and_product().where(Offer.code == stored)
    row = session.execute(query).first() if stored else None
    if row is None:
        raise CodeRefused(404, "unknown code")
    return row[0], str(row[1]), row[2]


def code_view(offer: Offer, customer_ref: str, product: Product) -> CodeView:
    """An offer as the shop sees it through its code."""
    return CodeView(
        str(offer.code),
        customer_ref,
        product.external_ref,
        product.title,
        offer.percent_off,
        product.price_cents,
        round(product.price_cents * (100 - offer.percent_off) / 100),
        product.currency,
        as_utc(offer.expires_at),
        offer.status,
        as_utc(offer.redeemed_at) if offer.redeemed_at else None,
        offer.redeemed_order_ref,
    )


def _refusal(
    offer: Offer, view: CodeView, customer_id: str | None, product_id: str | None, now: datetime
) -> CodeRefused | None:
    """The first rule the code breaks for this use, in the order a person would ask."""
    if offer.redeemed_at is not None:
        return _used(view)
    if offer.status == "withdrawn":
        return CodeRefused(410, "the offer was withdrawn (the customer opted out of offers)", view)
    if view.expires_at <= now:
        return CodeRefused(410, f"the code expired at {view.expires_at.isoformat()}", view)
    if customer_id is not None and customer_id != view.customer_id:
        return CodeRefused(422, "the code belongs to another customer", view)
    if product_id is not None and product_id != view.product_id:
        return CodeRefused(422, f"the code is for product {view.product_id!r} ({view.product_title})", view)
    return None


def _used(view: CodeView) -> CodeRefused:
    when = view.redeemed_at.isoformat() if view.redeemed_at else "?"
    return CodeRefused(
        409, f"the code was already redeemed by order {view.redeemed_order_id!r} at {when}", view
    )


def recent_redemptions(engine: Engine, limit: int = 50) -> list[CodeView]:
    """The codes shops' checkouts redeemed, newest first (the console's shop page)."""
    with session_scope(engine) as session:
        rows = session.execute(
            _offers_with_customer_and_product()
            .where(Offer.redeemed_at.is_not(None))
            .order_by(Offer.redeemed_at.desc(), Offer.id.desc())
            .limit(limit)
        ).all()
        return [code_view(offer, str(ref), product) for offer, ref, product in rows]
