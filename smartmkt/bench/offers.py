"""``smartmkt bench offers``: the offer policy replayed on the demo store's last period.

The store's last H days (``purchase_horizon_days``) are the outcome window. Both models learn
from the purchases before it only: the purchase model scores every customer for the window,
the recommender picks each customer's top product. Every customer with a history then "visits"
once at the start of the window, in a seeded random order, and the policy decides (with its
daily budget, as if all visits fell on that day). An offer converts when the customer bought
the offered product, or anything, in the window.

Random targeting spends the same budget: customers in random order get the policy's nudge
discount on their top product until the policy's spend is reached; averaged over 20 draws.
Lift = the policy's conversion / random targeting's. This is an offline replay: the offers were
never shown, so conversions measure whom the policy picks, not what the discount caused.
Customers who opted out of marketing (their latest consent decision) visit in neither arm.

`smartmkt bench offers` runs on a scratch store loaded with the demo data for the run
(smartmkt.bench.scratch), never on the product's store, so orders placed through the chat do not
move its figures; the window is stated in the report. A window in which no visitor bought stops
with ``NoPositives``: a conversion rate or a lift measured on nobody is not a figure.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, select

from smartmkt.lifecycle.heldout import NoPositives
from smartmkt.offers.policy import (
    CustomerState,
    OfferPolicy,
    ProductOffered,
    decide_offer,
    discount_cents,
)
from smartmkt.predict.history import Window, purchase_days
from smartmkt.predict.scoring import fit_until, store_cutoff
from smartmkt.predict.train import examples
from smartmkt.recommend.recommender import Recommender
from smartmkt.recommend.sequential import SequenceConfig
from smartmkt.store.db import session_scope
from smartmkt.store.models import Order
from smartmkt.store.repository import StoreRepository

RANDOM_DRAWS = 20


def _orders(engine: Engine) -> list[tuple[int, int, datetime, int]]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(Order.customer_id, Order.product_id, Order.ordered_at, Order.amount_cents)
            .where(Order.customer_id.is_not(None))
            .order_by(Order.customer_id, Order.ordered_at, Order.id)
        ).all()
    return [(int(c or 0), int(p), t.replace(tzinfo=None), int(a)) for c, p, t, a in rows]


def _rates(
    offers: list[tuple[int, int, int]], bought_any: set[int], bought: dict[int, set[int]]
) -> dict[str, float]:
    if not offers:
        return {"offers": 0, "bought_offered_product": 0.0, "bought_anything": 0.0, "discount_spent": 0.0}
    return {
        "offers": len(offers),
        "bought_offered_product": round(sum(p in bought[c] for c, p, _ in offers) / len(offers), 4),
        "bought_anything": round(sum(c in bought_any for c, _, _ in offers) / len(offers), 4),
        "discount_spent": round(sum(d for _, _, d in offers) / 100, 2),
    }


def _window(cutoff: datetime, end: datetime) -> dict[str, Any]:
    """The replay window as the report states it: its first and last day, both included."""
    last = end - timedelta(days=1)
    return {"start": f"{cutoff:%Y-%m-%d}", "end": f"{last:%Y-%m-%d}", "days": (end - cutoff).days}


def run_offers_bench(
    engine: Engine,
    horizon_days: int,
    policy: OfferPolicy,
    seed: int = 11,
    sequence_config: SequenceConfig | None = None,
) -> dict[str, Any]:
    """The replay; ``sequence_config``: the recommender's transformer settings (default: the
    product's; a test of the replay's mechanics trains a quicker one)."""
    days = purchase_days(engine)
    end = store_cutoff(days)
    cutoff = end - timedelta(days=horizon_days)
    histories: dict[int, list[int]] = defaultdict(list)
    spend: dict[int, int] = defaultdict(int)
    bought: dict[int, set[int]] = defaultdict(set)
    for customer, product_id, at, amount in _orders(engine):
        if at < cutoff:
            histories[customer].append(product_id)
            spend[customer] += amount
        elif at < end:
            bought[customer].add(product_id)
    bought_any = {c for c, items in bought.items() if items}
    # Customers who opted out of marketing are never offered anything, by either arm.
    opted_out = StoreRepository(engine).opted_out_customer_ids()
    visitors = sorted(set(histories) - opted_out)
    window = _window(cutoff, end)
    buyers = len(bought_any & set(visitors))
    if not buyers:  # checked before any model is fitted: nothing would be measured
        raise NoPositives(
            f"no customer bought in the replay window {window['start']}..{window['end']} "
            f"({len(visitors)} visitors with earlier purchases): the offer policy's conversion "
            "and lift cannot be measured on it"
        )
    model = fit_until(days, cutoff)
    batch = examples(days, Window(cutoff, horizon_days / 7), with_labels=False)
    predicted = model.predict(batch)
    scores = {
        int(c): (float(p), float(a), float(e))
        for c, p, a, e in zip(
            batch.customers,
            predicted["p_any"],
            predicted["alive"],
            predicted["expected_purchases"],
            strict=True,
        )
    }
    catalog = StoreRepository(engine).all_products()
    prices = {p.id: p for p in catalog}
    recommender = Recommender.fit(catalog, list(histories.values()), sequence_config=sequence_config)
    random.Random(seed).shuffle(visitors)
    top = {c: recommender.recommend(histories[c], k=1) for c in visitors}
    made: list[tuple[int, int, int]] = []
    rules: dict[str, int] = defaultdict(int)
    used = 0
    for customer in visitors:
        if not top[customer]:
            continue
        product = prices[top[customer][0].product_id]
        p_purchase, p_alive, expected = scores.get(customer, (None, None, None))
        state = CustomerState(len(histories[customer]), spend[customer], p_purchase, p_alive, expected)
        decision = decide_offer(
            state, ProductOffered(product.price_cents, tuple(product.genres)), used, policy
        )
        if decision is None:
            continue
        discount = decision.discount_cents(product.price_cents)
        used += discount
        rules[decision.rule] += 1
        made.append((customer, product.id, discount))
    chosen = _rates(made, bought_any, bought)
    draws = []
    for draw in range(RANDOM_DRAWS):
        order = [c for c in visitors if top[c]]
        random.Random(seed + 1 + draw).shuffle(order)
        spent, offers = 0, []
        for customer in order:
            product = prices[top[customer][0].product_id]
            discount = discount_cents(product.price_cents, policy.nudge_pct)
            if spent + discount > used:
                break
            spent += discount
            offers.append((customer, product.id, discount))
        draws.append(_rates(offers, bought_any, bought))
    random_rates = {k: round(float(np.mean([d[k] for d in draws])), 4) for k in draws[0]}
    return {
        "dataset": "demo store (MovieLens-100k)",
        "window": window,
        "customers": len(visitors),
        "opted_out_skipped": len(opted_out & set(histories)),
        "customers_buying_in_window": buyers,
        "policy": {**chosen, "by_rule": dict(rules)},
        "random_same_budget": random_rates,
        "lift": {
            k: round(chosen[k] / random_rates[k], 3) if random_rates[k] else None
            for k in ("bought_offered_product", "bought_anything")
        },
        "budget": policy.daily_budget_cents / 100,
        "recommender_epochs": (sequence_config or SequenceConfig()).epochs,
    }
