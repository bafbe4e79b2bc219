"""``smartmkt bench api``: the shop API against the running product (app, action server and
Rasa on free ports, over a scratch copy of the store, as ``bench chat`` runs them).

- ``orders_per_s_batch_N``: order lines accepted per second through ``POST /api/v1/orders`` in
  batches of N, with ``CLIENTS`` requests in flight (a shop's backend sends from a few workers).
  Every line is new (its own order id), for a demo customer and product.
- ``single_order_p95_ms``: one order line per request, one request at a time: what a shop's
  checkout waits.
- ``upsert_to_recommendable_s``: from the answer to ``PUT /api/v1/products/{id}`` to the first
  chat turn (Rasa's REST channel, polled every 0.1 s) whose recommendations list it. The product
  is a documentary under $2, which no demo title is (the cheapest costs $2.99), and the question
  is "recommend a documentary under $2", so the product is listed as soon as the action server
  has followed the catalog. Repeated ``UPSERT_TRIALS`` times; the worst is the figure.
- ``widget_gzip_kb``: the chat widget's script (GET /widget.js), gzipped as the app sends it,
  without the socket.io-client it bundles (the target is "60 kB plus socket.io-client");
  ``widget_with_socketio_gzip_kb`` is the whole script as served.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from smartmkt.bench.chat import percentile, scratch_stack, signed_sessions
from smartmkt.settings import Settings
from smartmkt.web.routers import widget

BATCHES = (1, 100, 1000)
CLIENTS = 2
UPSERT_TRIALS = 5
POLL_S = 0.1

Say = Callable[[str], None]


def _lines(customers: list[str], products: list[str], count: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "order_id": f"bench-{tag}-{n}",
            "customer_id": customers[n % len(customers)],
            "product_id": products[(n * 7) % len(products)],
            "quantity": 1,
            "ordered_at": "2026-11-30T12:00:00Z",
        }
        for n in range(count)
    ]


def orders_per_s(
    client: httpx.Client, api: str, key: dict[str, str], lines: list[dict[str, Any]], batch: int
) -> float:
    """Lines accepted per second, sent in batches of ``batch`` by ``CLIENTS`` senders."""
    batches = [lines[i : i + batch] for i in range(0, len(lines), batch)]

    def send(part: list[dict[str, Any]]) -> int:
        body: Any = part[0] if batch == 1 else {"orders": part}
        answer = client.post(f"{api}/orders", json=body, headers=key)
        answer.raise_for_status()
        return int(answer.json()["inserted"])

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        inserted = sum(pool.map(send, batches))
    elapsed = time.perf_counter() - start
    if inserted != len(lines):
        raise RuntimeError(f"{len(lines)} new order lines sent, {inserted} inserted")
    return round(inserted / elapsed, 1)


def single_order_ms(
    client: httpx.Client, api: str, key: dict[str, str], lines: list[dict[str, Any]]
) -> list[float]:
    """Each line in a request of its own, one at a time: the milliseconds each took."""
    waits = []
    for line in lines:
        start = time.perf_counter()
        client.post(f"{api}/orders", json=line, headers=key).raise_for_status()
        waits.append((time.perf_counter() - start) * 1000)
    return waits


def upsert_to_recommendable(
    client: httpx.Client, api: str, rest_url: str, key: dict[str, str], settings: Settings, trial: int
) -> float:
    """Seconds from a new product's PUT to the first chat turn that recommends it."""
    ref = f"bench-doc-{uuid.uuid4().hex[:8]}"
    product = {"title": f"Salt Flats Diary {trial}", "category": "Documentary", "price": 1.0 + trial / 100}
    client.put(f"{api}/products/{ref}", json=product, headers=key).raise_for_status()
    start = time.perf_counter()
    sender, metadata = signed_sessions(settings)(f"bench-doc-fan-{uuid.uuid4().hex[:8]}")
    while time.perf_counter() - start < 60:
        body = {"sender": sender, "message": "recommend a documentary under $2", "metadata": metadata}
        replies = client.post(rest_url, json=body).json()
        listed = [
            item.get("title") for reply in replies for item in (reply.get("custom") or {}).get("products", [])
        ]
        if product["title"] in listed:
            return round(time.perf_counter() - start, 2)
        time.sleep(POLL_S)
    raise RuntimeError(f"{product['title']} was not recommended within 60 s of its upsert")


def run_api_bench(
    settings: Settings, orders: int = 20_000, singles: int = 500, say: Say = lambda _m: None
) -> dict[str, Any]:
    """The report: the issue's keys first, then what explains them."""
    from sqlalchemy import select

    from smartmkt.security.api_keys import create_key
    from smartmkt.store.db import make_engine
    from smartmkt.store.models import Customer, Product

    say("starting the product on free ports (scratch store) ...")
    with scratch_stack(settings) as stack:
        engine = make_engine(stack.settings.resolved_database_url)
        try:
            scopes = ("catalog:write", "orders:write")
            key = {
                "Authorization": f"Bearer {create_key(engine, 'bench', scopes, rate_per_minute=10**9).key}"
            }
            with engine.connect() as conn:
                customers = [str(c) for c in conn.scalars(select(Customer.external_ref).limit(500))]
                products = [str(p) for p in conn.scalars(select(Product.external_ref).limit(500))]
        finally:
            engine.dispose()
        api = stack.settings.app_url + "/api/v1"
        report: dict[str, Any] = {}
        with httpx.Client(timeout=120) as client:
            client.post(
                f"{api}/orders", json=_lines(customers, products, 1, "warm")[0], headers=key
            ).raise_for_status()
            for batch in BATCHES:
                count = min(orders, 2_000) if batch == 1 else orders
                say(f"{count:,} order lines in batches of {batch} ...")
                lines = _lines(customers, products, count, f"b{batch}-{uuid.uuid4().hex[:6]}")
                report[f"orders_per_s_batch_{batch}"] = orders_per_s(client, api, key, lines, batch)
            say(f"{singles} single orders, one at a time ...")
            waits = single_order_ms(
                client, api, key, _lines(customers, products, singles, f"one-{uuid.uuid4().hex[:6]}")
            )
            report["single_order_p95_ms"] = round(percentile(waits, 95), 1)
            say(f"{UPSERT_TRIALS} products from upsert to recommended ...")
            trials = [
                upsert_to_recommendable(client, api, stack.rest_url, key, stack.settings, n)
                for n in range(UPSERT_TRIALS)
            ]
        report["upsert_to_recommendable_s"] = max(trials)
        socket = stack.settings.rasa_url  # what the widget's bundle names as Rasa's socket
        report["widget_gzip_kb"] = widget.gzip_kb(socket, with_socketio=False)
        report |= {
            "widget_with_socketio_gzip_kb": widget.gzip_kb(socket, with_socketio=True),
            "single_order_p50_ms": round(statistics.median(waits), 1),
            "upsert_to_recommendable_trials_s": trials,
            "clients": CLIENTS,
            "catalog_poll_s": stack.settings.catalog_poll_s,
            "notes": "app, action server and Rasa on the same 2 cores as the load generator; SQLite store",
        }
        return report
