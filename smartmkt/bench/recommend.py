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
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import scipy.sparse as sp
from sqlalchemy import Engine

from smartmkt.bench.protocols import Budget, Protocol, leave_one_out_protocol, temporal_protocol
from smartmkt.bench.recbole_peers import GRIDS, KEYS, official_sasrec, run_peer
from smartmkt.catalog import CatalogItem
from smartmkt.lifecycle.heldout import NoPositives
from smartmkt.recommend.baselines import (
    ALS,
    EASE,
    PEERS,
    SEQUENCE_AWARE_PEERS,
    EASERecency,
    ItemKNN,
    Popularity,
)
from smartmkt.recommend.evaluate import K, mean_ndcg, ndcg_standard_error, ranking_figures, temporal_split
from smartmkt.recommend.recommender import Recommender
from smartmkt.recommend.sequential import SequenceConfig
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


# The in-house peers' grids (at most GRID_SIZE configurations each, like every model's).
INHOUSE_GRIDS: dict[type, list[dict[str, Any]]] = {
    Popularity: [{}],
    ItemKNN: [{"neighbours": n, "shrink": s} for n in (100, 400) for s in (10.0, 100.0)],
    ALS: [{"factors": f, "regularization": r} for f in (64, 128) for r in (0.05, 0.5)],
    EASE: [{"l2": l2} for l2 in (100.0, 250.0, 500.0, 1000.0)],
    EASERecency: [{"l2": l2, "decay": d} for l2 in (250.0, 500.0) for d in (0.9, 0.97)],
}
# smartmkt's grid: how far ahead the sequence transformer learns to look (the next purchase, or
# each of the next few); the first is the product's default.
SMARTMKT_GRID: list[dict[str, Any]] = [{"horizon": h} for h in (1, 2, 3, 5)]
LATENCY_SAMPLE = 200


@dataclass
class Ranked:
    """One model's answer on one protocol: each test customer's top 10 and what it cost."""

    top: dict[int, list[int]]
    chosen: dict[str, Any]
    valid_ndcg: float
    train_seconds: float
    latency_ms: float
    extra: dict[str, Any] = field(default_factory=dict)


def _median_ms(call: Callable[[int], Any], users: list[int]) -> float:
    """Median time to rank for one customer alone (as a chat request would), over a sample."""
    times = []
    for user in users[:LATENCY_SAMPLE]:
        started = time.perf_counter()
        call(user)
        times.append((time.perf_counter() - started) * 1000)
    return round(float(np.median(times)), 2) if times else 0.0


class _Catalog:
    """The product ids and their columns in the customer x item matrices."""

    def __init__(self, items: list[CatalogItem]) -> None:
        self.items = items
        self.ids = np.array([it.id for it in items])
        self.position = {int(pid): i for i, pid in enumerate(self.ids)}

    def matrix(
        self, histories: dict[int, list[int]], customers: list[int], decay: float | None = None
    ) -> sp.csr_matrix:
        return _matrix(histories, customers, self.position, len(self.items), decay)


@dataclass
class _Fitted:
    """An in-house peer fitted on some histories, with the customer rows of its matrices."""

    peer: Any
    customers: list[int]
    seconds: float


def _inhouse_fit(
    peer_type: type, config: dict[str, Any], fit: dict[int, list[int]], catalog: _Catalog, also: list[int]
) -> _Fitted:
    """One in-house peer fitted on ``fit``; ``also``: customers it will rank for, given rows."""
    peer = peer_type(**config)
    customers = sorted(set(fit) | set(also))
    started = time.perf_counter()
    peer.fit(catalog.matrix(fit, customers))
    return _Fitted(peer, customers, time.perf_counter() - started)


