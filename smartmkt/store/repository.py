"""All store access the conversation needs, behind one class: actions never write SQL.

Every public method runs in its own short transaction, so a failure leaves nothing half-written
and no process keeps state another replica would need.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from smartmkt.catalog import CatalogChange, CatalogItem
from smartmkt.store import outbox
from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import dialect_insert, hold_decision_lock, session_scope
from smartmkt.store.models import CatalogState, Consent, Customer, CustomerScore, Offer, Order, Product
from smartmkt.store.offer_codes import code_view, new_code


def _item(product: Product) -> CatalogItem:
    return CatalogItem(
        product.id,
        product.title,
        product.year,
        tuple(product.genre_list),
        product.price_cents,
        product.currency,
    )


@dataclass(frozen=True)
class OfferView:
    id: int
    product: CatalogItem
    percent_off: int
    reason: str
    expires_at: datetime
    status: str
    code: str | None = None  # the discount code a shop's checkout takes (smartmkt.store.offer_codes)

    @property
    def offer_price_cents(self) -> int:
        return round(self.product.price_cents * (100 - self.percent_off) / 100)


@dataclass(frozen=True)
class OrderView:
    id: int
    product: CatalogItem
    quantity: int
    amount_cents: int
    discount_pct: int
    ordered_at: datetime
    channel: str


@dataclass(frozen=True)
class CustomerHistory:
    """What the recommender and the offer rule need to know about a customer."""

    customer_id: int | None
    product_ids: tuple[int, ...]  # oldest first
    last_order_at: datetime | None
    total_spent_cents: int

    @property
    def is_new(self) -> bool:
        return not self.product_ids


@dataclass(frozen=True)
class OfferContext:
    """All an offer decision reads about the customer and the day, read once, in the
    transaction that writes the offer."""

    opted_out: bool  # the latest marketing consent is a refusal (the policy's first rule)
    open_offers: tuple[OfferView, ...]  # shown, undecided, unexpired; none when opted out
    score: CustomerScore | None  # the purchase model's latest, None until it scored them
    offers_last_day: int  # offers made to them in the last 24 hours (the per-customer cap)
    budget_used_cents: int  # discount offered to everyone since midnight UTC (the daily budget)


class OfferTerms(Protocol):
    """What a decision to make an offer says (smartmkt.offers.policy.OfferDecision is one)."""

    @property
    def percent_off(self) -> int: ...
    @property
    def rule(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def scores(self) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class FixedTerms:
    """Offer terms given outright rather than decided by the policy (``create_offer``)."""

    percent_off: int
    rule: str
    reason: str
    scores: Mapping[str, float]


class StoreRepository:
    """The store as the assistant sees it. ``customer_ref`` is the shop's id (the sender id)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # --- customers -------------------------------------------------------------------------
    def _customer(self, session: Session, customer_ref: str) -> Customer | None:
        return session.scalar(select(Customer).where(Customer.external_ref == customer_ref))

    def _get_or_create_customer(self, session: Session, customer_ref: str) -> Customer:
        """The customer, created when new. Two replicas may create the same new customer at
        once: the second one's insert does nothing (ON CONFLICT; on PostgreSQL it waits for the
        first to commit) and both read the one row, instead of the second failing."""
        customer = self._customer(session, customer_ref)
        if customer is None:
            row = {"external_ref": customer_ref, "created_at": utcnow(), "source": "chat"}
            session.execute(dialect_insert(session, Customer).values(**row).on_conflict_do_nothing())
            customer = self._customer(session, customer_ref)
            assert customer is not None  # inserted now, or by whoever won the race
        return customer

    def customer_exists(self, customer_ref: str) -> bool:
        with session_scope(self.engine) as session:
            return self._customer(session, customer_ref) is not None

    def history(self, customer_ref: str) -> CustomerHistory:
        with session_scope(self.engine) as session:
            customer = self._customer(session, customer_ref)
            if customer is None:
                return CustomerHistory(None, (), None, 0)
            rows = session.execute(
                select(Order.product_id, Order.ordered_at, Order.amount_cents)
                .where(Order.customer_id == customer.id)
                .order_by(Order.ordered_at, Order.id)
            ).all()
            return CustomerHistory(
                customer_id=customer.id,
                product_ids=tuple(r.product_id for r in rows),
                last_order_at=as_utc(rows[-1].ordered_at) if rows else None,
                total_spent_cents=sum(r.amount_cents for r in rows),
            )

    # --- catalog ---------------------------------------------------------------------------
    def all_products(self) -> list[CatalogItem]:
        with session_scope(self.engine) as session:
            products = session.scalars(select(Product).where(Product.active).order_by(Product.id))
            return [_item(p) for p in products]

    def catalog_changes(self, since: int) -> tuple[int, list[CatalogChange]]:
        """(the catalog's version now, the products written after version ``since`` up to it,
        in write order, gone ones included). The version is read first; a product written
        meanwhile has a higher version and comes with the next call."""
        with session_scope(self.engine) as session:
            version = int(session.scalar(select(CatalogState.version).where(CatalogState.id == 1)) or 0)
            if version <= since:
                return version, []
            products = session.scalars(
                select(Product)
                .where(Product.catalog_version > since, Product.catalog_version <= version)
                .order_by(Product.catalog_version, Product.id)
            )
            return version, [CatalogChange(_item(p), bool(p.active)) for p in products]

    def shop_ref(self, product_id: int) -> str | None:
        """The shop's own id of a product (its external reference)."""
        with session_scope(self.engine) as session:
            return session.scalar(select(Product.external_ref).where(Product.id == product_id))

    def products_by_id(self, ids: Sequence[int]) -> dict[int, CatalogItem]:
        with session_scope(self.engine) as session:
            products = session.scalars(select(Product).where(Product.id.in_(list(ids))))
            return {p.id: _item(p) for p in products}

    def product(self, product_id: int) -> CatalogItem | None:
        return self.products_by_id([product_id]).get(product_id)

    def purchase_counts(self) -> dict[int, int]:
        with session_scope(self.engine) as session:
            rows = session.execute(select(Order.product_id, func.count()).group_by(Order.product_id))
            return {int(pid): int(n) for pid, n in rows}

    # --- consent ---------------------------------------------------------------------------
    @staticmethod
    def _opted_out(session: Session, customer_id: int) -> bool:
        """The customer's latest marketing consent decision is a refusal. Every offer path asks
        this in its own transaction: no offer is made, shown or applied to an opted-out customer."""
        latest = session.scalar(
            select(Consent.granted)
            .where(Consent.customer_id == customer_id, Consent.purpose == "marketing")
            .order_by(Consent.recorded_at.desc(), Consent.id.desc())
            .limit(1)
        )
        return latest is False

    def is_opted_out(self, customer_ref: str) -> bool:
        """True when the customer's latest marketing consent decision is a refusal."""
        with session_scope(self.engine) as session:
            customer = self._customer(session, customer_ref)
            return customer is not None and self._opted_out(session, customer.id)

    def opted_out_customer_ids(self) -> set[int]:
        """Every customer whose latest marketing consent decision is a refusal."""
        with session_scope(self.engine) as session:
            rows = session.execute(
                select(Consent.customer_id, Consent.granted)
                .where(Consent.purpose == "marketing")
                .order_by(Consent.customer_id, Consent.recorded_at, Consent.id)
            )
            latest = {int(customer_id): bool(granted) for customer_id, granted in rows}
        return {customer_id for customer_id, granted in latest.items() if not granted}

    def opt_out(self, customer_ref: str, channel: str) -> None:
        with session_scope(self.engine) as session:
            customer = self._get_or_create_customer(session, customer_ref)
            session.add(
                Consent(
                    customer_id=customer.id,
                    purpose="marketing",
                    granted=False,
                    channel=channel,
                    recorded_at=utcnow(),
                )
            )
            # Offers still open are withdrawn: an opted-out customer keeps no marketing offer.
            session.execute(
                update(Offer)
                .where(Offer.customer_id == customer.id, Offer.status == "shown")
                .values(status="withdrawn", decided_at=utcnow())
            )

    # --- offers ----------------------------------------------------------------------------
    def create_offer(
        self,
        customer_ref: str,
        product_id: int,
        percent_off: int,
        reason: str,
        rule: str,
        scores: dict[str, float],
        channel: str,
        expires_in: timedelta,
    ) -> OfferView | None:
        """Store an offer decided elsewhere (tools, tests); None (nothing stored) if the customer
        opted out. Goes through ``decide_offer``, so it takes the same lock and shows an offer
        already open on the product instead of making it twice."""
        terms = FixedTerms(percent_off, rule, reason, scores)
        return self.decide_offer(
            customer_ref, product_id, lambda c: None if c.opted_out else terms, channel, expires_in
        )

    def _offer_view(self, session: Session, offer: Offer) -> OfferView:
        product = session.get(Product, offer.product_id)
        assert product is not None
        return OfferView(
            offer.id,
            _item(product),
            offer.percent_off,
            offer.reason,
            as_utc(offer.expires_at),
            offer.status,
            offer.code,
        )

    def open_offers(self, customer_ref: str) -> list[OfferView]:
        """Offers shown to the customer that are neither decided nor expired, newest first; none
        for a customer who opted out."""
        with session_scope(self.engine) as session:
            customer = self._customer(session, customer_ref)
            if customer is None or self._opted_out(session, customer.id):
                return []
            return self._open_offers(session, customer.id, utcnow())

    def _open_offers(self, session: Session, customer_id: int, now: datetime) -> list[OfferView]:
        offers = session.scalars(
            select(Offer)
            .where(Offer.customer_id == customer_id, Offer.status == "shown")
            .order_by(Offer.created_at.desc(), Offer.id.desc())
        )
        return [self._offer_view(session, o) for o in offers if as_utc(o.expires_at) > now]

    def customer_score(self, customer_ref: str) -> CustomerScore | None:
        """The purchase model's latest scores for the customer (None until it has scored them)."""
        with session_scope(self.engine) as session:
            customer = self._customer(session, customer_ref)
            return None if customer is None else self._score(session, customer.id)

    @staticmethod
    def _score(session: Session, customer_id: int) -> CustomerScore | None:
        score = session.get(CustomerScore, customer_id)
        if score is not None:
            session.expunge(score)
        return score

    def decide_offer(
        self,
        customer_ref: str,
        product_id: int,
        decide: Callable[[OfferContext], OfferTerms | None],
        channel: str,
        expires_in: timedelta,
    ) -> OfferView | None:
        """One offer decision, one read, one transaction: what the decision needs is read once
        (``OfferContext``) and ``decide`` (the offer policy) rules on it. An offer it makes is
        written in the same transaction after taking the offers' decision lock and reading the
        consent, the customer's cap and the day's budget again: if another decider (thread,
        process or replica) changed them meanwhile, ``decide`` rules again on what is true now,
        so the budget and the cap hold whoever decides at the same moment. A decision to offer
        nothing takes no lock. An offer already open on this product is shown again rather than
        made twice (the policy is not asked)."""
        with session_scope(self.engine) as session:
            now = utcnow()
            customer = self._customer(session, customer_ref)
            customer_id = customer.id if customer else None
            context = self._offer_context(session, customer_id, now)
            if shown := _open_on(context, product_id):
                return shown
            terms = decide(context)
            if terms is None:
                return None
            hold_decision_lock(session, "offers")
            customer = customer or self._customer(session, customer_ref)  # made meanwhile?
            customer_id = customer.id if customer else None
            now_true = replace(context, **self._offer_state(session, customer_id, now))
            if shown := _open_on(now_true, product_id):  # another decider made it meanwhile
                return shown
            if now_true != context:
                terms = decide(now_true)
                if terms is None:
                    return None
            customer = customer or self._get_or_create_customer(session, customer_ref)
            offer = Offer(
                customer_id=customer.id,
                product_id=product_id,
                percent_off=terms.percent_off,
                reason=terms.reason,
                rule=terms.rule,
                scores=dict(terms.scores),
                channel=channel,
                created_at=now,
                expires_at=now + expires_in,
                status="shown",
                code=new_code(),
            )
            session.add(offer)
            session.flush()
            product = session.get(Product, product_id)
            assert product is not None
            view = code_view(offer, customer_ref, product)  # the shop's endpoints hear of it
            outbox.enqueue(session, "offer.created", {"offer": view.as_dict()}, customer_ref)
            return self._offer_view(session, offer)

    def _offer_context(self, session: Session, customer_id: int | None, now: datetime) -> OfferContext:
        """A customer with no row yet (``customer_id`` None) has no consent, offers or score."""
        return OfferContext(
            score=None if customer_id is None else self._score(session, customer_id),
            **self._offer_state(session, customer_id, now),
        )

    def _offer_state(self, session: Session, customer_id: int | None, now: datetime) -> dict[str, Any]:
        """What may change between reading a decision's context and writing it: consent, open
        offers, the customer's offers in the last 24 hours, the discount offered to everyone
        since midnight."""
        opted_out = customer_id is not None and self._opted_out(session, customer_id)
        offers_last_day = customer_id is not None and session.scalar(
            select(func.count())
            .select_from(Offer)
            .where(Offer.customer_id == customer_id, Offer.created_at >= now - timedelta(days=1))
        )
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        budget_used = session.scalar(
            select(func.sum(Product.price_cents * Offer.percent_off))
            .select_from(Offer)
            .join(Product, Offer.product_id == Product.id)
            .where(Offer.created_at >= midnight)
        )
        return {
            "opted_out": opted_out,
            "open_offers": ()
            if customer_id is None or opted_out
            else tuple(self._open_offers(session, customer_id, now)),
            "offers_last_day": int(offers_last_day or 0),
            "budget_used_cents": round((budget_used or 0) / 100),
        }

    def decline_offer(self, customer_ref: str, offer_id: int) -> bool:
        with session_scope(self.engine) as session:
            customer = self._customer(session, customer_ref)
            if customer is None:
                return False
            result = session.execute(
                update(Offer)
                .where(Offer.id == offer_id, Offer.customer_id == customer.id, Offer.status == "shown")
                .values(status="declined", decided_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # --- orders ----------------------------------------------------------------------------
    def record_purchase(self, customer_ref: str, product_id: int, channel: str) -> OrderView:
        """Record a purchase; an open, unexpired offer on that product applies and is accepted.

        One transaction: the order row and the offer's outcome are written together or not at all.
        """
        with session_scope(self.engine) as session:
            customer = self._get_or_create_customer(session, customer_ref)
            product = session.get(Product, product_id)
            if product is None:
                raise LookupError(f"no product {product_id}")
            now = utcnow()
            offer = None
            if not self._opted_out(session, customer.id):  # an opted-out customer pays full price
                offer = session.scalar(
                    select(Offer)
                    .where(
                        Offer.customer_id == customer.id,
                        Offer.product_id == product_id,
                        Offer.status == "shown",
                        Offer.expires_at > now,
                    )
                    .order_by(Offer.percent_off.desc())
                    .limit(1)
                )
            discount = offer.percent_off if offer else 0
            amount = round(product.price_cents * (100 - discount) / 100)
            order = Order(
                customer_id=customer.id,
                product_id=product.id,
                quantity=1,
                unit_price_cents=product.price_cents,
                discount_pct=discount,
                amount_cents=amount,
                ordered_at=now,
                channel=channel,
                offer_id=offer.id if offer else None,
            )
            session.add(order)
            if offer:
                offer.status = "accepted"
                offer.decided_at = now
            session.flush()
            return self._order_view(order, product)

    @staticmethod
    def _order_view(order: Order, product: Product) -> OrderView:
        return OrderView(
            order.id,
            _item(product),
            order.quantity,
            order.amount_cents,
            order.discount_pct,
            as_utc(order.ordered_at),
            order.channel,
        )

    def order_history(self, customer_ref: str, limit: int = 5) -> tuple[int, list[OrderView]]:
        """(total number of orders, the newest ``limit`` of them)."""
        with session_scope(self.engine) as session:
            customer = self._customer(session, customer_ref)
            if customer is None:
                return 0, []
            total = (
                session.scalar(
                    select(func.count()).select_from(Order).where(Order.customer_id == customer.id)
                )
                or 0
            )
            rows = session.execute(
                select(Order, Product)
                .join(Product, Order.product_id == Product.id)
                .where(Order.customer_id == customer.id)
                .order_by(Order.ordered_at.desc(), Order.id.desc())
                .limit(limit)
            ).all()
            return total, [self._order_view(o, p) for o, p in rows]


def _open_on(context: OfferContext, product_id: int) -> OfferView | None:
    """The customer's offer already open on this product: shown again, never made twice."""
    return next((offer for offer in context.open_offers if offer.product.id == product_id), None)
