"""The shop API (/api/v1): API keys (missing, wrong, revoked, wrong scope, over the rate), the
catalog, customer and order routes going through the import's cleaning rules and quarantine,
idempotency on the shop's ids, a 10,000-line batch, and `smartmkt apikey`.

The real app (FastAPI TestClient, no lifespan: these routes load no model) on a private copy of
the demo store."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_support import cli_on
from sqlalchemy import Engine, func, select, text, update

from smartmkt.cli.main import app as cli_app
from smartmkt.data.importer import Importer
from smartmkt.security.api_keys import create_key, revoke_key
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine
from smartmkt.store.models import Customer, Order, Product, QuarantinedRow
from smartmkt.web.app import create_app
from smartmkt.web.routers.shop_api import BatchResult, RowQuarantined, RowStored


@pytest.fixture
def store(demo_db: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{demo_db}")
    yield engine
    engine.dispose()


@pytest.fixture
def client(demo_db: Path, base_settings: Settings) -> TestClient:
    settings = base_settings.model_copy(update={"database_url": f"sqlite:///{demo_db}"})
    return TestClient(create_app(settings), raise_server_exceptions=False)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def key(store: Engine) -> str:
    return create_key(store, "test shop", ("catalog:write", "customers:write", "orders:write")).key


def counts(store: Engine) -> tuple[int, int, int, int]:
    with store.connect() as conn:
        return tuple(  # type: ignore[return-value]
            conn.scalar(select(func.count()).select_from(model)) or 0
            for model in (Product, Customer, Order, QuarantinedRow)
        )


def put_product(client: TestClient, key: str, ref: str, title: str, price: float) -> int:
    """PUT a product through the API; its status code."""
    return client.put(
        f"/api/v1/products/{ref}", json={"title": title, "price": price}, headers=bearer(key)
    ).status_code


def demo_customer(store: Engine) -> str:
    with store.connect() as conn:
        return str(conn.scalar(select(Customer.external_ref).order_by(Customer.id).limit(1)))


def test_a_request_needs_a_live_key_with_the_routes_scope(client: TestClient, store: Engine) -> None:
    product = {"title": "Night Train", "price": 9.99}
    missing = client.put("/api/v1/products/p-1", json=product)
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
    assert missing.headers["www-authenticate"] == "Bearer"
    for wrong in ("smk_abcdefgh_" + "x" * 64, "not-a-key", "Basic dXNlcjpwdw=="):
        refused = client.put("/api/v1/products/p-1", json=product, headers=bearer(wrong))
        assert refused.status_code == 401 and refused.json()["error"] == "unknown API key"
    orders_only = create_key(store, "orders feed", ("orders:write",))
    scope = client.put("/api/v1/products/p-1", json=product, headers=bearer(orders_only.key))
    assert scope.status_code == 403 and "catalog:write" in scope.json()["error"]
    catalog = create_key(store, "catalog feed", ("catalog:write",))
    assert client.put("/api/v1/products/p-1", json=product, headers=bearer(catalog.key)).status_code == 201
    revoke_key(store, catalog.prefix)
    revoked = client.put("/api/v1/products/p-1", json=product, headers=bearer(catalog.key))
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]
    tampered = catalog.key[:-1] + ("A" if catalog.key[-1] != "A" else "B")  # right prefix, wrong secret
    assert client.put("/api/v1/products/p-1", json=product, headers=bearer(tampered)).status_code == 401
    with store.connect() as conn:
        assert conn.scalar(select(Product.title).where(Product.external_ref == "p-1")) == "Night Train"


def test_a_keys_last_use_is_written_once_a_minute(store: Engine) -> None:
    """ "Last used" to the minute: the first request of a minute writes it, the others only count."""
    from smartmkt.security.api_keys import authorize
    from smartmkt.store.models import ApiKey

    made = create_key(store, "feed", ("orders:write",))
    minute = 60 * 29_000_000  # a minute of its own (the counts are per key and minute)

    def last_used() -> object:
        with store.connect() as conn:
            return conn.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == made.prefix))

    authorize(store, made.key, "orders:write", now_s=minute + 1)
    first = last_used()
    assert first is not None
    with store.begin() as conn:  # a marker: the next requests of that minute must not touch it
        conn.execute(update(ApiKey).where(ApiKey.prefix == made.prefix).values(last_used_at=None))
    for second in (2, 30, 59):
        authorize(store, made.key, "orders:write", now_s=minute + second)
    assert last_used() is None
    authorize(store, made.key, "orders:write", now_s=minute + 60)  # the next minute's first
    assert last_used() is not None


def test_each_key_is_rate_limited_in_the_database(client: TestClient, store: Engine) -> None:
    slow = create_key(store, "slow feed", ("catalog:write",), rate_per_minute=3)
    while time.time() % 60 > 50:  # the five requests inside one minute of the fixed window
        time.sleep(0.5)
    other = create_key(store, "other feed", ("catalog:write",), rate_per_minute=3)
    answers = [
        client.put(f"/api/v1/products/r-{n}", json={"title": f"T{n}", "price": 1}, headers=bearer(slow.key))
        for n in range(5)
    ]
    assert [a.status_code for a in answers[:3]] == [201, 201, 201]
    limited = answers[3]
    assert limited.status_code == 429 and "3 requests per minute" in limited.json()["error"]
    assert 1 <= int(limited.headers["retry-after"]) <= 61
    assert answers[4].status_code == 429
    with store.connect() as conn:
        stored = conn.scalar(
            select(func.count()).select_from(Product).where(Product.external_ref.like("r-%"))
        )
    assert stored == 3  # a refused request wrote nothing
    ok = client.put("/api/v1/products/r-9", json={"title": "T9", "price": 1}, headers=bearer(other.key))
    assert ok.status_code == 201  # another key has its own count


def test_products_are_created_updated_and_bad_ones_quarantined(
    client: TestClient, store: Engine, key: str
) -> None:
    url = "/api/v1/products/shop-77"
    body = {"title": "  The Quiet Harbour ", "category": "Drama|Romance", "price": "12,50", "year": 1999}
    created = client.put(url, json=body, headers=bearer(key))
    assert created.status_code == 201 and created.json()["result"] == "created"
    RowStored.model_validate(created.json(), strict=True)  # as /api/openapi.json documents it
    again = client.put(url, json=body, headers=bearer(key))
    assert again.status_code == 200 and again.json()["result"] == "unchanged"
    cheaper = client.put(url, json={**body, "price": 9.5}, headers=bearer(key))
    assert cheaper.status_code == 200 and cheaper.json()["result"] == "updated"
    with store.connect() as conn:
        row = conn.execute(
            select(Product.title, Product.price_cents, Product.genres, Product.year).where(
                Product.external_ref == "shop-77"
            )
        ).one()
    assert row.title == "The Quiet Harbour" and row.price_cents == 950 and row.year == 1999
    assert "Drama" in row.genres and "Romance" in row.genres
    before = counts(store)
    bad = client.put(
        "/api/v1/products/shop-78", json={"title": "Broken", "price": "twelve"}, headers=bearer(key)
    )
    assert bad.status_code == 422
    reason = bad.json()
    RowQuarantined.model_validate(reason, strict=True)
    assert (
        reason["error"] == "row quarantined"
        and reason["rule"] == "invalid.money"
        and "twelve" in reason["detail"]
    )
    after = counts(store)
    assert after[0] == before[0] and after[3] == before[3] + 1  # not stored; quarantined once
    assert (
        client.put(
            "/api/v1/products/shop-78", json={"title": "Broken", "price": "twelve"}, headers=bearer(key)
        ).status_code
        == 422
    )
    assert counts(store)[3] == after[3]  # the same bad row again is not quarantined twice
    unknown = client.put(url, json={**body, "colour": "red"}, headers=bearer(key))
    assert unknown.status_code == 400 and "colour" in json.dumps(unknown.json())


def test_customers_go_through_the_same_rules(client: TestClient, store: Engine, key: str) -> None:
    created = client.put(
        "/api/v1/customers/c-900",
        json={"age": 34, "postal_code": "10115", "country": "DE"},
        headers=bearer(key),
    )
    assert created.status_code == 201
    assert (
        client.put(
            "/api/v1/customers/c-900",
            json={"age": 34, "postal_code": "10115", "country": "DE"},
            headers=bearer(key),
        ).json()["result"]
        == "unchanged"
    )
    bad = client.put("/api/v1/customers/c-901", json={"created_at": "the day before"}, headers=bearer(key))
    assert bad.status_code == 422 and bad.json()["rule"] == "invalid.date"
    with store.connect() as conn:
        assert conn.execute(
            select(Customer.age, Customer.country).where(Customer.external_ref == "c-900")
        ).one() == (34, "DE")
        assert (
            conn.scalar(select(func.count()).select_from(Customer).where(Customer.external_ref == "c-901"))
            == 0
        )


def test_an_order_batch_is_accepted_row_by_row_and_idempotent(
    client: TestClient, store: Engine, key: str
) -> None:
    customer = demo_customer(store)
    assert put_product(client, key, "b-1", "Batch One", 5) == 201
    lines: list[dict[str, Any]] = [
        {
            "order_id": "A1",
            "customer_id": customer,
            "product_id": "b-1",
            "quantity": 2,
            "ordered_at": "2026-12-01T10:00:00Z",
        },
        {
            "order_id": "A2",
            "customer_id": customer,
            "product_id": "b-1",
            "amount": "7.50",
            "ordered_at": "2026-12-02",
        },
        {"order_id": "A3", "customer_id": "nobody-knows-me", "product_id": "b-1", "ordered_at": "2026-12-02"},
        {"order_id": "A4", "customer_id": customer, "product_id": "b-1", "ordered_at": "not a date"},
        {
            "order_id": "A1",
            "customer_id": customer,
            "product_id": "b-1",
            "quantity": 2,
            "ordered_at": "2026-12-01T10:00:00Z",
        },
    ]
    before = counts(store)
    first = client.post("/api/v1/orders", json={"orders": lines}, headers=bearer(key))
    assert first.status_code == 200, first.text
    report = first.json()
    BatchResult.model_validate(report, strict=True)
    assert (report["received"], report["accepted"], report["inserted"]) == (5, 2, 2)
    fates = {row["index"]: row for row in report["rows"]}
    assert set(fates) == {2, 3, 4}
    assert fates[2]["status"] == "quarantined" and fates[2]["rule"] == "reference.unknown_customer"
    assert fates[3]["status"] == "quarantined" and fates[3]["rule"] == "invalid.date"
    assert fates[4]["status"] == "duplicate"  # the same line as row 0, in the same request
    middle = counts(store)
    assert middle[2] == before[2] + 2 and middle[3] == before[3] + 2
    with store.connect() as conn:
        amounts = conn.execute(
            text("SELECT amount_cents, channel FROM orders WHERE line_key LIKE 'o:A%' ORDER BY amount_cents")
        ).all()
    assert [tuple(a) for a in amounts] == [(750, "api"), (1000, "api")]  # 2 x the catalog's $5
    second = client.post("/api/v1/orders", json={"orders": lines}, headers=bearer(key))
    assert second.status_code == 200 and second.json()["inserted"] == 0 and second.json()["unchanged"] == 2
    assert counts(store) == middle  # the same batch twice changes nothing
    one = client.post("/api/v1/orders", json=lines[0], headers=bearer(key))
    assert one.status_code == 200 and one.json()["accepted"] == 1 and one.json()["inserted"] == 0
    none = client.post("/api/v1/orders", json={"orders": [lines[2]]}, headers=bearer(key))
    assert none.status_code == 422 and none.json()["accepted"] == 0
    # once the customer is sent, `smartmkt data quarantine retry` imports the line it held back
    assert client.put("/api/v1/customers/nobody-knows-me", json={}, headers=bearer(key)).status_code == 201
    retried = Importer(store).retry_quarantine("orders")
    assert sum(report.inserted for report in retried) == 1
    with store.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM orders WHERE line_key LIKE 'o:A3%'")) == 1


def test_ten_thousand_order_lines_fit_in_one_request(client: TestClient, store: Engine, key: str) -> None:
    customer = demo_customer(store)
    assert put_product(client, key, "bulk-1", "Bulk", 3) == 201
    lines = [
        {
            "order_id": f"bulk-{n}",
            "customer_id": customer,
            "product_id": "bulk-1",
            "quantity": 1 + n % 3,
            "unit_price": 3,
            "currency": "USD",
            "ordered_at": f"2026-11-{1 + n % 28:02d}T12:{n % 60:02d}:00Z",
        }
        for n in range(10_000)
    ]
    body = json.dumps({"orders": lines})
    assert len(body) < 8 * 1024 * 1024
    done = client.post(
        "/api/v1/orders", content=body, headers={**bearer(key), "content-type": "application/json"}
    )
    assert done.status_code == 200, done.text[:500]
    assert done.json()["inserted"] == 10_000 and done.json()["rows"] == []
    too_many = client.post("/api/v1/orders", json={"orders": lines + lines[:1]}, headers=bearer(key))
    assert too_many.status_code == 400
    huge = client.post(
        "/api/v1/orders",
        content=b'{"orders": [' + b" " * (9 * 1024 * 1024) + b"]}",
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert huge.status_code == 413 and "larger than" in huge.json()["error"]


PRODUCT_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
    st.text(max_size=40),
    st.sampled_from(["", " ", "9,99 €", "$1e9", "-3", "NaN", "1999-12-31", "\x00", "\u202e"]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.dictionaries(
        st.sampled_from(["title", "category", "price", "currency", "year", "active", "nonsense"]),
        PRODUCT_VALUES,
        max_size=6,
    ),
    ref=st.text(min_size=1, max_size=20).filter(
        lambda r: "/" not in r and r.strip() == r and r not in (".", "..")
    ),
)
def test_any_product_body_gets_an_answer_never_a_500(
    client: TestClient, key: str, fields: dict[str, Any], ref: str
) -> None:
    from urllib.parse import quote

    answer = client.put(  # NaN and Infinity as Python's JSON reader takes them
        f"/api/v1/products/{quote(ref, safe='')}",
        content=json.dumps(fields, allow_nan=True),
        headers={**bearer(key), "content-type": "application/json"},
    )
    assert answer.status_code in (200, 201, 400, 404, 422), (answer.status_code, answer.text)
    assert isinstance(answer.json(), dict)


def test_apikey_commands_create_list_and_revoke(
    demo_db: Path, monkeypatch: pytest.MonkeyPatch, store: Engine
) -> None:
    with cli_on(demo_db, monkeypatch) as cli:
        made = cli.invoke(
            cli_app, ["apikey", "create", "--scope", "orders:write,catalog:write", "--name", "feed", "--json"]
        )
        assert made.exit_code == 0, made.output
        new = json.loads(made.output)
        assert new["key"].startswith(f"smk_{new['prefix']}_") and new["scopes"] == [
            "catalog:write",
            "orders:write",
        ]
        with store.connect() as conn:
            stored = conn.execute(
                text("SELECT key_hash, scopes FROM api_keys WHERE prefix = :p"), {"p": new["prefix"]}
            ).one()
        assert new["key"] not in json.dumps(list(stored)) and len(stored[0]) == 64  # only the hash
        listed = cli.invoke(cli_app, ["apikey", "list"])
        assert listed.exit_code == 0 and new["prefix"] in listed.output and new["key"] not in listed.output
        assert cli.invoke(cli_app, ["apikey", "create", "--scope", "everything"]).exit_code != 0
        assert cli.invoke(cli_app, ["apikey", "revoke", new["prefix"]]).exit_code == 0
        assert cli.invoke(cli_app, ["apikey", "revoke", "nosuchkey"]).exit_code != 0
        with store.connect() as conn:
            assert conn.scalar(
                text("SELECT revoked_at FROM api_keys WHERE prefix = :p"), {"p": new["prefix"]}
            )


def test_the_api_reference_is_served_by_the_app(client: TestClient) -> None:
    """/api/openapi.json names the shop API's routes (only them) with their bearer key; /api/docs
    is Swagger UI from the app's own npm assets."""
    document = client.get("/api/openapi.json").json()
    assert set(document["paths"]) == {
        "/api/v1/products/{product_id}",
        "/api/v1/customers/{customer_id}",
        "/api/v1/orders",
        "/api/v1/offers/{code}",
        "/api/v1/offers/{code}/redeem",
        "/api/v1/webhooks/{platform}",
    }
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "HTTPValidationError" not in document["components"]["schemas"]  # bad input is a 400 here
    quarantined = document["paths"]["/api/v1/products/{product_id}"]["put"]["responses"]["422"]
    assert quarantined["content"]["application/json"]["schema"]["$ref"].endswith("/RowQuarantined")
    keyed = [op for path, item in document["paths"].items() if "webhooks" not in path for op in item.values()]
    assert keyed and all(operation["security"] for operation in keyed)  # webhooks are signed instead
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/static/vendor/swagger-ui-bundle.js" in page.text
    for asset in (
        "/static/vendor/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui.css",
        "/static/api_docs.js",
    ):
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 300, asset