def _inhouse_rank(
    fitted: _Fitted, query: dict[int, list[int]], users: list[int], catalog: _Catalog
) -> tuple[dict[int, list[int]], Callable[[int], Any]]:
    """Each of ``users``' top 10 from their ``query`` histories, and a one-customer ranker."""
    peer, customers = fitted.peer, fitted.customers
    row = {c: i for i, c in enumerate(customers)}
    binary = catalog.matrix(query, customers)
    # what a sequence-aware peer scores from; the others score from ``binary`` itself
    ordered = (
        catalog.matrix(query, customers, decay=getattr(peer, "decay", None))
        if getattr(peer, "uses_order", False)
        else binary
    )
    top: dict[int, list[int]] = {}
    rows = np.array([row[c] for c in users])
    for start in range(0, len(rows), 256):
        batch = rows[start : start + 256]
        for r, best in zip(batch, _peer_top(peer, binary, batch, catalog.ids, ordered), strict=True):
            top[customers[r]] = best

    def one(customer: int) -> list[list[int]]:
        return _peer_top(peer, binary, np.array([row[customer]]), catalog.ids, ordered)

    return top, one


def _inhouse(
    peer_type: type,
    protocol: Protocol,
    catalog: _Catalog,
    budget: Budget,
    grid: list[dict[str, Any]] | None = None,
) -> Ranked:
    """Tune on the validation split, then fit the winner on the protocol's training histories
    (or keep the tuned one, when the protocol says so)."""
    users = sorted(protocol.test)
    best: tuple[float, dict[str, Any], _Fitted] | None = None
    for config in grid or INHOUSE_GRIDS[peer_type][: budget.configs]:
        fitted = _inhouse_fit(peer_type, config, protocol.tune_train, catalog, users)
        top, _one = _inhouse_rank(fitted, protocol.tune_train, sorted(protocol.tune_heldout), catalog)
        valid = mean_ndcg(top, protocol.tune_heldout)
        if best is None or valid > best[0]:
            best = (valid, config, fitted)  # only the best so far is kept
    assert best is not None
    valid, chosen, fitted = best
    if protocol.fit is not None:
        fitted = _inhouse_fit(peer_type, chosen, protocol.fit, catalog, users)
    top, one = _inhouse_rank(fitted, protocol.query, users, catalog)
    return Ranked(top, chosen, valid, fitted.seconds, _median_ms(one, users))


def _smartmkt_fit(
    catalog: _Catalog, histories: dict[int, list[int]], config: dict[str, Any], exact_max_items: int
) -> Recommender:
    customers = sorted(histories)
    return Recommender.fit(
        catalog.items,
        [histories[c] for c in customers],
        exact_max_items=exact_max_items,
        sequence_config=replace(SequenceConfig(), **config),
    )


def _smartmkt_top(model: Recommender, query: dict[int, list[int]], users: list[int]) -> dict[int, list[int]]:
    return {c: [r.product_id for r in model.recommend(query.get(c, []), k=K)] for c in users}


def _smartmkt(
    protocol: Protocol,
    catalog: _Catalog,
    budget: Budget,
    exact_max_items: int,
    say: Callable[[str], None],
    grid: list[dict[str, Any]] | None,
) -> Ranked:
    """smartmkt tuned like the peers: each configuration of its grid fitted on the tuning
    histories and scored on the validation purchases; the winner fitted on the protocol's."""
    grid = grid or SMARTMKT_GRID[: budget.configs]
    best: tuple[float, float, dict[str, Any], Recommender] | None = None
    for number, config in enumerate(grid):
        started = time.perf_counter()
        model = _smartmkt_fit(catalog, protocol.tune_train, config, exact_max_items)
        seconds = time.perf_counter() - started
        heldout = protocol.tune_heldout
        valid = mean_ndcg(_smartmkt_top(model, protocol.tune_train, sorted(heldout)), heldout)
        say(f"smartmkt {number + 1}/{len(grid)} {config}: valid ndcg@10 {valid:.4f}")
        if best is None or valid > best[0]:
            best = (valid, seconds, config, model)  # only the best so far is kept
    assert best is not None
    valid, seconds, chosen, model = best
    if protocol.fit is not None:
        started = time.perf_counter()
        model = _smartmkt_fit(catalog, protocol.fit, chosen, exact_max_items)
        seconds = time.perf_counter() - started
    users = sorted(protocol.test)
    top = _smartmkt_top(model, protocol.query, users)
    latency = _median_ms(lambda c: model.recommend(protocol.query[c], k=K), users)
    return Ranked(top, chosen, valid, seconds, latency, {"recommender": model})


