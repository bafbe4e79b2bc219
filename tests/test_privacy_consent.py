"""Consent at the store's level, where every offer path ends: a refusal recorded any way (the
chat's opt-out, or a row another system wrote without withdrawing open offers) stops offers being
made, shown or applied; the latest decision counts. The conversation paths are tested through the
running product in test_privacy_e2e.py."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, select

from smartmkt.assistant import ShopAssistant
from smartmkt.store.clock import utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import Consent, Customer, Offer
from smartmkt.store.repository import StoreRepository


def refuse_without_withdrawing(engine: Engine, ref: str, granted: bool = False) -> None:
    """A consent decision written by another system (an import, the shop's account page)."""
    with session_scope(engine) as s:
        customer_id = s.scalar(select(Customer.id).where(Customer.external_ref == ref))
        s.add(
            Consent(
                customer_id=customer_id,
                purpose="marketing",
                granted=granted,
                channel="web",
                recorded_at=utcnow(),
            )
        )


def test_opt_out_is_recorded_with_time_and_channel_and_withdraws_open_offers(demo_engine: Engine) -> None:
    repo = StoreRepository(demo_engine)
    offer = repo.create_offer("42", 1, 10, "nudge", "nudge", {}, "text", timedelta(days=7))
    assert offer is not None
    before = utcnow()
    repo.opt_out("42", "voice")
    with session_scope(demo_engine) as s:
        consent = s.scalars(select(Consent).where(Consent.customer_id == 42)).one()
        assert (consent.purpose, consent.granted, consent.channel) == ("marketing", False, "voice")
        assert consent.recorded_at.replace(tzinfo=before.tzinfo) >= before
        assert s.get(Offer, offer.id).status == "withdrawn"  # type: ignore[union-attr]


def test_a_refusal_however_recorded_stops_every_offer_path(demo_engine: Engine, served_recommender) -> None:  # type: ignore[no-untyped-def]
    repo = StoreRepository(demo_engine)
    shop = ShopAssistant(demo_engine, served_recommender)
    offer = repo.create_offer("42", 1, 10, "nudge", "nudge", {}, "text", timedelta(days=7))
    assert offer is not None and repo.open_offers("42")
    refuse_without_withdrawing(demo_engine, "42")  # the offer is still "shown" in the table

    assert repo.is_opted_out("42") and 42 in repo.opted_out_customer_ids()
    assert repo.open_offers("42") == [] and shop.open_offers("42") == []  # not shown (price, deals)
    assert repo.create_offer("42", 2, 10, "nudge", "nudge", {}, "text", timedelta(days=7)) is None  # not made
    assert shop.recommend("42").offer is None  # not attached to a recommendation
    order = repo.record_purchase("42", 1, "text")  # not applied to a purchase
    assert order.discount_pct == 0 and order.amount_cents == order.product.price_cents
    with session_scope(demo_engine) as s:
        assert s.scalar(select(Offer.status).where(Offer.id == offer.id)) == "shown"
        assert len(s.scalars(select(Offer).where(Offer.customer_id == 42)).all()) == 1


def test_the_latest_decision_counts(demo_engine: Engine, served_recommender) -> None:  # type: ignore[no-untyped-def]
    repo = StoreRepository(demo_engine)
    repo.opt_out("43", "text")
    assert repo.is_opted_out("43")
    refuse_without_withdrawing(demo_engine, "43", granted=True)  # opted back in on the shop's site
    assert not repo.is_opted_out("43") and 43 not in repo.opted_out_customer_ids()
    assert repo.create_offer("43", 1, 10, "nudge", "nudge", {}, "text", timedelta(days=7)) is not None
