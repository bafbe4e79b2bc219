"""The demo store's clock (issue 15): MovieLens ends in 1998, the product lives today. The demo's
history is moved by whole weeks, once, so its last purchase falls in the week before loading;
benchmarks read a scratch store of their own; a held-out window without a single positive stops
what would measure on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, func, select

from smartmkt.data.demo import IMPORTED, DemoShift, demo_shift, load_demo
from smartmkt.store.clock import as_utc
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.migrate import upgrade
from smartmkt.store.models import Customer, DemoClock, Order, Product

ROOT = Path(__file__).resolve().parent.parent
SMARTMKT = Path(sys.executable).parent / "smartmkt"
SOURCE_LAST_DAY = date(1998, 4, 22)  # MovieLens-100k's last rating (a Wednesday)
SOURCE_FIRST_DAY = date(1997, 9, 20)
SOURCE_SIGN_UP = date(1997, 9, 1)  # movielens.yml's constant created_at


def _span(engine: Engine) -> tuple[datetime, datetime, int]:
    with session_scope(engine) as s:
        first, last, n = s.execute(
            select(func.min(Order.ordered_at), func.max(Order.ordered_at), func.count(Order.id))
        ).one()
    return as_utc(first), as_utc(last), n


def _check_moved(engine: Engine, shift: DemoShift, today: date) -> None:
    first, last, n = _span(engine)
    assert n == 100_000
    assert shift.days % 7 == 0 and shift.source_last_day == SOURCE_LAST_DAY
    assert last.date() == shift.last_day == SOURCE_LAST_DAY + timedelta(days=shift.days)
    assert 1 <= (today - last.date()).days <= 7  # in the week before loading
    assert last.weekday() == SOURCE_LAST_DAY.weekday()  # weekdays kept
    assert first.date() == SOURCE_FIRST_DAY + timedelta(days=shift.days)  # every gap kept
    with session_scope(engine) as s:
        signed_up = {as_utc(t).date() for t in s.scalars(select(Customer.created_at))}
    assert signed_up == {SOURCE_SIGN_UP + timedelta(days=shift.days)}


def test_the_demo_store_is_moved_to_the_week_before_loading(demo_engine: Engine) -> None:
    """conftest loads the demo today: its last purchase is in the week before, on a Wednesday."""
    shift = demo_shift(demo_engine)
    assert shift is not None
    _check_moved(demo_engine, shift, as_utc(shift.shifted_at).date())


def test_loading_on_a_thursday_puts_the_last_purchase_on_yesterday(tmp_path: Path) -> None:
    """Then a second load, on a later day, moves nothing and adds nothing: the shift is chosen once."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    wheels = ROOT / "var" / "cache" / "wheels"
    thursday = date(2027, 3, 4)
    counts = load_demo(engine, wheels, today=thursday)
    assert counts.shift is not None and counts.shift.last_day == date(2027, 3, 3)
    _check_moved(engine, counts.shift, thursday)
    before = _span(engine)
    later = load_demo(engine, wheels, today=thursday + timedelta(days=40))
    assert later.shift == counts.shift and later.orders == counts.orders == 100_000
    assert _span(engine) == before
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(DemoClock)) == 1
    engine.dispose()


def test_a_store_loaded_before_the_clock_existed_is_moved_once_in_place(demo_engine: Engine) -> None:
    """A 1998 store from an earlier version (no shift stored): the next load moves the imported
    history, not the orders placed through the chat since."""
    from smartmkt.data.demo import _move

    shift = demo_shift(demo_engine)
    assert shift is not None
    with session_scope(demo_engine) as s:  # back to the shipped dates, as an earlier version left it
        back = timedelta(days=-shift.days)
        _move(s, Order.ordered_at, Order.channel == IMPORTED, back)
        _move(s, Customer.created_at, Customer.source == IMPORTED, back)
        s.execute(delete(DemoClock))
        product = s.scalars(select(Product).limit(1)).one()
        chat_day = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
        s.add(
            Order(
                customer_id=42,
                product_id=product.id,
                unit_price_cents=product.price_cents,
                amount_cents=product.price_cents,
                ordered_at=chat_day,
                channel="text",
            )
        )
    today = date(2026, 12, 10)
    moved = load_demo(demo_engine, ROOT / "var" / "cache" / "wheels", today=today)
    assert moved.shift is not None and moved.shift.last_day == date(2026, 12, 9)  # a Wednesday
    with session_scope(demo_engine) as s:
        chat = s.scalars(select(Order.ordered_at).where(Order.channel == "text")).one()
        last_imported = s.scalar(select(func.max(Order.ordered_at)).where(Order.channel == IMPORTED))
    assert as_utc(chat) == chat_day
    assert as_utc(last_imported).date() == date(2026, 12, 9)


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SMARTMKT), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=600,
    )


