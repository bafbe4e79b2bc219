"""FAISS inner-product index over item vectors: exact below a size threshold, IVF above.

Wraps trained vectors rather than living inside a model (the seam `implicit` uses), and
filters at search time with a FAISS bitmap ID selector so filtered-out items never take a slot.
"""

from __future__ import annotations

import math

import faiss
import numpy as np


class ItemIndex:
    """Maximum-inner-product search over rows of ``vectors``; ids are row positions."""

    def __init__(
        self, vectors: np.ndarray, exact_max_items: int = 50_000, nprobe: int = 16, seed: int = 7
    ) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.size, self.dim = vectors.shape
        self.approximate = self.size > exact_max_items
        self.index: faiss.Index
        if self.approximate:
            nlist = int(4 * math.sqrt(self.size))
            quantizer = faiss.IndexFlatIP(self.dim)
            ivf = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = vectors[
                np.random.default_rng(seed).choice(self.size, size=min(self.size, nlist * 40), replace=False)
            ]
            ivf.train(sample)
            ivf.add(vectors)
            ivf.nprobe = nprobe
            self.index = ivf
        else:
            self.index = faiss.IndexFlatIP(self.dim)
            self.index.add(vectors)

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, positions) per query row; ``allowed`` (a boolean mask over the rows,
        or their positions) restricts the search to those items.

        Positions are -1 where fewer than ``k`` items qualify.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        k = max(1, min(k, self.size))
        if allowed is None:
            return self.index.search(queries, k)  # type: ignore[no-any-return]
        mask = np.asarray(allowed)
        if mask.dtype != bool:
            mask = np.zeros(self.size, dtype=bool)
            mask[np.asarray(allowed, dtype=np.int64)] = True
        if not mask.any():
            return (
                np.full((len(queries), k), -np.inf, dtype=np.float32),
                np.full((len(queries), k), -1, dtype=np.int64),
            )
        if mask.all():
            return self.index.search(queries, k)  # type: ignore[no-any-return]
        # a bitmap costs size/8 bytes whatever is allowed; a batch selector hashes every allowed
        # id, which at a million items costs more than the search itself
        bitmap = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(len(bitmap), faiss.swig_ptr(bitmap))
        params: faiss.SearchParameters
        if self.approximate:
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nprobe)  # type: ignore[attr-defined,call-arg]
        else:
            params = faiss.SearchParameters(sel=selector)  # type: ignore[call-arg]
        return self.index.search(queries, k, params=params)  # type: ignore[no-any-return]
