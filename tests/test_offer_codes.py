"""Discount codes (issue 18): each offer gets a unique, unguessable code bound to its customer,
product, discount and expiry; the shop's checkout checks it (GET /api/v1/offers/{code}) and
records its use on an order (POST .../redeem), once: again with the same order changes nothing,
another order, an expired or withdrawn offer, or another customer is refused with a reason; two
redemptions racing, on SQLite and on PostgreSQL, leave exactly one winner."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import JSON, Column, Engine, MetaData, Table, insert, select, update

from smartmkt.security.api_keys import create_key
from smartmkt.settings import Settings
from smartmkt.store.clock import utcnow
from smartmkt.store.db import make_engine
from smartmkt.store.migrate import upgrade
from smartmkt.store.models import Customer, Offer, Product
from smartmkt.store.offer_codes import new_code, normalize
from smartmkt.store.repository import StoreRepository
from smartmkt.web.app import create_app
from smartmkt.web.routers.shop_offers import CodeCheck, CodeError, Redeemed

CODE = re.compile(r"^SMK(-[0-9A-HJKMNP-TV-Z]{4}){4}$")


def test_codes_are_random_readable_and_read_back_however_typed() -> None:
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000 and all(CODE.match(c) for c in codes)
    code = next(iter(codes))
    assert normalize(code.lower().replace("-", " ")) == code
    assert normalize(code.replace("0", "o").replace("1", "l")) == code  # Crockford's reading
    for bad in ("", "SMK", "SMK-1234", "XYZ-" + code[4:], code + "A", code[:-1] + "U"):
        assert normalize(bad) is None, bad


@pytest.fixture
def shop(demo_db: Path, base_settings: Settings) -> Iterator[tuple[TestClient, Engine, dict[str, str]]]:
    engine = make_engine(f"sqlite:///{demo_db}")
    client = TestClient(create_app(base_settings.model_copy(update={"database_url": f"sqlite:///{demo_db}"})))
    key = create_key(engine, "checkout", ("offers:read", "offers:write")).key
    yield client, engine, {"Authorization": f"Bearer {key}"}
    engine.dispose()


def make_offer(engine: Engine, customer: str = "42", days: float = 7) -> tuple[str, str, str]:
    """An offer for ``customer`` on a product they never bought: (code, customer, product ref)."""
    with engine.connect() as conn:
        product_id, product_ref = conn.execute(
            select(Product.id, Product.external_ref).order_by(Product.id.desc()).limit(1)
        ).one()
    view = StoreRepository(engine).create_offer(
        customer, product_id, 15, "test", "test", {}, "text", timedelta(days=days)
    )
    assert view is not None
    with engine.connect() as conn:
        code = conn.scalar(select(Offer.code).where(Offer.id == view.id))
    assert code and CODE.match(code)
    return code, customer, str(product_ref)


def test_the_checkout_checks_a_code(shop: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, engine, key = shop
    code, customer, product = make_offer(engine)
    checked = client.get(
        f"/api/v1/offers/{code}", params={"customer_id": customer, "product_id": product}, headers=key
    )
    assert checked.status_code == 200
    body = checked.json()
    CodeCheck.model_validate(body)  # as /api/openapi.json documents it
    assert body["valid"] is True and body["reason"] is None
    offer = body["offer"]
    assert (offer["code"], offer["customer_id"], offer["product_id"], offer["percent_off"]) == (
        code,
        customer,
        product,
        15,
    )
    assert offer["offer_price_cents"] == round(offer["price_cents"] * 0.85)
    typed = client.get(f"/api/v1/offers/{code.lower().replace('-', '')}", headers=key)
    assert typed.status_code == 200 and typed.json()["offer"]["code"] == code
    other = client.get(f"/api/v1/offers/{code}", params={"customer_id": "7"}, headers=key).json()
    assert other["valid"] is False and "another customer" in other["reason"]
    wrong_product = client.get(f"/api/v1/offers/{code}", params={"product_id": "nope"}, headers=key).json()
    assert wrong_product["valid"] is False and product in wrong_product["reason"]
    unknown = client.get("/api/v1/offers/SMK-0000-0000-0000-0000", headers=key)
    assert unknown.status_code == 404 and unknown.json()["error"] == "unknown code"
    assert client.get(f"/api/v1/offers/{code}").status_code == 401
    reader = {"Authorization": f"Bearer {create_key(engine, 'orders only', ('orders:write',)).key}"}
    assert client.get(f"/api/v1/offers/{code}", headers=reader).status_code == 403


def test_a_code_is_redeemed_once_and_the_second_time_is_refused_with_a_reason(
    shop: tuple[TestClient, Engine, dict[str, str]],
) -> None:
    client, engine, key = shop
    code, customer, product = make_offer(engine)
    url = f"/api/v1/offers/{code}/redeem"
    wrong = client.post(url, json={"customer_id": "7", "order_id": "A-1"}, headers=key)
    assert wrong.status_code == 422 and "another customer" in wrong.json()["error"]
    first = client.post(
        url, json={"customer_id": customer, "order_id": "A-1", "product_id": product}, headers=key
    )
    assert first.status_code == 200 and first.json()["recorded"] is True
    Redeemed.model_validate(first.json())
    assert (
        first.json()["offer"]["status"] == "accepted" and first.json()["offer"]["redeemed_order_id"] == "A-1"
    )
    again = client.post(url, json={"customer_id": customer, "order_id": "A-1"}, headers=key)
    assert again.status_code == 200 and again.json()["recorded"] is False  # the same request: idempotent
    assert again.json()["offer"]["redeemed_at"] == first.json()["offer"]["redeemed_at"]
    other = client.post(url, json={"customer_id": customer, "order_id": "B-2"}, headers=key)
    assert other.status_code == 409 and "'A-1'" in other.json()["error"]
    CodeError.model_validate(other.json())
    checked = client.get(f"/api/v1/offers/{code}", headers=key).json()
    assert checked["valid"] is False and "already redeemed" in checked["reason"]
    with engine.connect() as conn:
        row = conn.execute(select(Offer.redeemed_order_ref, Offer.status).where(Offer.code == code)).one()
    assert tuple(row) == ("A-1", "accepted")


def test_expired_and_withdrawn_codes_are_refused(shop: tuple[TestClient, Engine, dict[str, str]]) -> None:
    client, engine, key = shop
    code, customer, _ = make_offer(engine)
    with engine.begin() as conn:
        conn.execute(update(Offer).where(Offer.code == code).values(expires_at=Offer.created_at))
    expired = client.post(
        f"/api/v1/offers/{code}/redeem", json={"customer_id": customer, "order_id": "E-1"}, headers=key
    )
    assert expired.status_code == 410 and "expired" in expired.json()["error"]
    code2, customer2, _ = make_offer(engine, customer="43")
    StoreRepository(engine).opt_out(customer2, "text")  # opting out withdraws open offers
    withdrawn = client.post(
        f"/api/v1/offers/{code2}/redeem", json={"customer_id": customer2, "order_id": "W-1"}, headers=key
    )
    assert withdrawn.status_code == 410 and "opted out" in withdrawn.json()["error"]
    with engine.connect() as conn:
        assert conn.scalar(select(Offer.redeemed_at).where(Offer.code.in_([code, code2]))) is None


def seed_one_customer_and_product(engine: Engine) -> int:
    """Customer 'c1' and product 'p1' in an empty store; the product's id."""
    with engine.begin() as conn:
        conn.execute(insert(Customer).values(external_ref="c1", created_at=utcnow(), source="test"))
        conn.execute(
            insert(Product).values(
                external_ref="p1", title="Race", genres="", price_cents=1000, currency="USD", active=True
            )
        )
        return int(conn.scalar(select(Product.id)) or 0)


