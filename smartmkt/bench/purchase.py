"""``smartmkt bench purchase``: purchase prediction on CDNOW against BG/NBD, Pareto/NBD and RFM
regression, on the standard split.

CDNOW_master.txt (23,570 customers, first purchases in Q1 1997) is loaded through the import
pipeline into its own store. Calibration: purchases up to 1997-09-30; holdout: 1997-10-01 to
1998-06-30 (39 weeks). Purchases are counted per customer-day.

Every model is fitted twice: on the data before 1997-05-14 to choose the threshold that
maximizes its F1 (for "bought at all") on the purchases of 1997-05-14..09-30, then on the whole
calibration period to predict the holdout, where that threshold is applied. BG/NBD and
Pareto/NBD rank by expected purchases; the classifiers by their probability.

It reads its own CDNOW store (var/cdnow.db, loaded once), never the product's store, so using the
product does not move its figures; the held-out window is stated in the report. A holdout without
a single buyer stops with ``NoPositives``.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from smartmkt.lifecycle.heldout import NoPositives
from smartmkt.predict.baselines import LifetimesModel, RfmRegression
from smartmkt.predict.evaluate import best_f1_threshold, figures
from smartmkt.predict.history import Window, labels, purchase_days, rfm
from smartmkt.predict.train import examples, fit, training_windows
from smartmkt.store.db import make_engine

START = datetime(1997, 1, 1)
CALIBRATION_END = datetime(1997, 10, 1)
VALIDATION = Window(datetime(1997, 5, 14), 20.0)  # the last 20 weeks of calibration
HOLDOUT = Window(CALIBRATION_END, 39.0)  # 1997-10-01 .. 1998-06-30
WINDOW = {  # HOLDOUT, last day included
    "start": f"{HOLDOUT.cutoff:%Y-%m-%d}",
    "end": f"{HOLDOUT.end - timedelta(days=1):%Y-%m-%d}",
    "days": (HOLDOUT.end - HOLDOUT.cutoff).days,
}


def _truth(days: pl.DataFrame, window: Window) -> np.ndarray:
    customers = rfm(days, window.cutoff)["customer_id"]
    return labels(days, customers, window)["purchases"].to_numpy().astype(float)


def _smartmkt(days: pl.DataFrame, epochs: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    validation_model = fit(days, training_windows(START, VALIDATION.cutoff), epochs=epochs)
    on_validation = validation_model.predict(examples(days, VALIDATION, with_labels=False))
    model = fit(days, training_windows(START, CALIBRATION_END), epochs=epochs)
    on_holdout = model.predict(examples(days, HOLDOUT, with_labels=False))
    as_scores = lambda p: {"score": p["p_any"], "expected_purchases": p["expected_purchases"]}  # noqa: E731
    return as_scores(on_validation), as_scores(on_holdout)


def _lifetimes(days: pl.DataFrame, kind: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    early = LifetimesModel(kind)
    early.fit(days, VALIDATION)
    late = LifetimesModel(kind)
    late.fit(days, HOLDOUT)
    return early.predict(days, VALIDATION), late.predict(days, HOLDOUT)


def _rfm(days: pl.DataFrame) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    model = RfmRegression()
    model.fit_window(days, VALIDATION)  # labels exist only inside calibration
    return model.predict(days, VALIDATION), model.predict(days, HOLDOUT)


def run_purchase_bench(database_url: str, epochs: int = 12) -> dict[str, Any]:
    engine = make_engine(database_url)
    days = purchase_days(engine)
    engine.dispose()
    truth_validation, truth_holdout = _truth(days, VALIDATION), _truth(days, HOLDOUT)
    if not (truth_holdout > 0).any() or not (truth_validation > 0).any():
        raise NoPositives(
            f"no CDNOW customer bought in the holdout {WINDOW['start']}..{WINDOW['end']} or in the "
            "threshold window: there is nothing to measure the models on"
        )
    models: dict[str, Any] = {}
    runs = {
        "smartmkt": lambda: _smartmkt(days, epochs),
        "bgnbd": lambda: _lifetimes(days, "bgnbd"),
        "paretonbd": lambda: _lifetimes(days, "paretonbd"),
        "rfm_logreg": lambda: _rfm(days),
    }
    for name, run in runs.items():
        started = time.perf_counter()
        validation, holdout = run()
        threshold = best_f1_threshold(validation["score"], truth_validation > 0)
        models[name] = {
            **figures(holdout["score"], holdout["expected_purchases"], truth_holdout, threshold),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return {
        "dataset": "cdnow",
        "customers": len(truth_holdout),
        "split": {
            "calibration": "1997-01-01..1997-09-30",
            "holdout": "1997-10-01..1998-06-30",
            "threshold_chosen_on": "1997-05-14..1997-09-30, models fitted on the data before",
        },
        "window": WINDOW,
        "holdout_purchases": int(truth_holdout.sum()),
        "holdout_buyers": int((truth_holdout > 0).sum()),
        "models": models,
    }


def ensure_cdnow(var_dir: Path) -> str:
    """The CDNOW store (loaded through the import pipeline on first use)."""
    from smartmkt.data.cdnow import default_url, load_cdnow

    url = default_url(var_dir)
    load_cdnow(url, var_dir / "cache" / "wheels")
    return url
