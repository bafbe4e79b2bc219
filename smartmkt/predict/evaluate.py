"""The figures every purchase model is judged by, on one split."""

from __future__ import annotations

import numpy as np


def best_f1_threshold(score: np.ndarray, bought: np.ndarray) -> float:
    """The score threshold with the highest F1 for "bought at all" (ties: the lower threshold)."""
    order = np.argsort(-score, kind="stable")
    sorted_score, hits = score[order], bought[order].astype(float)
    true_positives = np.cumsum(hits)
    predicted = np.arange(1, len(hits) + 1)
    f1 = 2 * true_positives / (predicted + hits.sum())
    # only cut between distinct scores
    distinct = np.r_[sorted_score[1:] != sorted_score[:-1], True]
    best = int(np.argmax(np.where(distinct, f1, -1)))
    return float(sorted_score[best])


def brier_score(probability: np.ndarray, bought: np.ndarray) -> float:
    """Mean squared difference between P(buys at all) and what happened (1 or 0): a proper
    score, so unlike AUC it also judges whether a 30% means 30% (lower is better)."""
    return float(np.mean((np.asarray(probability, dtype=float) - np.asarray(bought, dtype=float)) ** 2))


def figures(
    score: np.ndarray,
    expected: np.ndarray,
    actual: np.ndarray,
    threshold: float,
    probability: np.ndarray | None = None,
) -> dict[str, float]:
    """Ranking (auc), the thresholded classifier, counts (mae, rmse, aggregate error as a signed
    fraction of the actual total) and, given ``probability`` (P(buys at all)), its Brier score."""
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    bought = actual > 0
    chosen = score >= threshold
    total = float(actual.sum())
    return {
        "auc": round(float(roc_auc_score(bought, score)), 4) if 0 < bought.sum() < len(bought) else 0.5,
        "accuracy": round(float(accuracy_score(bought, chosen)), 4),
        "precision": round(float(precision_score(bought, chosen, zero_division=0)), 4),
        "recall": round(float(recall_score(bought, chosen, zero_division=0)), 4),
        "f1": round(float(f1_score(bought, chosen, zero_division=0)), 4),
        "mae": round(float(np.abs(expected - actual).mean()), 4),
        "rmse": round(float(np.sqrt(((expected - actual) ** 2).mean())), 4),
        "aggregate_error": round(float((expected.sum() - total) / total), 4) if total else 0.0,
        "threshold": round(threshold, 4),
        **({"brier": round(brier_score(probability, bought), 4)} if probability is not None else {}),
    }
