"""Choosing a model's configuration on a validation window, never on the data it is judged on.

``validation_split`` cuts the history at the validation window's end before building anything,
so whatever comes later (a benchmark's holdout) cannot reach the grid: the models learn from
windows that end at the validation cutoff and are scored on the purchases inside the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from smartmkt.predict.evaluate import brier_score
from smartmkt.predict.history import Window
from smartmkt.predict.train import Examples, examples, training_windows

Config = dict[str, Any]
Predictions = dict[str, np.ndarray]  # at least "p_any" and "expected_purchases"


@dataclass(frozen=True)
class ValidationData:
    train: list[Examples]  # labelled windows that end at the validation cutoff
    validation: Examples  # features at the cutoff, purchases inside the validation window


@dataclass(frozen=True)
class Trial:
    config: Config
    figures: dict[str, float]  # on the validation window
    predicted: Predictions  # on the validation window (a threshold can be chosen on it)


def validation_split(
    days: pl.DataFrame, start: datetime, window: Window, first_cutoff_weeks: float = 8.0
) -> ValidationData:
    """Training windows before ``window.cutoff`` and the validation examples, from the purchases
    before ``window.end`` only (later ones are dropped first)."""
    seen = days.filter(pl.col("day").cast(pl.Datetime("us")) < pl.lit(window.end))
    windows = training_windows(start, window.cutoff, first_cutoff_weeks=first_cutoff_weeks)
    return ValidationData([examples(seen, w) for w in windows], examples(seen, window))


def validation_figures(predicted: Predictions, purchases: np.ndarray) -> dict[str, float]:
    """What a configuration is chosen by: ranking (auc), P(buys) (brier, log loss), counts
    (mean Poisson deviance, mae, signed aggregate error) and ``loss``, half the deviance plus the
    log loss: the GRU's training loss (Poisson likelihood + "bought at all" cross-entropy) up to
    a constant."""
    from sklearn.metrics import log_loss, mean_poisson_deviance, roc_auc_score

    bought = purchases > 0
    p_any = np.clip(predicted["p_any"], 1e-6, 1 - 1e-6)
    expected = np.clip(predicted["expected_purchases"], 1e-9, None)
    total = float(purchases.sum())
    deviance = float(mean_poisson_deviance(purchases, expected))
    logloss = float(log_loss(bought, p_any, labels=[False, True]))
    return {
        "auc": round(float(roc_auc_score(bought, p_any)), 4),
        "brier": round(brier_score(p_any, bought), 4),
        "log_loss": round(logloss, 4),
        "deviance": round(deviance, 4),
        "loss": round(deviance / 2 + logloss, 4),  # what the GRU minimizes, up to a constant
        "mae": round(float(np.abs(expected - purchases).mean()), 4),
        "aggregate_error": round(float((expected.sum() - total) / total), 4) if total else 0.0,
    }


def run_grid(
    grid: Sequence[Config],
    fit_predict: Callable[[Config, list[Examples], Examples], Predictions],
    data: ValidationData,
) -> list[Trial]:
    """Every configuration of ``grid`` (at most 12) fitted on ``data.train`` and scored on
    ``data.validation``."""
    if not 0 < len(grid) <= 12:
        raise ValueError(f"a tuning grid has 1 to 12 configurations, not {len(grid)}")
    trials = []
    for config in grid:
        predicted = fit_predict(config, data.train, data.validation)
        trials.append(Trial(config, validation_figures(predicted, data.validation.purchases), predicted))
    return trials


def best(trials: Sequence[Trial], figure: str) -> Trial:
    """The trial with the lowest validation ``figure`` (ties: the earlier one)."""
    return min(trials, key=lambda t: t.figures[figure])
