"""``smartmkt bench preferences``: the generated shopper requests, the held-out split, the
baseline and the report."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from smartmkt.bench.preferences import MIN_REQUESTS, filter_popularity, hold_out, run_preferences_bench
from smartmkt.bench.shoppers import ADULT_AUDIENCES, KID_AUDIENCES, Constraints, generate_requests
from smartmkt.catalog import CatalogItem, genres_in, parse_price, parse_year_range
from smartmkt.recommend.preferences import Preferences
from smartmkt.store.db import session_scope
from smartmkt.store.models import Order

_EXCLUSION = re.compile(r",? (?:but no|nothing with|no|without) (?P<refused>[a-z ]+?)(?: please)?$")
_PRICE = re.compile(r" (?:under|below|less than|for at most) (?P<amount>\S+(?: dollars| bucks)?)")


@pytest.fixture(scope="module")
def catalog(served_recommender: Any) -> list[CatalogItem]:
    return list(served_recommender.items)


def test_requests_are_deterministic_and_enough(catalog: list[CatalogItem]) -> None:
    requests = generate_requests(catalog)
    assert len(requests) >= MIN_REQUESTS
    assert requests == generate_requests(catalog)  # the same seed, the same requests
    assert [r.text for r in generate_requests(catalog, 50, seed=1)] != [r.text for r in requests[:50]]
    counts = Counter(len(r.constraints.genres) for r in requests)
    assert set(counts) == {1, 2, 3}
    texts = " ".join(r.text for r in requests)
    for compound in ("romantic comed", "animated musical", "sci-fi thriller"):
        assert compound in texts
    assert all(r.constraints.excluded for r in requests if " no " in f" {r.text} ")
    assert sum(r.constraints.price_max is not None for r in requests) > 50
    assert sum(r.constraints.years is not None for r in requests) > 50
    assert sum(r.constraints.for_kids for r in requests) > 20


def test_every_request_states_exactly_its_constraints(catalog: list[CatalogItem]) -> None:
    """Read back with the catalog's own vocabulary (not the NLU): the words say the constraints."""
    for request in generate_requests(catalog):
        c, text = request.constraints, request.text
        assert any(c.satisfied_by(it) for it in catalog), text  # the title it was drawn from
        audiences = [a for a in (*KID_AUDIENCES, *ADULT_AUDIENCES) if f"for {a}" in text]
        assert c.for_kids == any(a in KID_AUDIENCES for a in audiences), text
        for audience in audiences:
            text = text.replace(f"for {audience}", "")
        refused = _EXCLUSION.search(text)
        assert (refused is not None) == bool(c.excluded), text
        if refused:
            assert genres_in(refused["refused"]) == list(c.excluded), text
            text = text[: refused.start()]
        price = _PRICE.search(text)
        assert (price and parse_price(price["amount"])) == c.price_max, text
        assert parse_year_range(text) == c.years, text
        if price:
            text = text.replace(price.group(0), "")
        assert set(genres_in(text)) == set(c.genres), (request.text, genres_in(text))


def test_constraints_judge_every_part() -> None:
    item = CatalogItem(1, "Saddle Sores", 1990, ("Comedy", "Western"), 400)
    assert Constraints(("Comedy", "Western"), ("Horror",), 4.0, (1990, 1999), True).satisfied_by(item)
    assert not Constraints(("Comedy", "Romance")).satisfied_by(item)  # every genre, not either
    assert not Constraints(("Comedy",), excluded=("Western",)).satisfied_by(item)
    assert not Constraints(("Comedy",), price_max=3.99).satisfied_by(item)
    assert not Constraints(("Comedy",), years=(1980, 1989)).satisfied_by(item)
    scary = CatalogItem(2, "Ghost Town", 1990, ("Comedy", "Horror"), 400)
    assert not Constraints(("Comedy",), for_kids=True).satisfied_by(scary)


def test_the_baseline_filters_then_ranks_by_popularity() -> None:
    items = [
        CatalogItem(1, "A", 1990, ("Comedy", "Romance"), 500),
        CatalogItem(2, "B", 1991, ("Comedy", "Romance"), 900),
        CatalogItem(3, "C", 1992, ("Comedy",), 500),
        CatalogItem(4, "D", 1993, ("Comedy", "Romance", "Horror"), 500),
        CatalogItem(5, "E", 1994, ("Comedy", "Romance"), 500),
    ]
    popularity = Counter({1: 5, 2: 9, 3: 20, 4: 30, 5: 1})
    prefs = Preferences(genres=("Romance", "Comedy"))
    assert filter_popularity(prefs, items, popularity, bought=set(), k=10) == [4, 2, 1, 5]
    kids = Preferences(genres=("Romance", "Comedy"), price_max=6.0, recipient="my kids")
    assert filter_popularity(kids, items, popularity, bought={5}, k=10) == [1]


def test_hold_out_deletes_each_customers_latest_fifth(demo_engine: Engine) -> None:
    with session_scope(demo_engine) as session:
        before = session.scalar(select(func.count(Order.id)))
    split = hold_out(demo_engine)
    with session_scope(demo_engine) as session:
        after = session.scalar(select(func.count(Order.id)))
    held = sum(len(t) for t in split.test.values())
    assert before - after == held == 20_000  # MovieLens rates a title once per customer
    assert sum(len(t) for t in split.train.values()) == after
    assert not set(split.train[1]) & set(split.test[1])


def test_bench_report_on_a_small_run(
    demo_engine: Engine, served_parser: Any, served_recommender: Any
) -> None:
    report = run_preferences_bench(demo_engine, served_parser, served_recommender, requests=24)
    assert report["requests"] == 24 and report["seed"] == 20
    assert set(report["models"]) == {"smartmkt", "filter_popularity"}
    for figures in report["models"].values():
        assert set(figures) == {
            "constraint_satisfaction_at_5",
            "personal_ndcg_at_10",
            "personal_ndcg_at_10_within_satisfying",
            "requests_scored_satisfaction",
            "requests_scored_ndcg",
        }
        assert 0 <= figures["personal_ndcg_at_10"] <= figures["personal_ndcg_at_10_within_satisfying"] <= 1
        assert 0 < figures["requests_scored_satisfaction"] <= 24
    assert 0 < report["nlu"]["every_constraint_read"] <= report["nlu"]["routed_to_recommendations"] <= 1
    assert report["split"].startswith("temporal: each customer's last 20%")
