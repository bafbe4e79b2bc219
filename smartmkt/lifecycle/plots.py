"""PNG plots for `smartmkt eval`: what a marketer or a data person looks at to trust a model.

Classifiers get a calibration curve (does a 70% score mean 70%?) beside a precision/recall curve
(what each threshold trades); rankers get recall@k for growing k. Matplotlib's Agg backend: no
display needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


Scored = tuple[Sequence[bool] | np.ndarray, Sequence[float] | np.ndarray]  # (truth, score)


def classifier_plot(path: Path, title: str, calibration: Scored, precision_recall: Scored) -> Path:
    """Calibration curve and precision/recall curve of binary scores, side by side (usually
    the same scores; a multi-class model calibrates its top choice and ranks every class)."""
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    y, s = np.asarray(calibration[0], dtype=bool), np.asarray(calibration[1], dtype=float)
    observed, predicted = calibration_curve(y, s, n_bins=10, strategy="quantile")
    left.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    left.plot(predicted, observed, marker="o", label="model")
    left.set(xlabel="predicted probability", ylabel="observed frequency", title="calibration")
    left.legend(loc="upper left")
    y, s = np.asarray(precision_recall[0], dtype=bool), np.asarray(precision_recall[1], dtype=float)
    precision, recall, _ = precision_recall_curve(y, s)
    right.plot(recall, precision)
    right.axhline(float(y.mean()), linestyle="--", color="grey", label=f"base rate {y.mean():.2f}")
    right.set(
        xlabel="recall",
        ylabel="precision",
        title=f"precision / recall (AP {average_precision_score(y, s):.3f})",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    right.legend(loc="upper right")
    fig.suptitle(title)
    return _save(fig, path)


def recall_at_k_plot(path: Path, title: str, curves: Mapping[str, Mapping[int, float]]) -> Path:
    """recall@k against k, one line per model."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6, 4.2))
    for name, curve in curves.items():
        ks = sorted(int(k) for k in curve)
        axis.plot(ks, [curve[k] for k in ks], marker="o", label=name)
    axis.set(xscale="log", xlabel="k (log scale)", ylabel="recall@k", title=title, ylim=(0, None))
    axis.legend(loc="upper left")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path
