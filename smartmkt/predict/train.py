"""Training the purchase model on windows that fit inside a calibration period, and scoring."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import torch

from smartmkt.predict.history import Window, labels, rfm, rfm_features, sequences
from smartmkt.predict.model import PurchaseNet, expected_purchases, loss, probability_any

SEQUENCE_LENGTH = 16


@dataclass
class Examples:
    customers: np.ndarray
    sequence: np.ndarray
    static: np.ndarray
    horizon: np.ndarray
    purchases: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    spend: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))


def static_features(summary: pl.DataFrame) -> np.ndarray:
    """The RFM features (``rfm_features``), then log quantity per day and recency/T."""
    extra = summary.select(
        pl.col("quantity").clip(lower_bound=0).log1p(),
        (pl.col("recency") / pl.col("T").clip(lower_bound=1e-3)).alias("recency_share"),
    ).to_numpy()
    return np.hstack([rfm_features(summary), extra]).astype(np.float32)


def examples(days: pl.DataFrame, window: Window, with_labels: bool = True) -> Examples:
    summary = rfm(days, window.cutoff)
    customers = summary["customer_id"]
    built = Examples(
        customers=customers.to_numpy(),
        sequence=sequences(days, customers, window.cutoff, SEQUENCE_LENGTH),
        static=static_features(summary),
        horizon=np.full(len(customers), window.horizon_weeks, dtype=np.float32),
    )
    if with_labels:
        target = labels(days, customers, window)
        built.purchases = target["purchases"].to_numpy().astype(np.float32)
        built.spend = target["spend"].to_numpy().astype(np.float32)
    return built


def training_windows(
    start: datetime, end: datetime, first_cutoff_weeks: float = 8.0, step_weeks: float = 2.0
) -> list[Window]:
    """Cutoffs every ``step_weeks`` from ``first_cutoff_weeks`` after ``start``, each labelled
    with the purchases up to ``end`` (the windows get shorter as the cutoff moves)."""
    windows = []
    cutoff = start + timedelta(weeks=first_cutoff_weeks)
    while (end - cutoff) >= timedelta(weeks=4):
        windows.append(Window(cutoff, (end - cutoff).total_seconds() / (7 * 86_400)))
        cutoff += timedelta(weeks=step_weeks)
    return windows


@dataclass
class TrainedPurchaseModel:
    net: PurchaseNet
    mean: np.ndarray
    std: np.ndarray

    def predict(self, batch: Examples) -> dict[str, np.ndarray]:
        """Per customer of ``batch`` (``examples``): expected purchases and P(any purchase)
        over its window's horizon, spend per purchase, and P(alive)."""
        self.net.eval()
        with torch.no_grad():
            params = self.net(
                torch.from_numpy(batch.sequence), torch.from_numpy((batch.static - self.mean) / self.std)
            )
            horizon = torch.from_numpy(batch.horizon)
            return {
                "expected_purchases": expected_purchases(params, horizon).numpy(),
                "p_any": probability_any(params, horizon).numpy(),
                "spend_per_purchase": torch.expm1(params["log_spend"]).clamp_min(0).numpy(),
                "alive": params["alive"].numpy(),
            }


def fit(
    days: pl.DataFrame, windows: list[Window], epochs: int = 12, seed: int = 7, threads: int = 2
) -> TrainedPurchaseModel:
    """The purchase model trained on ``days`` (``purchase_days``), one labelled batch per
    window of ``windows`` (``training_windows``), for ``epochs`` epochs from ``seed`` (the same
    seed, the same model) on ``threads`` torch threads."""
    return fit_examples([examples(days, w) for w in windows], epochs, seed, threads)


def fit_examples(
    parts: list[Examples], epochs: int = 12, seed: int = 7, threads: int = 2
) -> TrainedPurchaseModel:
    """The model on labelled examples (one batch per window); the same seed, the same model."""
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    # The survival terms underflow into denormal floats, which the CPU handles ~10x slower.
    torch.set_flush_denormal(True)
    sequence = np.concatenate([p.sequence for p in parts])
    static = np.concatenate([p.static for p in parts])
    horizon = np.concatenate([p.horizon for p in parts])
    purchases = np.concatenate([p.purchases for p in parts])
    spend = np.concatenate([p.spend for p in parts])
    mean, std = static.mean(axis=0), static.std(axis=0) + 1e-6
    tensors = [
        torch.from_numpy(sequence),
        torch.from_numpy((static - mean) / std),
        torch.from_numpy(horizon),
        torch.from_numpy(purchases),
        torch.from_numpy(spend),
    ]
    net = PurchaseNet()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(horizon), generator=generator)
        for start in range(0, len(order), 512):
            idx = order[start : start + 512]
            seq, stat, hor, buy, spent = (t[idx] for t in tensors)
            optimizer.zero_grad()
            value = loss(net(seq, stat), hor, buy, spent)
            value.backward()
            optimizer.step()
    return TrainedPurchaseModel(net, mean, std)
