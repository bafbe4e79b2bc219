"""Purchase prediction: the closed forms, the RFM summary, the threshold rule, training on the
store, and the CDNOW benchmark's shape (the figures themselves are in docs/benchmarks.md)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from sqlalchemy import Engine, func, select

from smartmkt.predict.evaluate import best_f1_threshold
from smartmkt.predict.history import Window, labels, rfm
from smartmkt.predict.model import expected_purchases, probability_any


def test_closed_forms_match_a_simulation() -> None:
    """A customer alive with probability a buys at rate lam until an Exp(mu) lifetime ends."""
    lam, mu, alive, horizon = 0.3, 0.05, 0.7, 20.0
    rng = np.random.default_rng(0)
    n = 200_000
    is_alive = rng.random(n) < alive
    lifetime = rng.exponential(1 / mu, n)
    active = np.where(is_alive, np.minimum(lifetime, horizon), 0.0)
    counts = rng.poisson(lam * active)
    params = {"lam": torch.tensor([lam]), "mu": torch.tensor([mu]), "alive": torch.tensor([alive])}
    h = torch.tensor([horizon])
    assert float(expected_purchases(params, h)) == pytest.approx(counts.mean(), rel=0.02)
    assert float(probability_any(params, h)) == pytest.approx((counts > 0).mean(), rel=0.02)


def test_rfm_and_labels_count_purchase_days() -> None:
    days = pl.DataFrame(
        {
            "customer_id": [1, 1, 1, 2, 1],
            "day": [
                date(1997, 1, 1),
                date(1997, 1, 15),
                date(1997, 2, 12),
                date(1997, 2, 1),
                date(1997, 3, 5),
            ],
            "quantity": [1, 2, 1, 1, 1],
            "amount": [10.0, 20.0, 30.0, 5.0, 8.0],
        }
    )
    summary = rfm(days, datetime(1997, 3, 1))
    one = summary.filter(pl.col("customer_id") == 1).row(0, named=True)
    assert one["frequency"] == 2  # three purchase days before the cutoff
    assert one["recency"] == pytest.approx(6.0)  # 1 Jan .. 12 Feb
    assert one["T"] == pytest.approx(59 / 7)
    assert one["monetary"] == pytest.approx(20.0)
    window = labels(days, summary["customer_id"], Window(datetime(1997, 3, 1), 4.0))
    assert window["purchases"].to_list() == [1, 0]


def test_best_f1_threshold_is_the_brute_force_one() -> None:
    rng = np.random.default_rng(1)
    score = rng.random(300).round(2)
    bought = rng.random(300) < score
    best = max(
        sorted(set(score)),
        key=lambda t: (
            2 * ((score >= t) & bought).sum() / ((score >= t).sum() + bought.sum()),
            -t,
        ),
    )
    assert best_f1_threshold(score, bought) == pytest.approx(best)


def test_train_purchase_scores_every_customer(demo_engine: Engine, tmp_path: Path, base_settings) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.lifecycle.kinds import PURCHASE
    from smartmkt.lifecycle.training import train
    from smartmkt.store.db import session_scope
    from smartmkt.store.models import Customer, CustomerScore

    settings = base_settings.model_copy(update={"models_dir": tmp_path / "models", "model_cache": ""})
    first = train(PURCHASE, settings, demo_engine)
    assert not first.skipped
    with session_scope(demo_engine) as s:
        customers = s.scalar(select(func.count()).select_from(Customer))
        scores = s.scalars(select(CustomerScore)).all()
        assert len(scores) == customers == 943
        assert all(0 <= c.p_purchase <= 1 and c.expected_purchases >= 0 for c in scores)
        assert {c.model_version for c in scores} == {first.fingerprint}
        spread = sorted(c.p_purchase for c in scores)
        assert spread[-1] - spread[0] > 0.2  # customers are told apart
        before = {c.customer_id: c.p_purchase for c in scores}
    again = train(PURCHASE, settings, demo_engine)
    assert again.skipped  # same store, same code: the model is reused and the store rescored
    with session_scope(demo_engine) as s:
        after = {c.customer_id: c.p_purchase for c in s.scalars(select(CustomerScore))}
    assert after == pytest.approx(before)


def test_bench_purchase_reports_every_model(base_settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One epoch and one configuration per tuned model, so it stays quick: checks the benchmark
    runs the real peers on the real split, reports every figure and writes its plots."""
    from PIL import Image

    from smartmkt.bench.purchase import ensure_cdnow, run_purchase_bench
    from smartmkt.predict.gbm import GRID

    report = run_purchase_bench(
        ensure_cdnow(base_settings.var_dir),
        reports_dir=tmp_path / "reports",
        gru_grid=[{"epochs": 1, "hidden": 16}, {"epochs": 1, "hidden": 32}],
        lightgbm_grid=[{**GRID[0], "n_estimators": 40}],
    )
    assert report["dataset"] == "cdnow" and report["customers"] == 23_570
    assert set(report["models"]) == {"smartmkt", "bgnbd", "paretonbd", "rfm_logreg", "lightgbm"}
    for name, m in report["models"].items():
        assert 0.6 < m["auc"] < 1, name
        assert 0 <= m["precision"] <= 1 and 0 <= m["recall"] <= 1 and 0 <= m["f1"] <= 1, name
        assert m["mae"] > 0 and m["rmse"] >= m["mae"], name
        assert 0 < m["brier"] < 0.25, name  # better than always saying 50%
        assert -1 < m["aggregate_error"] < 1, name
    chosen = report["chosen_configurations"]
    assert chosen["smartmkt"]["model"] in ({"epochs": 1, "hidden": 16}, {"epochs": 1, "hidden": 32})
    assert set(chosen["lightgbm"]) == {"p_any", "counts"}
    assert len(report["models"]["smartmkt"]["tuning"]["grid"]) == 2
    assert report["holdout_buyers"] < report["customers"]
    assert report["window"] == {"start": "1997-10-01", "end": "1998-06-30", "days": 273}
    assert set(report["plots"]) == {"reliability", "tracking"}
    for path in report["plots"].values():
        assert Path(path).parent == tmp_path / "reports"
        with Image.open(path) as image:
            assert image.format == "PNG"
