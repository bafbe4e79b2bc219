"""The peers the recommender is measured against: popularity, ItemKNN, implicit's ALS and EASE,
all fed the same customer x item purchase matrix and asked for the same top-k.

Each ``fit`` takes a CSR matrix (customers x items, 1 where bought); ``scores`` returns a dense
(customers x items) score block for a batch of customer rows. Items already bought are removed
by the caller, the same way for every model.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from smartmkt.recommend.item_item import ease_weights


class Popularity:
    name = "popularity"

    def fit(self, matrix: sp.csr_matrix) -> None:
        self.counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float32)

    def scores(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.counts, (len(rows), 1))


class ItemKNN:
    """Cosine item-item similarity, each item keeping its ``neighbours`` most similar items."""

    name = "itemknn"

    def __init__(self, neighbours: int = 100, shrink: float = 10.0) -> None:
        self.neighbours, self.shrink = neighbours, shrink

    def fit(self, matrix: sp.csr_matrix) -> None:
        x = matrix.astype(np.float32).tocsc()
        co = (x.T @ x).toarray()
        norms = np.sqrt(np.diag(co))
        sim = co / (np.outer(norms, norms) + self.shrink + 1e-9)
        np.fill_diagonal(sim, 0.0)
        if self.neighbours < sim.shape[0]:
            cut = np.argpartition(-sim, self.neighbours, axis=0)[self.neighbours :, :]
            np.put_along_axis(sim, cut, 0.0, axis=0)
        self.similarity = sim.astype(np.float32)

    def scores(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        return np.asarray(matrix[rows] @ self.similarity)


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): a closed-form item-item model."""

    name = "ease"

    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = l2

    def fit(self, matrix: sp.csr_matrix) -> None:
        self.weights = ease_weights(matrix, self.l2)

    def scores(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        return np.asarray(matrix[rows] @ self.weights)


class EASERecency(EASE):
    """EASE scored from recency-weighted customer rows (an item bought n purchases ago counts
    ``decay ** n``): a sequence-aware reference, fed the ordered matrix by the benchmark. Not one
    of the issue's standard peers; reported so the sequential model is also measured against a
    strong model that knows the order."""

    name = "ease_recency"
    uses_order = True

    def __init__(self, l2: float = 500.0, decay: float = 0.9) -> None:
        super().__init__(l2)
        self.decay = decay


class ALS:
    """Implicit-feedback matrix factorisation from the ``implicit`` package (CPU)."""

    name = "als"

    def __init__(
        self, factors: int = 64, regularization: float = 0.05, iterations: int = 20, alpha: float = 2.0
    ) -> None:
        self.factors, self.regularization, self.iterations, self.alpha = (
            factors,
            regularization,
            iterations,
            alpha,
        )

    def fit(self, matrix: sp.csr_matrix) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self.model = AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            iterations=self.iterations,
            alpha=self.alpha,
            random_state=7,
        )
        self.model.fit(matrix.astype(np.float32), show_progress=False)

    def scores(self, matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.user_factors[rows] @ self.model.item_factors.T)


PEERS = (Popularity, ItemKNN, ALS, EASE)
SEQUENCE_AWARE_PEERS = (EASERecency,)
