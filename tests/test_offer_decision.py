"""One offer decision, one read, one transaction (StoreRepository.decide_offer).

The budget and the per-customer cap are checked in the transaction that writes the offer, under
the offers' decision lock, so deciders racing on real threads (each with its own connection, as
replicas would be) never overspend; on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import Engine, event, func, select

from smartmkt.offers.policy import CustomerState, OfferPolicy, ProductOffered, decide_offer
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.models import Offer, Product
from smartmkt.store.repository import OfferContext, StoreRepository

PRICE_CENTS = 1_000  # a welcome offer at 15% costs 150 cents


T = TypeVar("T")


def _policy(**limits: int) -> OfferPolicy:
    return OfferPolicy.from_mapping({"discounts": {"welcome": 15}, "limits": limits})


def _welcome(policy: OfferPolicy, product_id: int) -> object:
    """The assistant's decide callback for a new customer (no purchases: a welcome offer)."""

    def decide(context: OfferContext):  # type: ignore[no-untyped-def]
        state = CustomerState(
            purchases=0,
            spend_cents=0,
            opted_out=context.opted_out,
            offers_last_day=context.offers_last_day,
        )
        return decide_offer(state, ProductOffered(PRICE_CENTS), context.budget_used_cents, policy)

    return decide


@pytest.fixture
def catalog(store_url: str) -> Iterator[str]:
    """An empty store on SQLite or PostgreSQL with ten products at PRICE_CENTS."""
    engine = make_engine(store_url)
    with session_scope(engine) as session:
        for i in range(1, 11):
            session.add(Product(id=i, external_ref=f"p{i}", title=f"Title {i}", price_cents=PRICE_CENTS))
    engine.dispose()
    yield store_url


def _at_once(url: str, acts: list[Callable[[Engine], T]]) -> list[T]:
    """Each of ``acts`` on its own thread with its own engine (as replicas have), released
    together; their results in their order. Raises what any of them raised."""
    start = threading.Barrier(len(acts))
    results: list[T | None] = [None] * len(acts)
    errors: list[BaseException] = []

    def run(i: int, act: Callable[[Engine], T]) -> None:
        engine = make_engine(url)
        try:
            start.wait()
            results[i] = act(engine)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(i, act)) for i, act in enumerate(acts)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results  # type: ignore[return-value]  # every act returned


def _race(url: str, deciders: list[tuple[str, int]], policy: OfferPolicy) -> list[bool]:
    """Each (customer, product) decides on its own thread and engine, all released at once;
    whether each made an offer, in the deciders' order (a lost race raises, it never passes as
    "no offer")."""

    def decider(customer: str, product_id: int) -> Callable[[Engine], bool]:
        def decide(engine: Engine) -> bool:
            offer = StoreRepository(engine).decide_offer(
                customer, product_id, _welcome(policy, product_id), "text", timedelta(days=7)
            )
            return offer is not None

        return decide

    return _at_once(url, [decider(customer, product_id) for customer, product_id in deciders])


def _offers(url: str) -> tuple[int, int]:
    engine = make_engine(url)
    with session_scope(engine) as session:
        count = session.scalar(select(func.count()).select_from(Offer)) or 0
        cost = session.scalar(
            select(func.sum(Product.price_cents * Offer.percent_off))
            .select_from(Offer)
            .join(Product, Offer.product_id == Product.id)
        )
    engine.dispose()
    return count, round((cost or 0) / 100)


def test_racing_deciders_never_overspend_the_days_budget(catalog: str) -> None:
    policy = _policy(daily_budget=5)  # 500 cents: three welcome offers of 150, not four
    made = _race(catalog, [(f"new-{i}", 1 + i % 10) for i in range(8)], policy)
    count, cost = _offers(catalog)
    assert sum(made) == count == 3 and cost == 450 <= policy.daily_budget_cents


