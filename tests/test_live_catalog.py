"""The catalog since training (smartmkt.recommend.live_catalog): products created, changed or gone
after a recommender was trained are recommended as they are now, with the trained model's filters
and without a retrain; and the store hands them over by catalog version.

A small recommender trained here on a synthetic catalog (each test its own: following changes
the model), and a private copy of the demo store for the store's side."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from smartmkt.catalog import CatalogChange, CatalogItem
from smartmkt.data.importer import Importer
from smartmkt.recommend.collaborative import CollaborativeConfig
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.recommender import Recommender
from smartmkt.store.repository import StoreRepository
from smartmkt.store.training_data import catalog_version

WESTERNS = range(1, 21)
COMEDIES = range(21, 41)


def _catalog() -> list[CatalogItem]:
    items = [CatalogItem(i, f"Dusty Trail {i}", 1950 + i, ("Western",), i * 100) for i in WESTERNS]
    return items + [CatalogItem(i, f"Laugh Riot {i}", 1970 + i, ("Comedy",), i * 100) for i in COMEDIES]


@pytest.fixture
def model() -> Recommender:
    rng = np.random.default_rng(0)
    histories = [
        [
            int(x)
            for x in rng.choice(np.arange(1, 21) if n % 2 == 0 else np.arange(21, 41), size=8, replace=False)
        ]
        for n in range(120)
    ]
    return Recommender.fit(_catalog(), histories, CollaborativeConfig(dim=16, epochs=30), catalog_version=3)


def ids(recs: list) -> list[int]:  # type: ignore[type-arg]
    return [r.product_id for r in recs]


def test_a_new_product_is_recommended_with_the_filters_of_every_other(model: Recommender) -> None:
    assert model.catalog_version == 3
    space = CatalogItem(99, "Cosmic Space Station Adventure", 2001, ("Sci-Fi",), 700)
    before = model.recommend([], text="a space station science fiction adventure", k=3)
    assert 99 not in ids(before)
    model.follow([CatalogChange(space)], version=4)
    assert model.catalog_version == 4 and space in model.catalog()
    found = model.recommend([], text="a space station science fiction adventure", k=3)
    assert ids(found)[0] == 99, found  # the words match it best
    assert 99 not in ids(model.recommend([], Preferences(price_max=5.0), text="space station", k=40))
    assert 99 not in ids(model.recommend([], Preferences(genres=("Western",)), text="space station", k=40))
    assert 99 not in ids(model.recommend([], text="space station", k=40, exclude_ids=(99,)))
    assert 99 not in ids(model.recommend([99], text="space station", k=40))  # bought already
    assert model.similar_items(99, k=3) and 99 not in model.similar_items(99, k=3)
    fan = model.recommend([21, 22, 23, 24], k=5)  # history still decides for a comedy fan
    assert all(r in COMEDIES for r in ids(fan)), ids(fan)


def test_a_changed_product_replaces_its_trained_row(model: Recommender) -> None:
    cheap = Preferences(price_max=5.0)
    assert 30 not in ids(model.recommend([], cheap, k=40))  # $30 as trained
    trained_text = model.text[model.position[30]].copy()
    model.follow([CatalogChange(CatalogItem(30, "Laugh Riot 30", 2000, ("Comedy",), 250))], version=4)
    now = ids(model.recommend([], cheap, k=40))
    assert 30 in now and len(now) == len(set(now))  # once, at its new price
    row = model.overlay.position[30]
    assert np.array_equal(model.overlay.text[row], trained_text)  # same words: not encoded again
    assert np.array_equal(model.overlay.collab[row], model.collab[model.position[30]])  # its buyers kept


def test_a_product_that_left_the_catalog_is_never_recommended(model: Recommender) -> None:
    assert 21 in ids(model.recommend([22, 23, 24], Preferences(genres=("Comedy",)), k=40))
    gone = CatalogItem(21, "Laugh Riot 21", 1991, ("Comedy",), 2100)
    new = CatalogItem(77, "Laugh Riot Returns", 2020, ("Comedy",), 900)
    model.follow([CatalogChange(new), CatalogChange(gone, active=False)], version=5)
    listed = ids(model.recommend([22, 23, 24], Preferences(genres=("Comedy",)), k=40))
    assert 21 not in listed and 77 in listed
    assert gone not in model.catalog()
    before = model.overlay
    model.follow([CatalogChange(new, active=False)], version=6)  # the new one goes too
    assert 77 not in ids(model.recommend([], Preferences(genres=("Comedy",)), k=40))
    assert before.version == 5 and 77 in before.position  # a search in flight kept its catalog


def test_the_store_hands_over_each_write_once_by_catalog_version(demo_engine: Engine, tmp_path: Path) -> None:
    repo = StoreRepository(demo_engine)
    start = catalog_version(demo_engine)
    assert repo.catalog_changes(start) == (start, [])
    importer = Importer(demo_engine)
    importer.import_rows("products", [{"product_id": "live-1", "title": "Live One", "price": 4}], "test")
    importer.import_rows(
        "products", [{"product_id": "live-1", "title": "Live One", "price": 4}], "test"
    )  # unchanged
    importer.import_rows(
        "products",
        [
            {"product_id": "live-2", "title": "Live Two", "price": 5},
            {"product_id": "live-1", "title": "Live One", "price": 3},
        ],
        "test",
    )
    version, changes = repo.catalog_changes(start)
    assert version == start + 2  # the unchanged write raised nothing
    assert [(c.item.title, c.item.price_cents) for c in changes] == [("Live One", 300), ("Live Two", 500)]
    assert repo.catalog_changes(start + 1)[1] == changes  # both were written by the second write
    assert repo.catalog_changes(version) == (version, [])
    importer.import_rows(
        "products", [{"product_id": "live-2", "title": "Live Two", "price": 5, "active": "no"}], "test"
    )
    last, gone = repo.catalog_changes(version)
    assert last == version + 1 and [(c.item.title, c.active) for c in gone] == [("Live Two", False)]


def test_a_store_not_followed_yet_still_serves_the_catalog_as_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base_settings
) -> None:  # type: ignore[no-untyped-def]
    """A serving process whose store cannot say its catalog version (away, or not migrated yet)
    serves the trained catalog instead of no recommender at all; the follower tries again."""
    from smartmkt.assistant import shop
    from smartmkt.store import model_registry
    from smartmkt.store.db import make_engine

    bare = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")  # no tables at all
    monkeypatch.setattr(shop, "get_engine", lambda: bare)
    assistant = shop._build_assistant(model_registry.served_path(base_settings.models_dir, "recommender"))
    assert assistant.recommender.catalog_version == assistant.recommender.meta.catalog_version
    assert assistant.recommender.recommend([], text="a funny comedy", k=3)
    with pytest.raises(Exception, match="catalog_state"):
        assistant.follow_catalog()


def test_a_product_named_by_an_order_line_is_found_by_its_words(
    demo_engine: Engine, model: Recommender, tmp_path: Path
) -> None:
    """A product an orders file creates and names (its Description column) is handed over by
    catalog version like any product write, and a recommender following the store finds it by
    what a shopper asks for in words."""
    repo = StoreRepository(demo_engine)
    start = catalog_version(demo_engine)
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID\n"
        "9001,SPACE-1,Cosmic Space Station Adventure,1,2024-03-05,7.00,live-buyer\n"
    )
    mapping = tmp_path / "m.yml"
    mapping.write_text("orders:\n  unknown_references: placeholder\n")
    assert Importer(demo_engine).run({"orders": orders}, mapping).files[0].inserted == 1
    version, changes = repo.catalog_changes(start)
    [named] = [c.item for c in changes]
    assert named.title == "Cosmic Space Station Adventure" and version > start
    model.follow(changes, version=version)
    found = model.recommend([], text="a space station science fiction adventure", k=3)
    assert ids(found)[0] == named.id, found
