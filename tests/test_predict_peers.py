"""The purchase benchmark's parts on small synthetic histories whose answer is known: the Brier
score, the BG/NBD P(buys at all), the LightGBM peer, tuning on the validation window only, and
the plots."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from smartmkt.predict.evaluate import brier_score, figures
from smartmkt.predict.history import Window, weekly_repeat_purchases
from smartmkt.predict.train import Examples, examples, training_windows

START = datetime(2020, 1, 1)


def synthetic_days(
    customers: int = 240, weeks: int = 40, seed: int = 3, dropout: bool = False
) -> pl.DataFrame:
    """Half the customers buy about weekly, half about every 10 weeks, all from week 0 (each
    buys on their first day, so everyone has a history); with ``dropout`` each stops buying on
    a random day."""
    rng = np.random.default_rng(seed)
    rows = []
    for cid in range(1, customers + 1):
        rate = 0.9 if cid % 2 else 0.1
        for d in range(int(rng.integers(7, weeks * 7)) if dropout else weeks * 7):
            if d == cid % 7 or rng.random() < rate / 7:
                rows.append((cid, date(2020, 1, 1) + timedelta(days=d), 1, float(rng.integers(5, 40))))
    frame = pl.DataFrame(rows, schema=["customer_id", "day", "quantity", "amount"], orient="row")
    return frame.unique(["customer_id", "day"]).sort("customer_id", "day")


def test_brier_score_is_the_mean_squared_error_of_the_probability() -> None:
    assert brier_score(np.array([1.0, 0.0, 0.5]), np.array([True, False, True])) == pytest.approx(0.25 / 3)
    assert brier_score(np.array([0.0, 1.0]), np.array([True, False])) == 1.0
    out = figures(np.array([0.9, 0.2]), np.array([2.0, 0.0]), np.array([3.0, 0.0]), 0.5, np.array([0.9, 0.2]))
    assert out["brier"] == pytest.approx((0.01 + 0.04) / 2)
    assert out["aggregate_error"] == pytest.approx(-1 / 3, abs=1e-4)
    assert "brier" not in figures(np.array([0.9, 0.2]), np.array([2.0, 0.0]), np.array([3.0, 0.0]), 0.5)


def test_bgnbd_probability_of_buying_matches_lifetimes_for_a_new_customer() -> None:
    """With no history yet (x = t_x = T = 0) the derived conditional P(X(t) > 0) must equal
    lifetimes' unconditional one; with history it stays below P(alive) and grows with t."""
    from smartmkt.predict.baselines import LifetimesModel

    model = LifetimesModel("bgnbd")
    model.fit(synthetic_days(customers=600, dropout=True), Window(START + timedelta(weeks=30), 10.0))
    assert model.fitter is not None
    zero = np.zeros(1)
    for t in (1.0, 10.0, 39.0):
        mine = model.probability_any(zero, zero, zero, t)
        theirs = 1 - model.fitter.probability_of_n_purchases_up_to_time(t, 0)
        assert float(mine[0]) == pytest.approx(float(theirs), rel=1e-6)
    frequency, recency, age = np.array([3.0, 3.0]), np.array([5.0, 20.0]), np.array([25.0, 25.0])
    short, long = (model.probability_any(frequency, recency, age, h) for h in (4.0, 39.0))
    alive = model.fitter.conditional_probability_alive(frequency, recency, age)
    assert (short < long).all() and (long <= alive + 1e-12).all()
    assert long[1] > long[0]  # a recent buyer is likelier to buy again


def _parts(days: pl.DataFrame, end: datetime) -> list[Examples]:
    return [examples(days, w) for w in training_windows(START, end, first_cutoff_weeks=4.0)]


def test_lightgbm_peer_tells_frequent_buyers_apart() -> None:
    from sklearn.metrics import roc_auc_score

    from smartmkt.predict.gbm import GRID, LightGbmPeer, tabular

    days = synthetic_days()
    cutoff = START + timedelta(weeks=30)
    parts = _parts(days, cutoff)
    peer = LightGbmPeer({**GRID[0], "n_estimators": 60, "min_child_samples": 10}, threads=1).fit(parts)
    held = examples(days, Window(cutoff, 10.0))
    assert tabular(held).shape == (len(held.customers), 7 + 16 * 4 + 1)
    predicted = peer.predict(held)
    assert ((predicted["p_any"] >= 0) & (predicted["p_any"] <= 1)).all()
    frequent = held.customers % 2 == 1
    assert roc_auc_score(frequent, predicted["expected_purchases"]) > 0.9
    assert (
        predicted["expected_purchases"][frequent].mean()
        > 3 * predicted["expected_purchases"][~frequent].mean()
    )
    assert abs(predicted["expected_purchases"].sum() / held.purchases.sum() - 1) < 0.35
    curve = peer.expected_curve(held, np.array([1.0, 5.0, 10.0]))
    assert curve[0] < curve[1] < curve[2]


