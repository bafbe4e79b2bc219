"""The purchase benchmark's PNG plots: reliability (does a predicted 30% buy 30% of the time?)
and the buy-till-you-die tracking plot (purchases per week, actual against each model's
forecast). Matplotlib's Agg backend: no display needed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from smartmkt.predict.evaluate import brier_score


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def reliability_plot(path: Path, title: str, models: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """One panel per model of ``models`` (name -> (bought, P(buys))): observed share of buyers
    against the mean prediction in 10 equal-count bins, with the model's Brier score."""
    from sklearn.calibration import calibration_curve

    plt = _pyplot()
    columns = min(3, len(models))
    rows = -(-len(models) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4 * rows), squeeze=False)
    for axis, (name, (bought, probability)) in zip(axes.flat, models.items(), strict=False):
        truth, p = np.asarray(bought, dtype=bool), np.asarray(probability, dtype=float)
        observed, predicted = calibration_curve(truth, p, n_bins=10, strategy="quantile")
        axis.plot([0, 1], [0, 1], linestyle="--", color="grey")
        axis.plot(predicted, observed, marker="o")
        axis.set(
            title=f"{name} (Brier {brier_score(p, truth):.4f})",
            xlabel="predicted P(buys)",
            ylabel="observed share of buyers",
            xlim=(0, 1),
            ylim=(0, 1),
        )
    for axis in list(axes.flat)[len(models) :]:
        axis.set_visible(False)
    fig.suptitle(title)
    return _save(fig, path)


def tracking_plot(
    path: Path,
    start: datetime,
    actual_weekly: np.ndarray,
    forecast_from_week: int,
    cumulative: Mapping[str, np.ndarray],
) -> Path:
    """Left: repeat purchases per week since ``start`` (``actual_weekly``), and from week
    ``forecast_from_week`` on each model's expected purchases per week; right: the same
    forecasts cumulated against the actual running total. ``cumulative`` maps a model to its
    total expected purchases within 1, 2, ... weeks of the forecast start."""
    plt = _pyplot()
    fig, (weekly, total) = plt.subplots(1, 2, figsize=(12, 4.4))
    weeks = np.arange(len(actual_weekly))
    weekly.plot(weeks, actual_weekly, color="black", label="actual")
    weekly.axvline(forecast_from_week, linestyle="--", color="grey")
    ahead = np.arange(forecast_from_week, len(actual_weekly))
    actual_total = np.cumsum(actual_weekly[forecast_from_week:])
    total.plot(ahead + 1, actual_total, color="black", label="actual")
    for name, curve in cumulative.items():
        curve = np.asarray(curve, dtype=float)[: len(ahead)]
        weekly.plot(ahead[: len(curve)], np.diff(curve, prepend=0.0), label=name)
        total.plot(ahead[: len(curve)] + 1, curve, label=f"{name} ({curve[-1] / actual_total[-1] - 1:+.1%})")
    cut = start + timedelta(weeks=forecast_from_week)
    weekly.set(
        xlabel=f"week since {start:%Y-%m-%d} (forecast from {cut:%Y-%m-%d})",
        ylabel="repeat purchase days",
        title="per week",
    )
    total.set(xlabel="week", ylabel="purchase days since the forecast start", title="cumulative")
    weekly.legend(loc="upper right")
    total.legend(loc="upper left")
    return _save(fig, path)
