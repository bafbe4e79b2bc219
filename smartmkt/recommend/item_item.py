"""Item-to-item weights that re-rank the index's candidates: EASE (Steck 2019) learned from the
training purchases, read from a customer's history with the latest purchases weighing most.

Why: the index's score (sequence transformer, mean embedding, popularity, text) is low-rank; an
item-to-item model keeps pairs that 64 dimensions smooth over. On the validation split that
`smartmkt bench recommend` carves from the demo store's training purchases, the two together
ranked better than either: ndcg@10 0.2649 without, 0.2745 with (EASE alone 0.2443; weight 0.05:
0.2715, 0.15: 0.2745; rows cut to 100 weights: 0.2727, 400: 0.2750).

It is not an inner product over small vectors, so it cannot live in the FAISS index: the index
finds ``RERANK_CANDIDATES`` candidates that pass the customer's filters, and this adds to their
scores (on the split above, 50, 100 or 200 candidates gave the same figure).

Scale: the closed form inverts an items x items matrix, so it covers at most ``MAX_ITEMS`` items
(the most bought; the others get no item-to-item term), and each row keeps its ``KEEP`` largest
weights: a sparse matrix, saved in the model's .npz without pickle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import scipy.sparse as sp

MAX_ITEMS = 10_000
KEEP = 200
L2 = 500.0
DECAY = 0.9  # an item bought n purchases back counts DECAY ** n
WEIGHT = 0.1  # of the index scores' spread
RERANK_CANDIDATES = 100


def ease_weights(matrix: sp.csr_matrix, l2: float) -> np.ndarray:
    """EASE's closed form for a customers x items purchase matrix: (items, items), zero diagonal."""
    gram = (matrix.T @ matrix).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)
    np.fill_diagonal(weights, 0.0)
    return weights.astype(np.float32)


def _strongest(weights: np.ndarray, keep: int) -> np.ndarray:
    """``weights`` with all but each row's ``keep`` largest magnitudes set to zero."""
    if weights.shape[1] <= keep:
        return weights
    top = np.argpartition(-np.abs(weights), keep - 1, axis=1)[:, :keep]
    kept = np.zeros_like(weights)
    np.put_along_axis(kept, top, np.take_along_axis(weights, top, axis=1), axis=1)
    return kept


@dataclass(frozen=True)
class ItemItem:
    """``weights[i, j]``: what having bought item i adds to item j (item positions); ``scale``:
    what the sum is multiplied by so that it weighs ``WEIGHT`` of the index scores' spread."""

    weights: sp.csr_matrix
    scale: float = 1.0

    @classmethod
    def fit(
        cls, histories: Sequence[Sequence[int]], n_items: int, max_items: int = MAX_ITEMS, keep: int = KEEP
    ) -> ItemItem:
        """EASE on ``histories`` (item positions, each customer's purchases), over the
        ``max_items`` most bought items."""
        lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
        items = np.fromiter(chain.from_iterable(histories), dtype=np.int64, count=int(lengths.sum()))
        counts = np.bincount(items, minlength=n_items)
        covered = np.argsort(-counts, kind="stable")[: min(max_items, int((counts > 0).sum()))]
        if len(covered) < 2:
            return cls(sp.csr_matrix((n_items, n_items), dtype=np.float32))
        column = np.full(n_items, -1)
        column[covered] = np.arange(len(covered))
        customers, columns = np.repeat(np.arange(len(histories)), lengths), column[items]
        kept = columns >= 0
        bought = sp.csr_matrix(
            (np.ones(int(kept.sum()), np.float32), (customers[kept], columns[kept])),
            shape=(len(histories), len(covered)),
        )
        bought.data[:] = 1.0  # bought twice is bought
        small = sp.coo_matrix(_strongest(ease_weights(bought, L2), keep))
        full = sp.csr_matrix(
            (small.data, (covered[small.row], covered[small.col])), shape=(n_items, n_items), dtype=np.float32
        )
        return cls(full)

    def scores(self, history: Sequence[int], rows: np.ndarray) -> np.ndarray:
        """What ``history`` (item positions, oldest first) adds to the items at ``rows``."""
        if not len(history) or self.weights.nnz == 0:
            return np.zeros(len(rows), np.float32)
        recency: dict[int, float] = {}
        for age, item in enumerate(reversed(history)):
            recency.setdefault(int(item), DECAY**age)  # an item's latest purchase counts
        items = np.fromiter(recency, dtype=np.int64, count=len(recency))
        weights = np.fromiter(recency.values(), dtype=np.float32, count=len(recency))
        block = self.weights[items][:, rows]
        return (self.scale * (block.T @ weights)).astype(np.float32)

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The sparse matrix as plain arrays, for an .npz file (no pickle)."""
        w = self.weights
        return {
            f"{prefix}data": w.data,
            f"{prefix}indices": w.indices,
            f"{prefix}indptr": w.indptr,
            f"{prefix}scale": np.array([self.scale], np.float64),
        }

    @classmethod
    def from_arrays(cls, data: Any, prefix: str, n_items: int) -> ItemItem | None:
        """What ``arrays`` wrote (``data``: the opened .npz), or None when the file has none (a
        model saved before)."""
        if f"{prefix}data" not in data.files:
            return None
        weights = sp.csr_matrix(
            (data[f"{prefix}data"], data[f"{prefix}indices"], data[f"{prefix}indptr"]),
            shape=(n_items, n_items),
        )
        return cls(weights, float(data[f"{prefix}scale"][0]))
