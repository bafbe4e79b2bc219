"""``smartmkt bench preferences``: do the titles a shopper gets satisfy everything they stated,
and are they still the shopper's own?

Requests: ``smartmkt.bench.shoppers.generate_requests`` (at least 300, a fixed seed, from the
catalog's real genres, prices and years), each with the constraints its words state.

Path: each request's text goes through the served NLU (``parse_batch``, what ``POST
/model/parse`` runs), then ``smartmkt.assistant.stated_request`` (the entities as the
conversation's slots, ``Preferences``, the words left to search) and ``ShopAssistant.recommend``:
what ``action_recommend`` does with a conversation's first message. A message the NLU does
not route to recommendations (``smartmkt.assistant.recommending``; e.g. ``nlu_fallback``) gets
no titles, as in a conversation. The generated constraints are never handed to the product
nor to the baseline: they only grade the answers.

Store and split: a scratch store with the demo data (``smartmkt.bench.scratch``); each
customer's latest 20% of purchases (``smartmkt.recommend.evaluate.temporal_split``) is held
out and deleted from the scratch store, so the assistant reads only what came before it. The
recommender is the served one when it learned from exactly this store (the same store
fingerprint, so the same training part), else one fitted here on the training part.

Each request is asked for one customer: drawn (seeded) among the customers with held-out
purchases, preferring those with a held-out purchase that satisfies the request.

Figures, per model:
- ``constraint_satisfaction_at_5``: over the requests for which the catalog holds at least 5
  titles the customer has not bought that satisfy every stated constraint, the share of the 5
  places of the reply (k=5, as the chat asks) taken by a title that satisfies every constraint.
  An empty place (fewer titles, or no recommendation at all) counts as not satisfying.
- ``personal_ndcg_at_10``: the same request asked for 10 titles; relevant = the customer's
  held-out purchases that satisfy every constraint; ndcg@10 with binary relevance
  (``smartmkt.recommend.evaluate.ndcg``: DCG of the 10 titles as listed, a title that breaks a
  constraint earning nothing, over the ideal DCG of min(10, relevant)); averaged over the
  requests whose customer has at least one relevant title.
- ``personal_ndcg_at_10_within_satisfying``: as above, after dropping the titles that break a
  constraint from the list (the order among satisfying titles alone).
Models: ``smartmkt`` (the path above) and ``filter_popularity`` (the same parsed preferences,
every genre required; the titles passing them that the customer has not bought, by how often
they were bought in the training part).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import Engine, delete, select

from smartmkt.assistant import ShopAssistant, StatedRequest, recommending, stated_request
from smartmkt.bench.shoppers import ShopperRequest, generate_requests
from smartmkt.catalog import CatalogItem
from smartmkt.lifecycle.heldout import NoPositives
from smartmkt.offers.policy import OfferPolicy
from smartmkt.recommend.evaluate import HOLDOUT_SHARE, ndcg, temporal_split
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.recommender import Recommender
from smartmkt.store import model_registry
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, Order
from smartmkt.store.repository import StoreRepository
from smartmkt.store.training_data import purchase_histories, store_fingerprint

K_SHOWN = 5
K_RANKED = 10
MIN_REQUESTS = 300
Progress = Callable[[str, int, int], None]


class Parser(Protocol):
    def parse_batch(self, texts: Sequence[str]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class Split:
    """The held-out part of the scratch store: per customer id, their ref, the products they
    bought before it, and the products held out."""

    refs: dict[int, str]
    train: dict[int, list[int]]
    test: dict[int, list[int]]


def hold_out(engine: Engine) -> Split:
    """Delete each customer's latest 20% of orders from ``engine`` (a scratch store) and return
    what was held out. What is left is what the assistant reads as their history."""
    orders = purchase_histories(engine, Order.id, Order.product_id)
    train, test = temporal_split(orders)
    if not test:
        raise NoPositives("no customer has two purchases: there is no held-out purchase to rank")
    held_ids = [order_id for held in test.values() for order_id, _ in held]
    with session_scope(engine) as session:
        for start in range(0, len(held_ids), 5000):
            session.execute(delete(Order).where(Order.id.in_(held_ids[start : start + 5000])))
        refs = {int(i): str(r) for i, r in session.execute(select(Customer.id, Customer.external_ref))}
    return Split(
        refs,
        {c: [p for _, p in bought] for c, bought in train.items()},
        {c: list(dict.fromkeys(p for _, p in held)) for c, held in test.items()},
    )


def recommender_for(
    engine: Engine, models_dir: Path, progress: Progress | None = None
) -> tuple[Recommender, str]:
    """The recommender to measure on ``engine`` (before ``hold_out``): the served one when it
    learned from this very store (its data fingerprint), else one fitted on the training part.
    Returns it and which it is."""
    fingerprint = store_fingerprint(engine)
    try:
        path = model_registry.served_path(models_dir, "recommender")
    except FileNotFoundError:
        path = None
    meta = model_registry.read_metadata(path) if path else None
    if path and meta and meta.data_fingerprint == fingerprint:
        return Recommender.load(path), f"served ({path.name}, trained on this store's training part)"
    train, _test = temporal_split(purchase_histories(engine))
    items = StoreRepository(engine).all_products()
    return Recommender.fit(items, list(train.values()), progress=progress), "fitted on the training part"


@dataclass(frozen=True)
class Asked:
    """One request as the bench scores it."""

    request: ShopperRequest
    customer: int
    satisfying: frozenset[int]  # catalog titles satisfying it that the customer has not bought
    relevant: tuple[int, ...]  # the customer's held-out purchases among them


def assign_customers(
    requests: Sequence[ShopperRequest], catalog: Sequence[CatalogItem], split: Split, seed: int
) -> list[Asked]:
    """A customer for each request (seeded): one with a held-out purchase satisfying it when
    there is one, else any customer with held-out purchases."""
    rng = random.Random(seed)
    customers = sorted(split.test)
    asked = []
    for request in requests:
        fits = {it.id for it in catalog if request.constraints.satisfied_by(it)}
        candidates = [c for c in customers if fits.intersection(split.test[c])]
        customer = rng.choice(candidates or customers)
        bought = set(split.train.get(customer, []))
        relevant = tuple(p for p in split.test[customer] if p in fits and p not in bought)
        asked.append(Asked(request, customer, frozenset(fits - bought), relevant))
    return asked


def filter_popularity(
    prefs: Preferences, catalog: Sequence[CatalogItem], popularity: Counter[int], bought: set[int], k: int
) -> list[int]:
    """The baseline: titles passing every stated preference (all genres, no refused genre, the
    price cap, the years, no horror for a child), not bought, most bought first."""
    excluded = set(prefs.effective_excluded)
    passing = [
        it.id
        for it in catalog
        if it.id not in bought
        and set(prefs.genres) <= set(it.genres)
        and not excluded & set(it.genres)
        and (prefs.price_max is None or it.price_cents <= round(prefs.price_max * 100))
        and (
            prefs.year_range is None or (it.year or 0) in range(prefs.year_range[0], prefs.year_range[1] + 1)
        )
    ]
    return sorted(passing, key=lambda p: (-popularity[p], p))[:k]


def _figures(
    asked: Sequence[Asked], shown: Sequence[list[int]], ranked: Sequence[list[int]]
) -> dict[str, Any]:
    satisfaction, ndcgs, within = [], [], []
    for a, top5, top10 in zip(asked, shown, ranked, strict=True):
        if len(a.satisfying) >= K_SHOWN:
            satisfaction.append(sum(p in a.satisfying for p in top5[:K_SHOWN]) / K_SHOWN)
        if a.relevant:
            ndcgs.append(ndcg(top10, list(a.relevant), K_RANKED))
            within.append(ndcg([p for p in top10 if p in a.satisfying], list(a.relevant), K_RANKED))
    return {
        "constraint_satisfaction_at_5": round(float(np.mean(satisfaction)), 4),
        "personal_ndcg_at_10": round(float(np.mean(ndcgs)), 4),
        "personal_ndcg_at_10_within_satisfying": round(float(np.mean(within)), 4),
        "requests_scored_satisfaction": len(satisfaction),
        "requests_scored_ndcg": len(ndcgs),
    }


def _read_exactly(prefs: Preferences, request: ShopperRequest) -> bool:
    """Whether the product understood every constraint the request's words state."""
    c = request.constraints
    return (
        set(prefs.genres) == set(c.genres)
        and set(prefs.excluded_genres) == set(c.excluded)
        and prefs.price_max == c.price_max
        and prefs.year_range == c.years
        and prefs.for_kids == c.for_kids
    )