def redeem_at_once(client: TestClient, key: dict[str, str], code: str) -> list[Any]:
    """Two checkouts redeem ``code`` at the same moment, for orders 'order-0' and 'order-1'."""
    barrier = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def redeem(slot: int) -> None:
        barrier.wait()
        body = {"customer_id": "c1", "order_id": f"order-{slot}"}
        answers[slot] = client.post(f"/api/v1/offers/{code}/redeem", json=body, headers=key)

    threads = [threading.Thread(target=redeem, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_two_redemptions_racing_leave_exactly_one_winner(store_url: str, base_settings: Settings) -> None:
    engine = make_engine(store_url)
    try:
        product_id = seed_one_customer_and_product(engine)
        client = TestClient(create_app(base_settings.model_copy(update={"database_url": store_url})))
        key = {"Authorization": f"Bearer {create_key(engine, 'checkout', ('offers:write',)).key}"}
        for round_ in range(5):
            view = StoreRepository(engine).create_offer(
                "c1", product_id, 10, "r", "r", {}, "text", timedelta(days=1)
            )
            assert view is not None
            with engine.connect() as conn:
                code = str(conn.scalar(select(Offer.code).where(Offer.id == view.id)))
            answers = redeem_at_once(client, key, code)
            assert sorted(a.status_code for a in answers) == [200, 409], (round_, [a.text for a in answers])
            winner = next(a for a in answers if a.status_code == 200).json()["offer"]["redeemed_order_id"]
            with engine.connect() as conn:
                assert conn.scalar(select(Offer.redeemed_order_ref).where(Offer.code == code)) == winner
    finally:
        engine.dispose()


def test_offers_made_before_codes_existed_get_one(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0014")
    engine = make_engine(url)
    try:
        seed_one_customer_and_product(engine)
        now = utcnow()
        with engine.begin() as conn:
            customer_id = conn.scalar(select(Customer.id))
            product_id = conn.scalar(select(Product.id))
            old = {
                "customer_id": customer_id,
                "product_id": product_id,
                "percent_off": 10,
                "reason": "r",
                "rule": "r",
            }
            old |= {"scores": {}, "channel": "text", "created_at": now, "expires_at": now, "status": "shown"}
            conn.execute(offers_before_0015().insert(), [old, old, old])
        upgrade(url)
        with engine.connect() as conn:
            codes = list(conn.scalars(select(Offer.code)))
        assert len(codes) == 3 == len(set(codes)) and all(CODE.match(str(c)) for c in codes)
    finally:
        engine.dispose()


def offers_before_0015() -> Table:
    """The offers table as it was before codes (the model has the new columns)."""
    columns = (
        "customer_id",
        "product_id",
        "percent_off",
        "reason",
        "rule",
        "scores",
        "channel",
        "created_at",
        "expires_at",
        "status",
    )
    return Table(
        "offers", MetaData(), *(Column(name, JSON if name == "scores" else None) for name in columns)
    )