def _recbole(
    name: str,
    protocol: Protocol,
    budget: Budget,
    say: Callable[[str], None],
    unmasked: bool,
    reuse: bool,
    grid: list[dict[str, Any]] | None,
) -> Ranked:
    answer = run_peer(name, protocol, budget, progress=say, unmasked=unmasked, reuse=reuse, grid=grid)
    extra = {
        "epochs": answer["chosen_epochs"],
        "cached": answer["cached"],
        "tried": answer["tried"],
        "top_unmasked": answer.get("top_unmasked"),
    }
    chosen_valid = max(t["valid_ndcg@10"] for t in answer["tried"])
    return Ranked(
        answer["top"], answer["chosen"], chosen_valid, answer["train_seconds"], answer["latency_ms"], extra
    )


def _figures(ranked: Ranked, protocol: Protocol, catalog_size: int) -> dict[str, Any]:
    figures: dict[str, Any] = {
        **ranking_figures(ranked.top, protocol.test, catalog_size),
        "valid_ndcg@10": round(ranked.valid_ndcg, 4),
        "train_seconds": round(ranked.train_seconds, 1),
        "latency_ms": ranked.latency_ms,
        "chosen": ranked.chosen,
    }
    if "epochs" in ranked.extra:
        figures["chosen_epochs"] = ranked.extra["epochs"]
        figures["configurations_stopped_at_the_epoch_cap"] = sum(
            t["stopped_at_cap"] for t in ranked.extra["tried"]
        )
        figures["reused_from_an_earlier_run"] = ranked.extra["cached"]
    return figures


def run_protocol(
    protocol: Protocol,
    catalog: _Catalog,
    budget: Budget,
    exact_max_items: int,
    recbole_models: tuple[str, ...] = tuple(GRIDS),
    progress: Callable[[str], None] | None = None,
    reuse: bool = True,
    chosen: dict[str, dict[str, Any]] | None = None,
    smartmkt_grid: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, Ranked]]:
    """Every model on one protocol: their figures, and what each ranked. ``chosen``: the
    configuration each model chose on another protocol, kept here instead of tuning again (the
    protocol's validation split then only sets RecBole's epochs); ``smartmkt_grid``: what smartmkt
    tries instead of ``SMARTMKT_GRID`` (a test's quick one)."""
    say = progress or (lambda _m: None)
    fixed = {name: [config] for name, config in (chosen or {}).items()}
    ranked: dict[str, Ranked] = {}
    for peer_type in (*PEERS, *SEQUENCE_AWARE_PEERS):
        say(f"{protocol.name}: {peer_type.name}")
        ranked[peer_type.name] = _inhouse(peer_type, protocol, catalog, budget, fixed.get(peer_type.name))
    for model in recbole_models:
        say(f"{protocol.name}: RecBole's {model}")
        key = KEYS[model]
        ranked[key] = _recbole(model, protocol, budget, say, model == "SASRec", reuse, fixed.get(key))
    say(f"{protocol.name}: smartmkt (sequence + collaborative + text embeddings, FAISS)")
    grid = fixed.get("smartmkt", smartmkt_grid)
    ranked["smartmkt"] = _smartmkt(protocol, catalog, budget, exact_max_items, say, grid)
    models = {name: _figures(r, protocol, len(catalog.items)) for name, r in ranked.items()}
    peers = {name: m for name, m in models.items() if name not in ("smartmkt", EASERecency.name)}
    best = max(peers, key=lambda name: peers[name]["ndcg@10"])
    return {
        "split": protocol.description,
        "models": models,
        "smartmkt_vs_best_peer": {
            "peer": best,
            "ndcg_ratio": round(models["smartmkt"]["ndcg@10"] / peers[best]["ndcg@10"], 3),
        },
        "smartmkt_vs_sequence_aware_reference": {
            "peer": EASERecency.name,
            "ndcg_ratio": round(models["smartmkt"]["ndcg@10"] / models[EASERecency.name]["ndcg@10"], 3),
        },
    }, ranked