def run_preferences_bench(
    engine: Engine,
    parser: Parser,
    recommender: Recommender,
    requests: int = 360,
    seed: int = 20,
    progress: Progress | None = None,
    recommender_source: str = "",
) -> dict[str, Any]:
    """Measure smartmkt and the baseline on ``requests`` generated shopper requests.

    ``engine`` is a scratch store with the data ``recommender`` learned from (its held-out part
    is deleted here); ``parser`` the NLU (``NLUParser``); ``seed`` fixes the requests and the
    customers asking; ``progress`` (label, done, total) follows the requests;
    ``recommender_source`` says in the report which recommender it is."""
    catalog = recommender.catalog()
    generated = generate_requests(catalog, requests, seed)
    split = hold_out(engine)
    asked = assign_customers(generated, catalog, split, seed)
    parses = parser.parse_batch([r.text for r in generated])
    answers = Answers(ShopAssistant(engine, recommender, OfferPolicy()), catalog, split)
    for n, (a, parse) in enumerate(zip(asked, parses, strict=True), start=1):
        answers.add(a, parse)
        if progress:
            progress("requests", n, len(asked))
    return {
        "requests": len(asked),
        "seed": seed,
        "split": f"temporal: each customer's last {HOLDOUT_SHARE:.0%} of purchases held out "
        f"({sum(len(t) for t in split.test.values())} purchases of {len(split.test)} customers)",
        "recommender": recommender_source,
        "nlu": {
            "routed_to_recommendations": round(answers.routed / len(asked), 4),
            "every_constraint_read": round(answers.read / len(asked), 4),
        },
        "requests_with_fewer_than_5_satisfying": sum(len(a.satisfying) < K_SHOWN for a in asked),
        "replies_with_close_matches": answers.with_close_matches,
        "models": {name: _figures(asked, answers.shown[name], answers.ranked[name]) for name in MODELS},
    }