def test_load_demo_prints_and_reports_the_shift(tmp_path: Path) -> None:
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{tmp_path / 'store.db'}"}
    first = _cli("data", "load-demo", "--json", env=env)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    today = datetime.now(UTC).date()
    assert report["orders"] == 100_000 and report["shift"]["source_last_purchase"] == "1998-04-22"
    last = date.fromisoformat(report["shift"]["last_purchase"])
    assert report["shift"]["days"] == (last - SOURCE_LAST_DAY).days and 1 <= (today - last).days <= 7
    again = _cli("data", "load-demo", env=env)
    assert again.returncode == 0, again.stderr
    assert f"moved +{report['shift']['days']:,} days" in again.stderr
    assert f"1998-04-22 -> {last}" in again.stderr


# --- no positives, no figure -------------------------------------------------------------------
def _order_by_a_new_customer(engine: Engine) -> None:
    """An order 90 days after the demo's last one, by a customer with no earlier purchase: the
    store's latest held-out window then holds no buyer the models could have been asked about."""
    shift = demo_shift(engine)
    assert shift is not None
    at = datetime.combine(shift.last_day, datetime.min.time(), UTC) + timedelta(days=90)
    with session_scope(engine) as s:
        customer = Customer(external_ref="newcomer", created_at=at, source="chat")
        product = s.scalars(select(Product).limit(1)).one()
        s.add(customer)
        s.flush()
        s.add(
            Order(
                customer_id=customer.id,
                product_id=product.id,
                unit_price_cents=product.price_cents,
                amount_cents=product.price_cents,
                ordered_at=at,
                channel="text",
            )
        )


def test_a_held_out_window_without_buyers_stops_the_bench_and_the_evaluation(
    demo_engine: Engine, base_settings
) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.bench.offers import run_offers_bench
    from smartmkt.lifecycle.evaluation import evaluate_purchase
    from smartmkt.lifecycle.heldout import NoPositives
    from smartmkt.offers.policy import OfferPolicy
    from smartmkt.store import model_registry

    _order_by_a_new_customer(demo_engine)
    with pytest.raises(NoPositives, match="no customer bought in the replay window"):
        run_offers_bench(demo_engine, 30, OfferPolicy.load(None))
    served = model_registry.served_path(base_settings.models_dir, "purchase")
    with pytest.raises(NoPositives, match="has no positive example"):
        evaluate_purchase(base_settings, demo_engine, served)


@pytest.fixture
def store_without_buyers(demo_db: Path) -> dict[str, str]:
    """The environment of a product whose store's latest window has no buyer."""
    engine = make_engine(f"sqlite:///{demo_db}")
    _order_by_a_new_customer(engine)
    engine.dispose()
    return {"SMARTMKT_DATABASE_URL": f"sqlite:///{demo_db}"}


def test_training_on_a_window_without_buyers_exits_non_zero(
    store_without_buyers: dict[str, str], tmp_path: Path
) -> None:
    models = {"SMARTMKT_MODELS_DIR": str(tmp_path / "models"), "SMARTMKT_MODEL_CACHE": ""}
    env = {**store_without_buyers, **models}
    result = _cli("train", "purchase", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "purchase: the purchase model's held-out window" in result.stderr
    assert "has no positive example" in result.stderr and "the served model stays" in result.stderr
    assert not (tmp_path / "models" / "manifest.json").exists()  # nothing was promoted


def test_bench_offers_never_reads_the_products_store(store_without_buyers: dict[str, str]) -> None:
    """The product's store here would stop the bench (its latest window has no buyer); the bench
    loads its own scratch store and measures the demo's last 30 days (with a recommender trained
    for 5 epochs: the replay's figures are not what this checks)."""
    result = _cli("bench", "offers", "--json", "--recommender-epochs", "5", env=store_without_buyers)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    end = date.fromisoformat(report["window"]["end"])
    assert 1 <= (datetime.now(UTC).date() - end).days <= 7 and end.weekday() == SOURCE_LAST_DAY.weekday()
    assert date.fromisoformat(report["window"]["start"]) == end - timedelta(days=29)
    assert report["customers_buying_in_window"] > 30 and report["lift"]["bought_anything"] is not None
    assert report["recommender_epochs"] == 5


def test_the_clock_moves_the_same_on_each_engine(store_url: str) -> None:
    """SQLite keeps timestamps as text, PostgreSQL as timestamptz: the shift is the same on both."""
    engine = make_engine(store_url)
    thursday = date(2027, 3, 4)
    counts = load_demo(engine, ROOT / "var" / "cache" / "wheels", today=thursday)
    assert counts.shift is not None and counts.shift.last_day == date(2027, 3, 3)
    _check_moved(engine, counts.shift, thursday)
    engine.dispose()