def run_recommend_bench(
    engine: Engine,
    faiss_items: int = 1_000_000,
    exact_max_items: int = 50_000,
    budget: Budget | None = None,
    recbole_models: tuple[str, ...] = tuple(GRIDS),
    protocols: tuple[str, ...] = ("temporal", "leave_one_out"),
    cross_check: bool = True,
    progress: Callable[[str], None] | None = None,
    reuse: bool = True,
    smartmkt_grid: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Every model on each protocol, tuned on the same budget; the top-level ``models`` are the
    temporal protocol's. ``cross_check`` also runs RecBole's own ``run_recbole`` for SASRec on
    its ML-100k with the configuration the bench chose, to set beside the bench's SASRec.
    ``reuse``: take RecBole's answers from an earlier run of the same jobs (smartmkt.bench.
    recbole_peers keeps them), so a long run stopped half-way resumes."""
    say = progress or (lambda _m: None)
    budget = budget or Budget()
    purchases = purchase_histories(engine, Order.product_id, Order.ordered_at)  # the one read
    window = time_window({c: [at for _p, at in bought] for c, bought in purchases.items()})
    catalog = _Catalog(StoreRepository(engine).all_products())
    histories = {c: [p for p, _at in bought] for c, bought in purchases.items()}
    makers = {"temporal": temporal_protocol, "leave_one_out": leave_one_out_protocol}
    report: dict[str, Any] = {"window": window, "k": K, "tuning": _tuning(budget, protocols), "protocols": {}}
    recommender: Recommender | None = None
    chosen: dict[str, dict[str, Any]] | None = None
    for name in protocols:
        protocol = makers[name](histories)
        figures, ranked = run_protocol(
            protocol, catalog, budget, exact_max_items, recbole_models, say, reuse, chosen, smartmkt_grid
        )
        report["protocols"][name] = figures
        chosen = chosen or {model: r.chosen for model, r in ranked.items()}  # tuned once, on the first
        recommender = recommender or ranked["smartmkt"].extra["recommender"]
        if name == "leave_one_out" and "SASRec" in recbole_models:
            sasrec = ranked["sasrec"]
            unmasked = sasrec.extra["top_unmasked"]
            report["protocols"][name]["sasrec_unmasked"] = ranking_figures(
                unmasked, protocol.test, len(catalog.items)
            )
            if cross_check:
                say("RecBole's own run_recbole for SASRec (the cross-check)")
                report["recbole_cross_check"] = official_sasrec(
                    sasrec.chosen,
                    budget,
                    report["protocols"][name]["sasrec_unmasked"],
                    ndcg_standard_error(unmasked, protocol.test),
                    reuse,
                )
    first = report["protocols"][protocols[0]]
    report.update(
        split=first["split"],
        models=first["models"],
        smartmkt_vs_best_peer=first["smartmkt_vs_best_peer"],
        smartmkt_vs_sequence_aware_reference=first["smartmkt_vs_sequence_aware_reference"],
    )
    say(f"FAISS at {faiss_items:,} items")
    assert recommender is not None
    report["faiss"] = faiss_scale(faiss_items, recommender.index_vectors(), exact_max_items)
    return report


def _tuning(budget: Budget, protocols: tuple[str, ...]) -> dict[str, Any]:
    return {
        "configurations_per_model": budget.configs,
        "chosen_on": f"ndcg@10 on the {protocols[0]} protocol's validation split, carved from its "
        "training period (the test purchases are never read)"
        + (f"; {', '.join(protocols[1:])} keeps each model's choice" if len(protocols) > 1 else ""),
        "recbole_epochs": f"at most {budget.max_epochs}, stopping after {budget.patience} "
        "without a better validation ndcg@10",
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
