"""The purchase model on the store's own data: trained on the windows its history allows, judged
on the store's latest ``horizon_days`` (never seen in training), then every customer scored for
the next ``horizon_days`` (customer_scores).

Held-out protocol (``holdout_split``): the model learns from purchases before ``end - H`` (end =
the day after the store's latest purchase); it then predicts who buys in [end - H, end). The F1
threshold is the one that is best on the last window inside training, [end - 2H, end - H).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import torch
from sqlalchemy import Engine, delete, insert

from smartmkt.predict.evaluate import best_f1_threshold, figures
from smartmkt.predict.history import Window
from smartmkt.predict.model import PurchaseNet
from smartmkt.predict.train import TrainedPurchaseModel, examples, fit, training_windows
from smartmkt.store.clock import utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import CustomerScore

MODEL_FILE = "purchase.pt"
EPOCHS = 12


@dataclass(frozen=True)
class StoreScores:
    customers: int
    cutoff: datetime
    mean_p_purchase: float
    expected_purchases: float


def store_cutoff(days: pl.DataFrame) -> datetime:
    """The store's "now" for scoring: the day after its latest purchase."""
    latest = days["day"].max()
    if latest is None:
        raise RuntimeError("the store has no orders: load data first (`smartmkt data load-demo`)")
    return datetime.combine(latest, datetime.min.time()) + timedelta(days=1)  # type: ignore[arg-type]


def fit_until(
    days: pl.DataFrame, cutoff: datetime, epochs: int = EPOCHS, seed: int = 7
) -> TrainedPurchaseModel:
    """The purchase model on the windows that fit before ``cutoff`` (the first 4 weeks in, then
    every 2 weeks); nothing from ``cutoff`` on is read."""
    start = datetime.combine(days["day"].min(), datetime.min.time())  # type: ignore[arg-type]
    windows = training_windows(start, cutoff, first_cutoff_weeks=4.0, step_weeks=2.0)
    if not windows:
        raise RuntimeError("the store's history is too short to train the purchase model (under 8 weeks)")
    return fit(days, windows, epochs=epochs, seed=seed)


@dataclass(frozen=True)
class Holdout:
    train_until: datetime  # models read nothing from here on
    calibration: Window  # the last window inside training: chooses the F1 threshold
    holdout: Window  # [train_until, store end)


def holdout_split(days: pl.DataFrame, horizon_days: int) -> Holdout:
    end = store_cutoff(days)
    train_until = end - timedelta(days=horizon_days)
    weeks = horizon_days / 7
    return Holdout(
        train_until, Window(train_until - timedelta(days=horizon_days), weeks), Window(train_until, weeks)
    )


@dataclass(frozen=True)
class HoldoutPredictions:
    score: np.ndarray  # P(at least one purchase in the holdout)
    expected: np.ndarray  # expected purchase days in the holdout
    actual: np.ndarray  # purchase days in the holdout
    threshold: float


def predict_holdout(model: TrainedPurchaseModel, days: pl.DataFrame, horizon_days: int) -> HoldoutPredictions:
    split = holdout_split(days, horizon_days)
    calibration = examples(days, split.calibration)
    threshold = best_f1_threshold(model.predict(calibration)["p_any"], calibration.purchases > 0)
    held = examples(days, split.holdout)
    predicted = model.predict(held)
    return HoldoutPredictions(predicted["p_any"], predicted["expected_purchases"], held.purchases, threshold)


def holdout_figures(held: HoldoutPredictions) -> dict[str, float]:
    """accuracy, precision, recall, f1, auc, mae, rmse, aggregate_error on the held-out period."""
    return {
        **figures(held.score, held.expected, held.actual, held.threshold),
        "base_rate": round(float((held.actual > 0).mean()), 4),
        "customers": len(held.actual),
    }


def save(model: TrainedPurchaseModel, folder: Path) -> None:
    """Write ``model`` to ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "state": model.net.state_dict(),
            "mean": model.mean,
            "std": model.std,
            "lam_log_scale": model.lam_log_scale,
            "alive_shift": model.alive_shift,
        },
        folder / MODEL_FILE,
    )


def load(folder: Path) -> TrainedPurchaseModel:
    """The purchase model ``save`` wrote to ``folder``."""
    saved = torch.load(folder / MODEL_FILE, weights_only=False)
    net = PurchaseNet(hidden=int(saved["state"]["gru.weight_hh_l0"].shape[1]))
    net.load_state_dict(saved["state"])
    return TrainedPurchaseModel(
        net,
        np.asarray(saved["mean"]),
        np.asarray(saved["std"]),
        float(saved.get("lam_log_scale", 0.0)),  # files written before the level correction
        float(saved.get("alive_shift", 0.0)),
    )


def write_scores(
    engine: Engine, model: TrainedPurchaseModel, days: pl.DataFrame, horizon_days: int, version: str
) -> StoreScores:
    """Replace every customer's score in one transaction."""
    cutoff = store_cutoff(days)
    batch = examples(days, Window(cutoff, horizon_days / 7), with_labels=False)
    predicted = model.predict(batch)
    now = utcnow()
    rows = [
        {
            "customer_id": int(cid),
            "p_purchase": float(p),
            "expected_purchases": float(e),
            "expected_spend_cents": round(float(e) * float(s) * 100),
            "p_alive": float(a),
            "horizon_days": horizon_days,
            "model_version": version,
            "scored_at": now,
        }
        for cid, p, e, s, a in zip(
            batch.customers,
            predicted["p_any"],
            predicted["expected_purchases"],
            predicted["spend_per_purchase"],
            predicted["alive"],
            strict=True,
        )
    ]
    with session_scope(engine) as session:
        session.execute(delete(CustomerScore))
        for start in range(0, len(rows), 5000):
            session.execute(insert(CustomerScore), rows[start : start + 5000])
    return StoreScores(
        customers=len(rows),
        cutoff=cutoff,
        mean_p_purchase=float(np.mean(predicted["p_any"])) if rows else 0.0,
        expected_purchases=float(np.sum(predicted["expected_purchases"])),
    )
