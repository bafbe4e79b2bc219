"""The offer policy: each rule on its own, the YAML file, and the assistant using both models."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from smartmkt.offers.policy import (
    DEFAULT_POLICY,
    CustomerState,
    OfferPolicy,
    PolicyError,
    ProductOffered,
    decide_offer,
)

POLICY = OfferPolicy.load()
PRODUCT = ProductOffered(price_cents=1000, genres=("Comedy",), recommendation_score=2.5)


def decide(budget_used: int = 0, product: ProductOffered = PRODUCT, **customer):  # type: ignore[no-untyped-def]
    state = {"purchases": 10, "spend_cents": 10_000, "p_purchase": 0.4, "p_alive": 0.9, **customer}
    return decide_offer(CustomerState(**state), product, budget_used, POLICY)


def test_the_shipped_policy_file_is_the_documented_one() -> None:
    assert DEFAULT_POLICY.name == "policy.yml"
    assert (POLICY.welcome_pct, POLICY.nudge_pct, POLICY.win_back_pct) == (15, 10, 20)
    assert (POLICY.sure_from, POLICY.undecided_from, POLICY.lapsing_below) == (0.8, 0.1, 0.5)
    assert (POLICY.daily_budget_cents, POLICY.max_offers_per_day, POLICY.expiry_days) == (50_000, 3, 7)
    assert POLICY.win_back_min_spend_cents == 100_000


def test_opted_out_capped_and_ineligible_get_nothing() -> None:
    assert decide(opted_out=True) is None
    assert decide(offers_last_day=POLICY.max_offers_per_day) is None
    strict = OfferPolicy.from_mapping({"eligible": {"min_price": 20, "exclude_categories": ["Horror"]}})
    state = CustomerState(purchases=1, spend_cents=100)
    assert decide_offer(state, PRODUCT, 0, strict) is None  # $10 < $20
    horror = ProductOffered(price_cents=5000, genres=("Horror",))
    assert decide_offer(state, horror, 0, strict) is None


def test_each_rule_uses_the_purchase_model() -> None:
    assert decide(purchases=0, spend_cents=0).rule == "welcome"
    assert decide(p_purchase=None, p_alive=None).rule == "nudge"  # not scored yet
    lapsing = decide(p_alive=0.2, spend_cents=200_000, p_purchase=0.05)
    assert (lapsing.rule, lapsing.percent_off) == ("win_back", 20)
    assert lapsing.scores["p_alive"] == 0.2 and lapsing.scores["spend"] == 2000.0
    assert decide(p_alive=0.2, spend_cents=1_000, p_purchase=0.05) is None  # lapsing, little value
    assert decide(p_alive=0.2, spend_cents=200_000, p_purchase=0.4).rule == "nudge"  # still undecided
    assert decide(p_purchase=0.9) is None  # buys anyway
    nudge = decide(p_purchase=0.4)
    assert (nudge.rule, nudge.percent_off) == ("nudge", 10)
    assert nudge.scores["p_purchase"] == 0.4 and nudge.scores["recommendation_score"] == 2.5
    assert decide(p_purchase=0.05) is None


def test_the_daily_budget_stops_offers() -> None:
    assert decide(budget_used=POLICY.daily_budget_cents - 100) is not None  # 10% of $10 fits
    assert decide(budget_used=POLICY.daily_budget_cents - 99) is None


def test_bad_policy_files_are_refused_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "p.yml"
    bad.write_text("discounts: {nudge: 150}\n")
    with pytest.raises(PolicyError, match="between 1 and 99"):
        OfferPolicy.load(bad)
    bad.write_text("thresholds: {sure_from: 0.2, undecided_from: 0.5}\n")
    with pytest.raises(PolicyError, match="undecided_from <= sure_from"):
        OfferPolicy.load(bad)
    bad.write_text("surprise: 1\n")
    with pytest.raises(PolicyError, match="top-level keys"):
        OfferPolicy.load(bad)
    with pytest.raises(PolicyError, match="cannot read"):
        OfferPolicy.load(tmp_path / "missing.yml")


def _score(engine: Engine, customer_ref: str, p_purchase: float, p_alive: float) -> None:
    from smartmkt.store.clock import utcnow
    from smartmkt.store.db import session_scope
    from smartmkt.store.models import Customer, CustomerScore

    with session_scope(engine) as s:
        customer = s.scalars(select(Customer).where(Customer.external_ref == customer_ref)).one()
        s.merge(
            CustomerScore(
                customer_id=customer.id,
                p_purchase=p_purchase,
                expected_purchases=1.0,
                expected_spend_cents=1000,
                p_alive=p_alive,
                horizon_days=30,
                model_version="test",
                scored_at=utcnow(),
            )
        )


def test_the_assistant_offers_by_the_purchase_score(demo_engine: Engine, served_recommender) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.assistant import ShopAssistant
    from smartmkt.store.db import session_scope
    from smartmkt.store.models import Offer

    shop = ShopAssistant(demo_engine, served_recommender)
    _score(demo_engine, "42", p_purchase=0.95, p_alive=0.99)
    assert shop.recommend("42").offer is None  # would buy anyway
    _score(demo_engine, "42", p_purchase=0.3, p_alive=0.9)
    offer = shop.recommend("42").offer
    assert offer is not None and offer.percent_off == 10
    with session_scope(demo_engine) as s:
        row = s.get(Offer, offer.id)
        assert row is not None and row.rule == "nudge" and row.scores["p_purchase"] == 0.3
        assert "P(purchase) 0.30" in row.reason


def test_bench_offers_replays_within_the_budget(demo_engine: Engine) -> None:
    from smartmkt.bench.offers import run_offers_bench
    from smartmkt.data.demo import demo_shift
    from smartmkt.store.repository import StoreRepository

    repo = StoreRepository(demo_engine)
    for customer in ("1", "2", "3"):  # opted out: neither arm of the replay visits them
        repo.opt_out(customer, "text")
    from smartmkt.recommend.sequential import SequenceConfig

    # the replay's mechanics, not the recommender's quality: a transformer trained for 5 epochs
    report = run_offers_bench(demo_engine, 30, POLICY, sequence_config=SequenceConfig(epochs=5))
    assert report["opted_out_skipped"] == 3
    shift = demo_shift(demo_engine)  # the demo's moved clock: its last 30 days are the window
    assert shift is not None and report["window"]["end"] == shift.last_day.isoformat()
    assert report["window"]["start"] == (shift.last_day - timedelta(days=29)).isoformat()
    assert report["window"]["days"] == 30 and report["customers_buying_in_window"] >= 30
    chosen, rival = report["policy"], report["random_same_budget"]
    assert 0 < chosen["offers"] <= report["customers"]
    assert chosen["discount_spent"] <= report["budget"]
    assert rival["discount_spent"] <= chosen["discount_spent"] + 0.01  # the same budget
    assert set(chosen["by_rule"]) <= {"welcome", "nudge", "win_back"}
    assert 0 <= chosen["bought_anything"] <= 1 and report["lift"]["bought_anything"] > 0
