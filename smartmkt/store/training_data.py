"""Bulk reads of the store for training, evaluation and benchmarks: every customer's purchase
history, the catalog's titles, and a fingerprint of the data a model learns from. They live with
the store (not in the trainer) so evaluation and the benches read the same data the same way
without importing the trainer."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from sqlalchemy import Engine, func, select

from smartmkt.store.db import session_scope
from smartmkt.store.models import CatalogState, Order
from smartmkt.store.repository import StoreRepository


def purchase_histories(engine: Engine, *columns: Any) -> dict[int, list[Any]]:
    """Product ids per customer, oldest first; or another of the orders' columns (e.g. when),
    or a tuple of several per purchase, so a caller that needs two reads the orders once."""
    wanted = columns or (Order.product_id,)
    histories: dict[int, list[Any]] = defaultdict(list)
    with session_scope(engine) as session:
        rows = session.execute(
            select(Order.customer_id, *wanted)
            .where(Order.customer_id.is_not(None))
            .order_by(Order.customer_id, Order.ordered_at, Order.id)
        )
        for customer_id, *values in rows:
            histories[int(customer_id or 0)].append(values[0] if len(wanted) == 1 else tuple(values))
    return histories


def store_fingerprint(engine: Engine) -> str:
    """Changes whenever an order is added or a product changes: a model trained on an older
    fingerprint is stale."""
    with session_scope(engine) as session:
        orders, last_id = session.execute(select(func.count(Order.id), func.max(Order.id))).one()
    products = StoreRepository(engine).all_products()
    digest = hashlib.sha256(f"{orders}:{last_id}".encode())
    for p in products:
        digest.update(f"{p.id}|{p.title}|{p.year}|{'|'.join(p.genres)}|{p.price_cents}".encode())
    return digest.hexdigest()[:16]


def catalog_version(engine: Engine) -> int:
    """The store's catalog version now (catalog_state; 0 before any product was written)."""
    with session_scope(engine) as session:
        return int(session.scalar(select(CatalogState.version).where(CatalogState.id == 1)) or 0)


def catalog_titles(engine: Engine) -> list[str]:
    """Every catalog title (the NLU learns product names from them)."""
    return [p.title for p in StoreRepository(engine).all_products()]