def test_tuning_never_sees_purchases_after_the_validation_window() -> None:
    """The grid gets the same data whatever happens after the validation window: poisoning the
    later purchases changes nothing it is fitted or scored on, so nothing it chooses."""
    from smartmkt.predict.tuning import best, run_grid, validation_split

    days = synthetic_days(customers=80)
    window = Window(START + timedelta(weeks=20), 8.0)
    later = pl.col("day").cast(pl.Datetime("us")) >= pl.lit(window.end)
    poisoned = pl.concat(
        [
            days.filter(~later),
            days.filter(later).with_columns(pl.col("amount") * 1000),
            pl.DataFrame(  # a burst of purchases in the "holdout" by the rare buyers
                {
                    "customer_id": [2, 4, 6],
                    "day": [date(2020, 9, 1)] * 3,
                    "quantity": [9] * 3,
                    "amount": [1.0] * 3,
                }
            ),
        ]
    ).unique(["customer_id", "day"], keep="first")
    seen: list[float] = []

    def fit_predict(config: dict, train: list[Examples], validation: Examples) -> dict[str, np.ndarray]:
        seen.append(float(validation.purchases.sum()))
        level = float(np.concatenate([t.purchases for t in train]).mean()) * config["scale"]
        expected = np.full(len(validation.customers), level)
        return {"expected_purchases": expected, "p_any": np.clip(expected / 4, 0.01, 0.99)}

    grid = [{"scale": s} for s in (0.5, 1.0, 2.0)]
    clean = run_grid(grid, fit_predict, validation_split(days, START, window, first_cutoff_weeks=4.0))
    dirty = run_grid(grid, fit_predict, validation_split(poisoned, START, window, first_cutoff_weeks=4.0))
    assert [t.figures for t in clean] == [t.figures for t in dirty]
    assert best(clean, "deviance").config == best(dirty, "deviance").config
    split = validation_split(poisoned, START, window, first_cutoff_weeks=4.0)
    in_window = days.filter((pl.col("day").cast(pl.Datetime("us")) >= pl.lit(window.cutoff)) & ~later).height
    assert split.validation.purchases.sum() == in_window == seen[0]
    with pytest.raises(ValueError):
        run_grid([{"scale": 1.0}] * 13, fit_predict, split)


def _is_png(path: Path) -> bool:
    from PIL import Image

    with Image.open(path) as image:
        return image.format == "PNG" and image.size[0] > 300


def test_plots_are_written_as_png(tmp_path: Path) -> None:
    from smartmkt.predict.plots import reliability_plot, tracking_plot

    rng = np.random.default_rng(0)
    p = rng.random(500)
    bought = rng.random(500) < p
    models = {
        name: (bought, np.clip(p + shift, 0, 1)) for name, shift in (("a", 0.0), ("b", 0.1), ("c", -0.1))
    }
    reliability = reliability_plot(tmp_path / "r" / "reliability.png", "test", models)
    days = synthetic_days(customers=40)
    weekly = weekly_repeat_purchases(days, START, 40)
    assert weekly.sum() == days.height - 40  # every purchase day but each customer's first
    forecast = {"flat": np.cumsum(np.full(10, weekly[:30].mean()))}
    tracking = tracking_plot(tmp_path / "tracking.png", START, weekly, 30, forecast)
    assert _is_png(reliability) and _is_png(tracking)


def test_training_balances_the_level_on_its_own_windows() -> None:
    """After the level correction the model's total and share of buyers on its training windows
    match what happened (the network alone may be several percent off)."""
    from smartmkt.predict.train import fit_examples

    parts = _parts(synthetic_days(customers=200, dropout=True), START + timedelta(weeks=30))
    model = fit_examples(parts, epochs=2, threads=1)
    predicted = [model.predict(p) for p in parts]
    total = sum(float(p["expected_purchases"].sum()) for p in predicted)
    actual = sum(float(p.purchases.sum()) for p in parts)
    assert total == pytest.approx(actual, rel=0.03)
    buyers = sum(float(p["p_any"].sum()) for p in predicted)
    assert buyers == pytest.approx(sum(float((p.purchases > 0).sum()) for p in parts), rel=0.05)