def test_on_each_engine_the_api_stores_rows_once_and_counts_racing_requests(
    store_url: str, base_settings: Settings
) -> None:
    """SQLite and PostgreSQL: a product, a customer and an order line through the API, each
    write raising the catalog version only when a product changed; and 12 requests racing on
    a key allowed 5 a minute: exactly 5 get through."""
    from concurrent.futures import ThreadPoolExecutor

    from smartmkt.store.repository import StoreRepository
    from smartmkt.store.training_data import catalog_version

    engine = make_engine(store_url)
    try:
        client = TestClient(create_app(base_settings.model_copy(update={"database_url": store_url})))
        key = bearer(create_key(engine, "feed", ("catalog:write", "customers:write", "orders:write")).key)
        start = catalog_version(engine)
        assert (
            client.put(
                "/api/v1/products/p1", json={"title": "Engine One", "price": 4}, headers=key
            ).status_code
            == 201
        )
        assert (
            client.put(
                "/api/v1/products/p1", json={"title": "Engine One", "price": 4}, headers=key
            ).status_code
            == 200
        )
        assert client.put("/api/v1/customers/c1", json={"age": 40}, headers=key).status_code == 201
        line = {"order_id": "o1", "customer_id": "c1", "product_id": "p1", "ordered_at": "2026-12-01"}
        assert client.post("/api/v1/orders", json=line, headers=key).json()["inserted"] == 1
        assert client.post("/api/v1/orders", json={"orders": [line]}, headers=key).json()["unchanged"] == 1
        version, changes = StoreRepository(engine).catalog_changes(start)
        assert version == start + 1 and [c.item.title for c in changes] == ["Engine One"]
        assert counts(engine)[:3] == (1, 1, 1)

        limited = bearer(create_key(engine, "slow", ("catalog:write",), rate_per_minute=5).key)

        def put(n: int) -> int:
            return client.put(
                f"/api/v1/products/race-{n}", json={"title": f"Race {n}", "price": 1}, headers=limited
            ).status_code

        while time.time() % 60 > 50:  # all 12 inside one minute of the key's fixed window
            time.sleep(0.5)
        with ThreadPoolExecutor(max_workers=12) as pool:
            codes = list(pool.map(put, range(12)))
        assert sorted(codes) == [201] * 5 + [429] * 7, codes
    finally:
        engine.dispose()