def test_racing_deciders_never_pass_a_customers_daily_cap(catalog: str) -> None:
    policy = _policy(daily_budget=1000, max_offers_per_customer_per_day=2)
    made = _race(catalog, [("same-customer", product) for product in range(1, 7)], policy)
    assert sum(made) == _offers(catalog)[0] == 2


def test_racing_deciders_make_one_offer_per_customer_and_product(catalog: str) -> None:
    """Two tabs (or replicas) deciding on the same title at once: one offer, shown to both."""
    policy = _policy(daily_budget=1000, max_offers_per_customer_per_day=10)
    made = _race(catalog, [("same-customer", 1)] * 6, policy)
    assert all(made) and _offers(catalog)[0] == 1


def test_the_policy_rules_on_opt_out_from_the_context_read(catalog: str) -> None:
    engine = make_engine(catalog)
    repo, policy = StoreRepository(engine), _policy()
    seen: list[OfferContext] = []

    def decide(context: OfferContext):  # type: ignore[no-untyped-def]
        seen.append(context)
        return _welcome(policy, 1)(context)  # type: ignore[operator]

    first = repo.decide_offer("c1", 1, decide, "text", timedelta(days=7))
    assert first is not None and seen[-1].budget_used_cents == 0 and not seen[-1].opted_out
    again = repo.decide_offer("c1", 1, decide, "text", timedelta(days=7))
    assert again == first and len(seen) == 1  # open on this product: shown again, not decided
    repo.opt_out("c1", "text")
    assert repo.decide_offer("c1", 2, decide, "text", timedelta(days=7)) is None
    assert seen[-1].opted_out and seen[-1].open_offers == ()  # withdrawn, and never shown
    assert seen[-1].budget_used_cents == 150 and seen[-1].offers_last_day == 1
    assert _offers(catalog)[0] == 1
    engine.dispose()


def test_a_recommendation_turn_decides_its_offer_in_one_transaction(
    demo_engine: Engine, served_recommender
) -> None:  # type: ignore[no-untyped-def]
    """The turn reads the history, the picks' rows, then decides and writes the offer: three
    transactions (it was eight: opt-out, open offers, scores, cap and budget each read apart
    from the write)."""
    from smartmkt.assistant import ShopAssistant

    shop = ShopAssistant(demo_engine, served_recommender)
    transactions: list[str] = []
    listener = lambda conn: transactions.append("begin")  # noqa: E731
    event.listen(demo_engine, "begin", listener)
    try:
        reply = shop.recommend("new-customer-7")
    finally:
        event.remove(demo_engine, "begin", listener)
    assert reply.offer is not None and reply.offer.percent_off == shop.offer_policy.welcome_pct
    assert len(transactions) == 3


def test_racing_login_attempts_on_several_replicas_never_check_more_passwords_than_the_limit(
    store_url: str,
) -> None:
    """12 attempts for one e-mail and address at once, each on its own engine (as app replicas
    are): exactly the limit (5) may check a password, the rest are told to wait. Without the
    logins' decision lock every attempt read 0 failures and went on."""
    from smartmkt.security import login_limit

    key = login_limit.login_key("someone@shop.example", "203.0.113.7")
    attempt = lambda e: login_limit.take_attempt(e, key, max_failures=5, window_s=900)  # noqa: E731
    waits = _at_once(store_url, [attempt] * 12)
    assert sorted(w == 0 for w in waits).count(True) == 5, waits
    assert all(0 < w <= 901 for w in waits if w), waits


def test_replicas_creating_the_same_new_customer_at_once_make_one(store_url: str) -> None:
    """8 threads, each on its own engine, record the same new customer's opt-out at once: all
    succeed (none fails on the unique customer reference) and there is one customer."""
    from smartmkt.store.models import Customer

    _at_once(store_url, [lambda e: StoreRepository(e).opt_out("new-customer-77", "text")] * 8)
    engine = make_engine(store_url)
    with session_scope(engine) as session:
        refs = session.scalars(
            select(Customer.external_ref).where(Customer.external_ref == "new-customer-77")
        ).all()
    engine.dispose()
    assert refs == ["new-customer-77"]
