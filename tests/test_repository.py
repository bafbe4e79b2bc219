"""The store through StoreRepository, on a real SQLite copy of the demo store."""

from datetime import timedelta

from sqlalchemy import func, select

from smartmkt.privacy.erasure import erase_customer
from smartmkt.store.db import session_scope
from smartmkt.store.models import Consent, Customer, ErasureAudit, Offer, Order
from smartmkt.store.repository import StoreRepository


def test_demo_store_is_complete(demo_engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(demo_engine) as s:
        assert s.scalar(select(func.count()).select_from(Customer)) == 943
        assert s.scalar(select(func.count()).select_from(Order)) == 100_000
    repo = StoreRepository(demo_engine)
    products = repo.all_products()
    assert len(products) == 1682
    toy = next(p for p in products if p.id == 1)
    assert toy.title == "Toy Story" and toy.year == 1995 and "Comedy" in toy.genres
    # synthetic prices are deterministic: the same id always gets the same price
    from smartmkt.data.demo import synthetic_price_cents

    assert toy.price_cents == synthetic_price_cents(1)
    assert len(repo.history("42").product_ids) > 0


def test_offer_accepted_by_purchase_writes_order(demo_engine) -> None:  # type: ignore[no-untyped-def]
    repo = StoreRepository(demo_engine)
    offer = repo.create_offer("42", 1, 15, "test", "nudge", {"s": 1.0}, "text", timedelta(days=7))
    order = repo.record_purchase("42", 1, "text")
    assert order.discount_pct == 15
    assert order.amount_cents == round(offer.product.price_cents * 0.85)
    with session_scope(demo_engine) as s:
        stored = s.get(Offer, offer.id)
        assert stored is not None and stored.status == "accepted"
        assert s.scalar(select(Order.offer_id).where(Order.id == order.id)) == offer.id
    # a second purchase of the same title pays full price: the offer was used
    assert repo.record_purchase("42", 1, "text").discount_pct == 0


def test_new_customer_is_created_on_first_purchase(demo_engine) -> None:  # type: ignore[no-untyped-def]
    repo = StoreRepository(demo_engine)
    assert not repo.customer_exists("web-abc")
    repo.record_purchase("web-abc", 50, "text")
    assert repo.history("web-abc").product_ids == (50,)


def test_opt_out_withdraws_open_offers(demo_engine) -> None:  # type: ignore[no-untyped-def]
    repo = StoreRepository(demo_engine)
    repo.create_offer("7", 1, 10, "t", "nudge", {}, "text", timedelta(days=7))
    assert repo.open_offers("7")
    repo.opt_out("7", "text")
    assert repo.is_opted_out("7")
    assert repo.open_offers("7") == []


def test_erasure_removes_personal_rows_and_keeps_an_anonymous_audit(demo_engine) -> None:  # type: ignore[no-untyped-def]
    repo = StoreRepository(demo_engine)
    repo.create_offer("42", 1, 10, "t", "nudge", {}, "text", timedelta(days=7))
    repo.opt_out("42", "text")
    n_orders = len(repo.history("42").product_ids)
    counts = erase_customer(demo_engine, demo_engine, "42", "customer").counts
    assert counts["orders_unlinked"] == n_orders
    assert not repo.customer_exists("42")
    with session_scope(demo_engine) as s:
        assert s.scalar(select(func.count()).select_from(Offer).where(Offer.customer_id == 42)) == 0
        assert s.scalar(select(func.count()).select_from(Consent).where(Consent.customer_id == 42)) == 0
        assert s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == 42)) == 0
        audit = s.scalars(select(ErasureAudit)).one()
        assert "42" not in str(audit.rows_deleted.keys())
    # the orders still exist for accounting
    with session_scope(demo_engine) as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 100_000
