"""A gradient-boosted peer for the purchase model: LightGBM on the RFM features plus everything
the GRU reads (its last 16 purchase days, flattened) and the window's horizon.

It learns from the same labelled windows as the GRU (``training_windows``), with two heads:

- who buys at all: a binary classifier whose P(buys) may only grow with the horizon (a
  monotone constraint), so it is a probability for the window asked about;
- how often: a Poisson regression of the weekly purchase rate in the window (purchases / weeks,
  weighted by the weeks), so the expected purchases are rate x horizon. Trees do not
  extrapolate, so beyond the longest horizon it was trained on the rate of that horizon is kept.

It is a peer, not the product: the bench measures it; nothing in the product serves it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from smartmkt.predict.train import Examples

# At most 12 configurations (6: the bench fits each on 2 shared cores), chosen on the validation
# window only (smartmkt.predict.tuning).
GRID: tuple[dict[str, Any], ...] = tuple(
    {"num_leaves": leaves, "min_child_samples": min_child, "n_estimators": 300, "learning_rate": 0.05}
    for leaves in (15, 31, 63)
    for min_child in (100, 400)
)


def tabular(batch: Examples) -> np.ndarray:
    """One row per example: the static RFM features, the purchase-day sequence flattened
    (oldest first) and, last, the horizon in weeks."""
    flat = batch.sequence.reshape(len(batch.sequence), -1)
    return np.hstack([batch.static, flat, batch.horizon[:, None]]).astype(np.float32)


def _stack(parts: list[Examples]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features = np.vstack([tabular(p) for p in parts])
    purchases = np.concatenate([p.purchases for p in parts]).astype(float)
    horizon = np.concatenate([p.horizon for p in parts]).astype(float)
    return features, purchases, horizon


@dataclass
class LightGbmPeer:
    """The two LightGBM heads: ``config`` (a ``GRID`` entry) for who buys, ``rate_config`` (the
    same unless given) for how often, since each head is tuned on its own figure."""

    config: dict[str, Any]
    rate_config: dict[str, Any] | None = None
    seed: int = 7
    threads: int = 2

    def _params(
        self, config: dict[str, Any], objective: str, features: int, monotone_horizon: int
    ) -> dict[str, Any]:
        constraints = [0] * (features - 1) + [monotone_horizon]
        return {
            **config,
            "objective": objective,
            "random_state": self.seed,
            "n_jobs": self.threads,
            "subsample": 0.8,
            "subsample_freq": 1,
            "colsample_bytree": 0.8,
            "monotone_constraints": constraints,
            "verbose": -1,
        }

    def fit(self, parts: list[Examples]) -> LightGbmPeer:
        """Both heads on labelled examples (one batch per window)."""
        from lightgbm import LGBMClassifier, LGBMRegressor

        features, purchases, horizon = _stack(parts)
        width = features.shape[1]
        self.classifier = LGBMClassifier(**self._params(self.config, "binary", width, +1))
        self.classifier.fit(features, purchases > 0)
        self.rate = LGBMRegressor(**self._params(self.rate_config or self.config, "poisson", width, 0))
        self.rate.fit(features, purchases / horizon, sample_weight=horizon)
        return self

    def predict(self, batch: Examples) -> dict[str, np.ndarray]:
        """P(buys at all) and expected purchases over each example's horizon."""
        features = tabular(batch)
        p_any = np.asarray(self.classifier.predict_proba(features))[:, 1]
        rate = np.clip(np.asarray(self.rate.predict(features), dtype=float), 0.0, None)
        return {"p_any": p_any, "expected_purchases": rate * batch.horizon}

    def expected_curve(self, batch: Examples, horizons: np.ndarray) -> np.ndarray:
        """The customers' total expected purchases within each of ``horizons`` weeks."""
        at = lambda h: replace(batch, horizon=np.full_like(batch.horizon, h))  # noqa: E731
        return np.array([float(self.predict(at(h))["expected_purchases"].sum()) for h in horizons])
