"""``smartmkt bench recommend``: top-10 quality on MovieLens-100k (the demo store) against
popularity, ItemKNN, implicit's ALS and EASE on one temporal split, plus FAISS at catalog scale.

Split and figures: smartmkt.recommend.evaluate (each customer's last 20% of purchases held out;
recall, ndcg and coverage at 10). Every model learns from the same training purchases and
recommends 10 products each test customer has not bought yet. The ratio that counts is against
the best standard peer; ``ease_recency`` (EASE fed recency-weighted rows, so it knows the order)
is reported next to it as a sequence-aware reference with its own ratio.

FAISS: 1,000,000 synthetic item vectors drawn around the trained recommender's real item vectors
(each a real item's vector plus noise), indexed the way the product indexes a catalog that size
(IVF above ``faiss_exact_max_items``); single queries shaped like a customer (the mean of a few
items plus noise) with 20 products excluded, as a customer's history would be. Latency is per
query, filter mask included; recall@10 compares the approximate top 10 with exact search.

`smartmkt bench recommend` runs on a scratch store loaded with the demo data for the run
(smartmkt.bench.scratch), never on the product's store; the report states the dates of the
purchases read and of the held-out ones. No held-out purchase at all stops with ``NoPositives``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Engine

from smartmkt.lifecycle.heldout import NoPositives
from smartmkt.recommend.baselines import PEERS, SEQUENCE_AWARE_PEERS, EASERecency
from smartmkt.recommend.evaluate import HOLDOUT_SHARE, K, ranking_figures, temporal_split
from smartmkt.recommend.recommender import Recommender
from smartmkt.store.models import Order
from smartmkt.store.repository import StoreRepository
from smartmkt.store.training_data import purchase_histories

NOISE = 0.5  # synthetic items: a real item's vector + this share of the catalog's spread


def _matrix(
    train: dict[int, list[int]],
    customers: list[int],
    position: dict[int, int],
    n_items: int,
    decay: float | None = None,
) -> sp.csr_matrix:
    """1 where a customer bought an item; with ``decay``, decay ** (purchases since its last
    purchase) instead."""
    cells: dict[tuple[int, int], float] = {}
    for row, customer in enumerate(customers):
        history = train.get(customer, [])
        for age, product in enumerate(reversed(history)):
            cells.setdefault((row, position[product]), decay**age if decay else 1.0)
    rows, cols = zip(*cells, strict=True) if cells else ((), ())
    data = np.fromiter(cells.values(), dtype=np.float32, count=len(cells))
    return sp.csr_matrix((data, (rows, cols)), shape=(len(customers), n_items))


def _peer_top(
    model: Any, matrix: sp.csr_matrix, rows: np.ndarray, ids: np.ndarray, ordered: sp.csr_matrix
) -> list[list[int]]:
    scores = model.scores(ordered if getattr(model, "uses_order", False) else matrix, rows).astype(np.float32)
    bought = matrix[rows].toarray() > 0
    scores[bought] = -np.inf
    top = np.argpartition(-scores, K, axis=1)[:, :K]
    ordered = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
    return [[int(ids[p]) for p in row] for row in ordered]


def _span(moments: list[datetime]) -> dict[str, str]:
    return {"start": f"{min(moments):%Y-%m-%d}", "end": f"{max(moments):%Y-%m-%d}"}


def time_window(moments: dict[int, list[datetime]]) -> dict[str, Any]:
    """The dates of the purchases the benchmark reads and of the held-out ones: the same split as
    ``temporal_split`` (each customer's latest 20%), applied to the purchases' timestamps."""
    _train, held = temporal_split(moments)
    every = [t for ts in moments.values() for t in ts]
    held_out = [t for ts in held.values() for t in ts]
    if not held_out:
        raise NoPositives("no customer has two purchases: there is no held-out purchase to rank")
    return {**_span(every), "heldout": _span(held_out)}


def run_recommend_bench(
    engine: Engine,
    faiss_items: int = 1_000_000,
    exact_max_items: int = 50_000,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    purchases = purchase_histories(engine, Order.product_id, Order.ordered_at)  # the one read
    window = time_window({c: [at for _p, at in bought] for c, bought in purchases.items()})
    items = StoreRepository(engine).all_products()
    ids = np.array([it.id for it in items])
    position = {int(pid): i for i, pid in enumerate(ids)}
    train, test = temporal_split({c: [p for p, _at in bought] for c, bought in purchases.items()})
    customers = sorted(train)
    matrix = _matrix(train, customers, position, len(items))
    ordered = _matrix(train, customers, position, len(items), decay=EASERecency().decay)
    test_rows = np.array([customers.index(c) for c in test])
    models: dict[str, Any] = {}
    for peer_type in (*PEERS, *SEQUENCE_AWARE_PEERS):
        peer = peer_type()
        say(f"fitting {peer.name}")
        started = time.perf_counter()
        peer.fit(matrix)
        recommended: dict[int, list[int]] = {}
        for start in range(0, len(test_rows), 256):
            rows = test_rows[start : start + 256]
            for row, top in zip(rows, _peer_top(peer, matrix, rows, ids, ordered), strict=True):
                recommended[customers[row]] = top
        models[peer.name] = {
            **ranking_figures(recommended, test, len(items)),
            "seconds": round(time.perf_counter() - started, 1),
        }
    say("fitting smartmkt (sequence + collaborative + text embeddings, FAISS)")
    started = time.perf_counter()
    recommender = Recommender.fit(items, [train[c] for c in customers], exact_max_items=exact_max_items)
    recommended = {c: [r.product_id for r in recommender.recommend(train[c], k=K)] for c in test}
    models["smartmkt"] = {
        **ranking_figures(recommended, test, len(items)),
        "seconds": round(time.perf_counter() - started, 1),
    }
    standard = {p.name for p in PEERS}
    best_peer = max((m["ndcg@10"], name) for name, m in models.items() if name in standard)
    reference = models[EASERecency.name]["ndcg@10"]
    say(f"FAISS at {faiss_items:,} items")
    return {
        "split": f"temporal: each customer's last {HOLDOUT_SHARE:.0%} of purchases held out "
        f"({sum(len(t) for t in test.values())} purchases of {len(test)} customers)",
        "window": window,
        "k": K,
        "models": models,
        "smartmkt_vs_best_peer": {
            "peer": best_peer[1],
            "ndcg_ratio": round(models["smartmkt"]["ndcg@10"] / best_peer[0], 3),
        },
        "smartmkt_vs_sequence_aware_reference": {
            "peer": EASERecency.name,
            "ndcg_ratio": round(models["smartmkt"]["ndcg@10"] / reference, 3),
        },
        "faiss": faiss_scale(faiss_items, recommender.index_vectors(), exact_max_items),
    }


def _synthetic_vectors(
    n: int, base: np.ndarray, rng: np.random.Generator, noise: float = NOISE
) -> np.ndarray:
    """``n`` vectors like ``base`` (the real catalog's item vectors): each a real item's vector
    plus Gaussian noise of ``noise`` times that dimension's spread across the catalog."""
    spread = base.std(axis=0).astype(np.float32)
    vectors = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        which = rng.integers(0, len(base), stop - start)
        jitter = rng.standard_normal((stop - start, base.shape[1]), dtype=np.float32)
        vectors[start:stop] = base[which] + noise * spread * jitter
    return vectors


def faiss_scale(
    n: int, base: np.ndarray, exact_max_items: int, queries: int = 300, seed: int = 5
) -> dict[str, Any]:
    import faiss

    from smartmkt.recommend.index import ItemIndex

    rng = np.random.default_rng(seed)
    dim = base.shape[1]
    vectors = _synthetic_vectors(n, base, rng)
    started = time.perf_counter()
    index = ItemIndex(vectors, exact_max_items=exact_max_items)
    build_s = time.perf_counter() - started
    picks = rng.integers(0, n, (queries, 5))
    query_vectors = vectors[picks].mean(axis=1) + 0.3 * rng.standard_normal((queries, dim), dtype=np.float32)
    excluded = rng.integers(0, n, (queries, 20))
    latencies, found = [], []
    everything = np.ones(n, dtype=bool)
    for q in range(queries):
        started = time.perf_counter()
        mask = everything.copy()  # as Recommender._search builds it for each request
        mask[excluded[q]] = False
        _, positions = index.search(query_vectors[q], K, allowed=mask)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(positions[0])
    exact = faiss.IndexFlatIP(dim)
    exact.add(vectors)
    recalls = []
    for q in range(queries):
        selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(excluded[q].astype(np.int64)))
        _, truth = exact.search(query_vectors[q : q + 1], K, params=faiss.SearchParameters(sel=selector))  # type: ignore[call-arg]
        recalls.append(len(set(truth[0]) & set(found[q])) / K)
    return {
        "items": n,
        "dim": dim,
        "index": f"IVF{index.index.nlist},Flat nprobe={index.index.nprobe}" if index.approximate else "Flat",  # type: ignore[attr-defined]
        "build_s": round(build_s, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "recall@10_vs_exact": round(float(np.mean(recalls)), 4),
        "queries": queries,
    }
