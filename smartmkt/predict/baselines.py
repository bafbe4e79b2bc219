"""The peers the purchase model is measured against, run on the same split.

BG/NBD and Pareto/NBD come from the ``lifetimes`` package (maximum likelihood on each
customer's frequency, recency and T); the RFM baseline is scikit-learn's logistic regression
(who buys at all) with a Poisson regression for how often, on the same RFM features.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl

from smartmkt.predict.history import Window, labels, rfm, rfm_features


class Predictor(Protocol):
    def fit(self, days: pl.DataFrame, calibration_end: Window) -> None: ...

    def predict(self, days: pl.DataFrame, window: Window) -> dict[str, np.ndarray]: ...


def _summary_arrays(summary: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        summary["frequency"].to_numpy().astype(float),
        summary["recency"].to_numpy().astype(float),
        summary["T"].to_numpy().astype(float),
    )


class LifetimesModel:
    """BG/NBD (``bgnbd``) or Pareto/NBD (``paretonbd``), fitted on everything before a cutoff."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.fitter = None

    def fit(self, days: pl.DataFrame, cutoff: Window) -> None:
        from lifetimes import BetaGeoFitter, ParetoNBDFitter

        frequency, recency, age = _summary_arrays(rfm(days, cutoff.cutoff))
        fitter = (
            BetaGeoFitter(penalizer_coef=0.0) if self.kind == "bgnbd" else ParetoNBDFitter(penalizer_coef=0.0)
        )
        fitter.fit(frequency, recency, age)
        self.fitter = fitter

    def predict(self, days: pl.DataFrame, window: Window) -> dict[str, np.ndarray]:
        assert self.fitter is not None
        frequency, recency, age = _summary_arrays(rfm(days, window.cutoff))
        expected = np.asarray(
            self.fitter.conditional_expected_number_of_purchases_up_to_time(
                window.horizon_weeks, frequency, recency, age
            )
        )
        return {
            "expected_purchases": expected,
            "score": expected,
            "p_any": self.probability_any(frequency, recency, age, window.horizon_weeks),
        }

    def probability_any(
        self, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray, horizon: float
    ) -> np.ndarray:
        """P(at least one purchase in the next ``horizon`` weeks | the customer's history).

        Pareto/NBD: lifetimes' own ``conditional_probability_of_n_purchases_up_to_time`` (n=0).
        BG/NBD: lifetimes has no conditional form, so it is derived from the model itself. A
        BG/NBD customer can only drop out right after a purchase, so one alive at T makes no
        purchase in (T, T + t] with probability exp(-lambda t); given alive and x purchases by
        T, lambda ~ Gamma(r + x, alpha + T) (the Beta part cancels), so
        P(X(t) > 0 | history) = P(alive | history) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)).
        """
        assert self.fitter is not None
        if self.kind == "paretonbd":
            none = self.fitter.conditional_probability_of_n_purchases_up_to_time(
                0, horizon, frequency, recency, age
            )
            return np.clip(1.0 - np.asarray(none, dtype=float), 0.0, 1.0)
        params = self.fitter.params_
        r, alpha = float(params["r"]), float(params["alpha"])
        alive = np.asarray(self.fitter.conditional_probability_alive(frequency, recency, age), dtype=float)
        quiet = ((alpha + age) / (alpha + age + horizon)) ** (r + frequency)
        return np.clip(alive * (1.0 - quiet), 0.0, 1.0)

    def expected_up_to(self, days: pl.DataFrame, cutoff: Window, horizons: np.ndarray) -> np.ndarray:
        """The customers' total expected purchases within each of ``horizons`` weeks of the
        cutoff (the cumulative curve of a tracking plot)."""
        assert self.fitter is not None
        frequency, recency, age = _summary_arrays(rfm(days, cutoff.cutoff))
        return np.array(
            [
                float(
                    np.sum(
                        self.fitter.conditional_expected_number_of_purchases_up_to_time(
                            float(h), frequency, recency, age
                        )
                    )
                )
                for h in horizons
            ]
        )


class RfmRegression:
    """Logistic regression (bought at all) and Poisson regression (how often) on RFM features.

    Both need labels, so they learn from a window inside the calibration period (features at
    its start, purchases in it); counts for a longer horizon are scaled by the ratio of lengths.
    """

    def __init__(self) -> None:
        from sklearn.linear_model import LogisticRegression, PoissonRegressor
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self.counts = make_pipeline(StandardScaler(), PoissonRegressor(alpha=1e-4, max_iter=1000))
        self.trained_horizon = 1.0

    def fit_window(self, days: pl.DataFrame, window: Window) -> None:
        summary = rfm(days, window.cutoff)
        target = labels(days, summary["customer_id"], window)["purchases"].to_numpy()
        features = rfm_features(summary)
        self.classifier.fit(features, target > 0)
        self.counts.fit(features, target)
        self.trained_horizon = window.horizon_weeks

    def predict(self, days: pl.DataFrame, window: Window) -> dict[str, np.ndarray]:
        features = rfm_features(rfm(days, window.cutoff))
        probability = self.classifier.predict_proba(features)[:, 1]
        expected = self.counts.predict(features) * window.horizon_weeks / self.trained_horizon
        # the classifier learned "buys within trained_horizon weeks": P(any) for that horizon
        return {"expected_purchases": expected, "score": probability, "p_any": probability}
