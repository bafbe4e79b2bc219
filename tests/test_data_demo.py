"""The demo store comes through the same import pipeline as a shop's data (movielens.yml)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from smartmkt.data.demo import demo_loaded
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, ImportRun, Order, Product


def test_demo_store_is_imported_cleanly(demo_engine: Engine) -> None:
    assert demo_loaded(demo_engine)
    with session_scope(demo_engine) as s:
        run = s.scalars(select(ImportRun).where(ImportRun.status == "completed")).one()
        files = {f["kind"]: f for f in (run.report or {})["files"]}  # type: ignore[index, union-attr]
        assert {k: f["rows_read"] for k, f in files.items()} == {
            "customers": 943,
            "products": 1682,
            "orders": 100_000,
        }
        assert all(f["quarantined_total"] == 0 for f in files.values())
        products = files["products"]
        assert products["repaired"]["title.article_moved"] > 50  # "Usual Suspects, The"
        assert products["repaired"]["dropped.unreadable"] == 2  # release years "V" and "unkonwn"
        assert files["orders"]["imputed"]["imputed.amount"] == 100_000  # the catalog price
        suspects = s.get(Product, 12)
        assert suspects is not None
        assert (suspects.title, suspects.year, suspects.genres) == (
            "The Usual Suspects",
            1995,
            "Crime|Thriller",
        )
        assert "Unknown" not in {g for p in s.scalars(select(Product.genres)) for g in p.split("|")}
        toy = s.get(Product, 1)
        first = s.scalars(select(Order).where(Order.product_id == 1).limit(1)).one()
        assert toy is not None and first.amount_cents == toy.price_cents
        assert s.get(Customer, 943) is not None and s.get(Customer, 943).external_ref == "943"  # type: ignore[union-attr]
