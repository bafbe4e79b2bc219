"""``smartmkt bench purchase``: purchase prediction on CDNOW against BG/NBD, Pareto/NBD, RFM
regression and LightGBM, on the standard split.

CDNOW_master.txt (23,570 customers, first purchases in Q1 1997) is loaded through the import
pipeline into its own store. Calibration: purchases up to 1997-09-30; holdout: 1997-10-01 to
1998-06-30 (39 weeks). Purchases are counted per customer-day.

The holdout's purchases are cut off before anything is fitted. Every model is fitted twice: on
the data before 1997-05-14, to choose on the purchases of 1997-05-14..09-30 (the validation
window) the threshold that maximizes its F1 (for "bought at all") and, for the GRU and LightGBM,
their configuration (a grid of at most 12, ``smartmkt.predict.tuning``); then on the whole
calibration period to predict the holdout, where that threshold is applied. BG/NBD and
Pareto/NBD rank by expected purchases; the classifiers by their probability. Every model's
P(buys at all) is judged by its Brier score; the reliability and tracking plots go to
``reports_dir``.

It reads its own CDNOW store (var/cdnow.db, loaded once), never the product's, so using the
product does not move its figures; the held-out window is stated in the report. A holdout without
a single buyer stops with ``NoPositives``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from smartmkt.lifecycle.heldout import NoPositives
from smartmkt.predict.baselines import LifetimesModel, RfmRegression
from smartmkt.predict.evaluate import best_f1_threshold, figures
from smartmkt.predict.gbm import GRID as GBM_GRID
from smartmkt.predict.gbm import LightGbmPeer
from smartmkt.predict.history import Window, labels, purchase_days, rfm, weekly_repeat_purchases
from smartmkt.predict.plots import reliability_plot, tracking_plot
from smartmkt.predict.train import (
    Examples,
    TrainedPurchaseModel,
    examples,
    fit_examples,
    gru_configurations,
    training_windows,
)
from smartmkt.predict.tuning import Config, Trial, best, run_grid, validation_split
from smartmkt.store.db import make_engine

START = datetime(1997, 1, 1)
CALIBRATION_END = datetime(1997, 10, 1)
VALIDATION = Window(datetime(1997, 5, 14), 20.0)  # the last 20 weeks of calibration
HOLDOUT = Window(CALIBRATION_END, 39.0)  # 1997-10-01 .. 1998-06-30
TRACK_WEEKS = np.arange(1, 40)  # the holdout's 39 weeks, for the tracking plot
WINDOW = {  # HOLDOUT, last day included
    "start": f"{HOLDOUT.cutoff:%Y-%m-%d}",
    "end": f"{HOLDOUT.end - timedelta(days=1):%Y-%m-%d}",
    "days": (HOLDOUT.end - HOLDOUT.cutoff).days,
}


def _truth(days: pl.DataFrame, window: Window) -> np.ndarray:
    customers = rfm(days, window.cutoff)["customer_id"]
    return labels(days, customers, window)["purchases"].to_numpy().astype(float)


def _score(predicted: dict[str, np.ndarray]) -> np.ndarray:
    """What a model ranks customers by: its own "score" (BG/NBD, Pareto/NBD: expected
    purchases), else P(buys at all)."""
    return predicted.get("score", predicted["p_any"])


@dataclass
class Run:
    """One model's predictions on the validation window (its F1 threshold is chosen there) and
    on the holdout, with what tuning chose and its holdout tracking curve, where it has them."""

    validation: dict[str, np.ndarray]
    holdout: dict[str, np.ndarray]
    curve: np.ndarray | None = None
    tuning: dict[str, Any] = field(default_factory=dict)
    diagnosis: dict[str, Any] = field(default_factory=dict)


def _tuning_report(chosen: dict[str, Trial], trials: list[Trial], criteria: dict[str, str]) -> dict[str, Any]:
    return {
        "chosen": {head: trial.config for head, trial in chosen.items()},
        "chosen_by": criteria,
        "grid": [{"config": t.config, "validation": t.figures} for t in trials],
    }


def _smartmkt(calibration: pl.DataFrame, grid: list[Config]) -> Run:
    """The GRU, its configuration chosen on the validation window (lowest loss it trains on)."""

    def fit_predict(config: Config, train: list[Examples], validation: Examples) -> dict[str, np.ndarray]:
        return fit_examples(train, **config).predict(validation)

    trials = run_grid(grid, fit_predict, validation_split(calibration, START, VALIDATION))
    chosen = best(trials, "loss")
    parts = [examples(calibration, w) for w in training_windows(START, CALIBRATION_END)]
    model = fit_examples(parts, **chosen.config)
    held = examples(calibration, HOLDOUT, with_labels=False)
    tuning = _tuning_report({"model": chosen}, trials, {"model": "loss"})
    curve = model.expected_curve(held, TRACK_WEEKS)
    return Run(chosen.predicted, model.predict(held), curve, tuning, _level(model, parts, held))


def _level(model: TrainedPurchaseModel, parts: list[Examples], held: Examples) -> dict[str, Any]:
    """Why the level is what it is: the network's total on its own training windows and on
    the holdout without and with the level correction (``balance``)."""
    raw = TrainedPurchaseModel(model.net, model.mean, model.std)
    actual = float(sum(p.purchases.sum() for p in parts))

    def on_training(m: TrainedPurchaseModel) -> float:
        return round(sum(float(m.predict(p)["expected_purchases"].sum()) for p in parts) / actual - 1, 4)

    return {
        "lam_scale": round(float(np.exp(model.lam_log_scale)), 4),
        "alive_logit_shift": round(model.alive_shift, 4),
        "training_windows_aggregate_error": {
            "uncorrected": on_training(raw),
            "corrected": on_training(model),
        },
        "holdout_expected_uncorrected": round(float(raw.predict(held)["expected_purchases"].sum()), 1),
    }


def _lightgbm(calibration: pl.DataFrame, grid: list[Config]) -> Run:
    """LightGBM on the same windows and features; each head keeps the configuration that is best
    on the validation window for it (Brier for who buys, Poisson deviance for how often)."""

    def fit_predict(config: Config, train: list[Examples], validation: Examples) -> dict[str, np.ndarray]:
        return LightGbmPeer(config).fit(train).predict(validation)

    trials = run_grid(grid, fit_predict, validation_split(calibration, START, VALIDATION))
    criteria = {"p_any": "brier", "counts": "deviance"}
    chosen = {head: best(trials, figure) for head, figure in criteria.items()}
    peer = LightGbmPeer(chosen["p_any"].config, chosen["counts"].config)
    peer.fit([examples(calibration, w) for w in training_windows(START, CALIBRATION_END)])
    on_validation = {  # each head as chosen, on the window it was chosen on
        "p_any": chosen["p_any"].predicted["p_any"],
        "expected_purchases": chosen["counts"].predicted["expected_purchases"],
    }
    held = examples(calibration, HOLDOUT, with_labels=False)
    return Run(
        on_validation,
        peer.predict(held),
        peer.expected_curve(held, TRACK_WEEKS),
        _tuning_report(chosen, trials, criteria),
    )


def _lifetimes(calibration: pl.DataFrame, kind: str) -> Run:
    early = LifetimesModel(kind)
    early.fit(calibration, VALIDATION)
    late = LifetimesModel(kind)
    late.fit(calibration, HOLDOUT)
    curve = late.expected_up_to(calibration, HOLDOUT, TRACK_WEEKS)
    return Run(early.predict(calibration, VALIDATION), late.predict(calibration, HOLDOUT), curve)


def _rfm(calibration: pl.DataFrame) -> Run:
    model = RfmRegression()
    model.fit_window(calibration, VALIDATION)  # labels exist only inside calibration
    return Run(model.predict(calibration, VALIDATION), model.predict(calibration, HOLDOUT))


def _plots(runs: dict[str, Run], days: pl.DataFrame, truth: np.ndarray, reports_dir: Path) -> dict[str, str]:
    """The reliability plot of every model and the tracking plot of those with a curve."""
    reliability = reliability_plot(
        reports_dir / "purchase-reliability.png",
        f"CDNOW holdout {WINDOW['start']}..{WINDOW['end']}: P(buys at all) calibration",
        {name: (truth > 0, run.holdout["p_any"]) for name, run in runs.items()},
    )
    calibration_weeks = round((CALIBRATION_END - START).days / 7)
    weekly = weekly_repeat_purchases(days, START, calibration_weeks + len(TRACK_WEEKS))
    curves = {name: run.curve for name, run in runs.items() if run.curve is not None}
    tracking = tracking_plot(reports_dir / "purchase-tracking.png", START, weekly, calibration_weeks, curves)
    return {"reliability": str(reliability), "tracking": str(tracking)}


def run_purchase_bench(
    database_url: str,
    epochs: int = 12,
    reports_dir: Path | None = None,
    gru_grid: list[Config] | None = None,
    lightgbm_grid: list[Config] | None = None,
) -> dict[str, Any]:
    """Every model on the CDNOW split; ``epochs`` for the GRU's grid (``gru_grid`` overrides
    it), the plots written to ``reports_dir`` when given."""
    engine = make_engine(database_url)
    days = purchase_days(engine)
    engine.dispose()
    truth_validation, truth_holdout = _truth(days, VALIDATION), _truth(days, HOLDOUT)
    if not (truth_holdout > 0).any() or not (truth_validation > 0).any():
        raise NoPositives(
            f"no CDNOW customer bought in the holdout {WINDOW['start']}..{WINDOW['end']} or in the "
            "threshold window: there is nothing to measure the models on"
        )
    # Every model fits, tunes and predicts on the calibration period only: the holdout's
    # purchases are not even passed on, only counted here to judge the predictions.
    calibration = days.filter(pl.col("day").cast(pl.Datetime("us")) < pl.lit(CALIBRATION_END))
    jobs: dict[str, Callable[[], Run]] = {
        "smartmkt": lambda: _smartmkt(calibration, gru_grid or gru_configurations(epochs)),
        "bgnbd": lambda: _lifetimes(calibration, "bgnbd"),
        "paretonbd": lambda: _lifetimes(calibration, "paretonbd"),
        "rfm_logreg": lambda: _rfm(calibration),
        "lightgbm": lambda: _lightgbm(calibration, lightgbm_grid or list(GBM_GRID)),
    }
    models: dict[str, Any] = {}
    runs: dict[str, Run] = {}
    for name, job in jobs.items():
        started = time.perf_counter()
        runs[name] = run = job()
        held = run.holdout
        score = _score(run.validation)
        threshold = best_f1_threshold(score, truth_validation > 0)
        models[name] = {
            **figures(_score(held), held["expected_purchases"], truth_holdout, threshold, held["p_any"]),
            **({"tuning": run.tuning} if run.tuning else {}),
            **({"diagnosis": run.diagnosis} if run.diagnosis else {}),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return {
        "dataset": "cdnow",
        "customers": len(truth_holdout),
        "split": {
            "calibration": "1997-01-01..1997-09-30",
            "holdout": "1997-10-01..1998-06-30",
            "threshold_chosen_on": "1997-05-14..1997-09-30, models fitted on the data before",
            "tuned_on": "1997-05-14..1997-09-30, models fitted on the data before (never the holdout)",
        },
        "window": WINDOW,
        "holdout_purchases": int(truth_holdout.sum()),
        "holdout_buyers": int((truth_holdout > 0).sum()),
        "models": models,
        "chosen_configurations": {name: m["tuning"]["chosen"] for name, m in models.items() if "tuning" in m},
        "tracking": _tracking(runs, days),
        "plots": _plots(runs, days, truth_holdout, reports_dir) if reports_dir is not None else {},
    }


def _tracking(runs: dict[str, Run], days: pl.DataFrame) -> dict[str, Any]:
    """Holdout purchases by part of the season, actual and each model's forecast: Oct-Dec 1997
    (weeks 1-13, the holiday quarter) and Jan-Jun 1998 (weeks 14-39)."""
    weeks = round((CALIBRATION_END - START).days / 7)
    weekly = weekly_repeat_purchases(days, START, weeks + len(TRACK_WEEKS))

    def split(curve: np.ndarray) -> dict[str, float]:
        return {"oct_dec": round(float(curve[12]), 1), "jan_jun": round(float(curve[-1] - curve[12]), 1)}

    return {
        "actual": split(np.cumsum(weekly[weeks:])),
        "last_13_calibration_weeks_actual": float(weekly[weeks - 13 : weeks].sum()),
        **{name: split(run.curve) for name, run in runs.items() if run.curve is not None},
    }


def ensure_cdnow(var_dir: Path) -> str:
    """The CDNOW store (loaded through the import pipeline on first use)."""
    from smartmkt.data.cdnow import default_url, load_cdnow

    url = default_url(var_dir)
    load_cdnow(url, var_dir / "cache" / "wheels")
    return url
