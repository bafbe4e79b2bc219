"""How a recommender is judged: a temporal split of each customer's purchases and top-k figures.

Split: each customer's purchases in time order, the last 20% (at least one) held out; customers
with a single purchase are in training only. A model learns from the training purchases and
recommends products each test customer has not bought yet.
  recall@k    held-out products in the top k / held-out products
  ndcg@k      binary relevance, normalised by the best possible ordering of the held-out set
  coverage@k  distinct products recommended to anyone / catalog size
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

K = 10
HOLDOUT_SHARE = 0.2
CURVE_KS = (1, 2, 3, 5, 10, 20, 50)

Histories = dict[int, list[int]]
T = TypeVar("T")


def temporal_split(histories: dict[int, list[T]]) -> tuple[dict[int, list[T]], dict[int, list[T]]]:
    """Each customer's latest 20% (at least one) held out; any ordered items (ids, timestamps)."""
    train: dict[int, list[T]] = {}
    test: dict[int, list[T]] = {}
    for customer, items in histories.items():
        if len(items) < 2:
            train[customer] = list(items)
            continue
        held = max(1, round(len(items) * HOLDOUT_SHARE))
        train[customer], test[customer] = list(items[:-held]), list(dict.fromkeys(items[-held:]))
    return train, test


def ndcg(top: Sequence[T], truth: Sequence[T], k: int = K) -> float:
    """One customer's ndcg@k: binary relevance, normalised by the best ordering of ``truth``."""
    relevant = set(truth)
    dcg = sum(1 / math.log2(i + 2) for i, p in enumerate(top[:k]) if p in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal


def _ndcgs(recommended: dict[T, list[T]], heldout: dict[T, list[T]], k: int) -> list[float]:
    """ndcg@k of each customer of ``heldout`` (one with nothing recommended scores 0)."""
    return [ndcg(recommended.get(c, []), truth, k) for c, truth in heldout.items()]


def mean_ndcg(recommended: dict[T, list[T]], heldout: dict[T, list[T]], k: int = K) -> float:
    """Mean ndcg@k over the customers of ``heldout``: what the benches choose configurations by,
    unrounded."""
    return float(np.mean(_ndcgs(recommended, heldout, k)))


def ndcg_standard_error(recommended: dict[T, list[T]], heldout: dict[T, list[T]], k: int = K) -> float:
    """The standard error of mean ndcg@k over the customers of ``heldout``: how much the figure
    would move with another draw of customers, to say whether two figures differ beyond it."""
    values = _ndcgs(recommended, heldout, k)
    return float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan


def ranking_figures(
    recommended: dict[int, list[int]], test: Histories, catalog: int, k: int = K
) -> dict[str, float]:
    recalls, ndcgs, shown = [], [], set()
    for customer, truth in test.items():
        top = recommended.get(customer, [])[:k]
        shown.update(top)
        relevant = set(truth)
        recalls.append(sum(p in relevant for p in top) / len(relevant))
        ndcgs.append(ndcg(top, truth, k))
    return {
        f"recall@{k}": round(float(np.mean(recalls)), 4),
        f"ndcg@{k}": round(float(np.mean(ndcgs)), 4),
        f"coverage@{k}": round(len(shown) / catalog, 4),
    }


def recall_curve(
    recommended: dict[int, list[int]], test: Histories, ks: Sequence[int] = CURVE_KS
) -> dict[int, float]:
    """recall@k for each k (``recommended`` must hold at least max(ks) products per customer)."""
    curve = {}
    for k in ks:
        per_customer = [len(set(recommended.get(c, [])[:k]) & set(t)) / len(set(t)) for c, t in test.items()]
        curve[k] = round(float(np.mean(per_customer)), 4)
    return curve


def evaluate_ranker(
    recommend: Callable[[list[int], int], list[int]], train: Histories, test: Histories, catalog: int
) -> dict[str, object]:
    """Figures at k=10 and the recall@k curve for a ``recommend(history, k) -> product ids``."""
    depth = max(CURVE_KS)
    recommended = {c: recommend(train.get(c, []), depth) for c in test}
    return {
        **ranking_figures(recommended, test, catalog),
        "recall_curve": recall_curve(recommended, test),
        "customers": len(test),
        # per test customer, in ``test`` order: what a paired comparison of two rankers resamples
        "ndcg_by_customer": [ndcg(recommended[c], t) for c, t in test.items()],
    }