MODELS = ("smartmkt", "filter_popularity")


class Answers:
    """What each model answered to each request, in order, and what the NLU made of them."""

    def __init__(self, assistant: ShopAssistant, catalog: Sequence[CatalogItem], split: Split) -> None:
        self.assistant, self.catalog, self.split = assistant, catalog, split
        self.popularity = Counter(p for bought in split.train.values() for p in bought)
        self.shown: dict[str, list[list[int]]] = {name: [] for name in MODELS}
        self.ranked: dict[str, list[list[int]]] = {name: [] for name in MODELS}
        self.routed = self.read = self.with_close_matches = 0

    def add(self, asked: Asked, parse: dict[str, Any]) -> None:
        """Answer one request as the chat would (and the baseline), from its parse only."""
        stated, ok = stated_request(parse), recommending(parse)
        self.routed += ok
        self.read += ok and _read_exactly(stated.preferences, asked.request)
        top5, top10, close = _ask(self.assistant, self.split.refs[asked.customer], stated, ok)
        self.with_close_matches += close
        bought = set(self.split.train.get(asked.customer, []))
        base = (
            filter_popularity(stated.preferences, self.catalog, self.popularity, bought, K_RANKED)
            if ok
            else []
        )
        for name, five, ten in (("smartmkt", top5, top10), ("filter_popularity", base[:K_SHOWN], base)):
            self.shown[name].append(five)
            self.ranked[name].append(ten)


def _ask(
    assistant: ShopAssistant, ref: str, stated: StatedRequest, ok: bool
) -> tuple[list[int], list[int], int]:
    """The reply's 5 titles, the 10 of the same request asked for 10, and whether the 5-title
    reply had to fill in with close matches (1) or not (0)."""
    if not ok:
        return [], [], 0
    like = assistant.find_product(stated.product) if stated.product else None
    replies = [
        assistant.recommend(
            ref, stated.preferences, text=None if like else stated.text, k=k, with_offer=False, like=like
        )
        for k in (K_SHOWN, K_RANKED)
    ]
    close = int(replies[0].close_matches > 0)
    return [p.id for p in replies[0].products], [p.id for p in replies[1].products], close
