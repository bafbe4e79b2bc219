"""The recommender benchmark's parts: the split, the figures, the peers, FAISS at scale."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest
import scipy.sparse as sp
from sqlalchemy import Engine

from smartmkt.bench.protocols import Budget
from smartmkt.bench.recbole_peers import cross_check_verdict
from smartmkt.bench.recommend import faiss_scale, run_recommend_bench
from smartmkt.data.demo import demo_shift
from smartmkt.recommend.baselines import ALS, EASE, ItemKNN, Popularity
from smartmkt.recommend.evaluate import ndcg_standard_error, ranking_figures, temporal_split


def test_temporal_split_holds_out_the_latest_fifth() -> None:
    train, test = temporal_split({1: list(range(10)), 2: [7], 3: [1, 2, 3]})
    assert (train[1], test[1]) == (list(range(8)), [8, 9])
    assert train[2] == [7] and 2 not in test  # one purchase: nothing to hold out
    assert (train[3], test[3]) == ([1, 2], [3])


def test_ranking_figures_by_hand() -> None:
    recommended = {1: [5, 6, 7], 2: [9]}
    test = {1: [6, 8], 2: [1]}
    figures = ranking_figures(recommended, test, catalog=10)
    assert figures["recall@10"] == pytest.approx((1 / 2 + 0) / 2, abs=1e-4)
    ndcg_1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert figures["ndcg@10"] == pytest.approx(ndcg_1 / 2, abs=1e-4)
    assert figures["coverage@10"] == pytest.approx(0.4)


def test_ndcg_standard_error_by_hand() -> None:
    # customer 1's ndcg is 1 (its one purchase first), customer 2's 0: std 0.7071, over sqrt(2)
    se = ndcg_standard_error({1: [4, 5], 2: [5]}, {1: [4], 2: [9]})
    assert se == pytest.approx(math.sqrt(0.5) / math.sqrt(2))
    assert math.isnan(ndcg_standard_error({1: [4]}, {1: [4]}))  # one customer: no spread to read


def test_the_cross_check_tells_noise_from_a_weaker_wrapper() -> None:
    """Two trainings ranking the same customers: a difference inside 1.96 x sqrt(2) standard
    errors is noise, one outside it says the bench's SASRec is not RecBole's."""
    close = cross_check_verdict(0.100, 0.104, standard_error=0.005)  # band 0.0139
    assert close["within_noise"] and close["noise_band_95"] == pytest.approx(0.0139, abs=1e-4)
    assert close["ndcg_difference"] == pytest.approx(-0.004)
    weaker = cross_check_verdict(0.080, 0.104, standard_error=0.005)
    assert not weaker["within_noise"] and weaker["ndcg_ratio_bench_to_run_recbole"] == pytest.approx(0.769)


@pytest.mark.parametrize("peer_type", [Popularity, ItemKNN, EASE, ALS])
def test_peers_learn_co_purchases(peer_type: type) -> None:
    """Items 0 and 1 always go together, 2 and 3 too; a customer with 0 should get 1 first."""
    rows = []
    for _ in range(30):
        rows += [[1, 1, 0, 0, 0], [0, 0, 1, 1, 0]]
    rows += [[0, 0, 0, 0, 1]] * 5 + [[1, 0, 0, 0, 0]]
    matrix = sp.csr_matrix(np.array(rows, dtype=np.float32))
    peer = peer_type()
    peer.fit(matrix)
    scores = peer.scores(matrix, np.array([len(rows) - 1]))[0]
    assert scores.shape == (5,)
    if peer_type is Popularity:
        assert scores[4] < scores[0]
    else:
        assert int(np.argmax(np.where(np.arange(5) == 0, -np.inf, scores))) == 1


def test_faiss_at_scale_is_approximate_and_close_to_exact() -> None:
    base = np.random.default_rng(0).standard_normal((300, 64)).astype(np.float32)
    figures = faiss_scale(20_000, base, exact_max_items=5_000, queries=50)
    assert figures["index"].startswith("IVF")
    assert figures["recall@10_vs_exact"] >= 0.9
    assert figures["p95_ms"] > 0


@pytest.mark.usefixtures("private_var_dir")  # its RecBole answers stay out of var/
def test_bench_recommend_runs_every_model(demo_engine: Engine) -> None:
    """The whole bench on the demo with the smallest budget: one configuration each, RecBole's BPR
    for one epoch (its sequence models are trained in tests/test_recbole_peers.py), smartmkt's
    transformer for 5 epochs (the served model's held-out figure: tests/test_lifecycle.py)."""
    report = run_recommend_bench(
        demo_engine,
        faiss_items=2_000,
        exact_max_items=50_000,
        budget=Budget(configs=1, max_epochs=1, patience=1),
        recbole_models=("BPR",),
        protocols=("temporal",),
        cross_check=False,
        reuse=False,
        smartmkt_grid=[{"epochs": 5}],
    )
    names = {"popularity", "itemknn", "als", "ease", "ease_recency", "bpr", "smartmkt"}
    assert set(report["models"]) == names
    assert report["models"] == report["protocols"]["temporal"]["models"]
    assert report["smartmkt_vs_best_peer"]["peer"] != "ease_recency"  # a reference, not a peer
    for name, m in report["models"].items():
        assert 0 < m["ndcg@10"] < 1 and 0 < m["recall@10"] < 1 and 0 < m["coverage@10"] <= 1, name
        assert 0 < m["valid_ndcg@10"] < 1 and m["latency_ms"] > 0, name
        assert isinstance(m["chosen"], dict), name
    assert report["models"]["bpr"]["chosen_epochs"] == 1
    assert report["models"]["bpr"]["configurations_stopped_at_the_epoch_cap"] == 1  # the cap is 1
    assert report["models"]["smartmkt"]["chosen"] == {"epochs": 5}
    assert report["tuning"]["configurations_per_model"] == 1
    assert report["models"]["popularity"]["ndcg@10"] < report["models"]["ease"]["ndcg@10"]
    # on this split the order of purchases matters: knowing it helps EASE and smartmkt alike
    assert report["models"]["ease_recency"]["ndcg@10"] > report["models"]["ease"]["ndcg@10"]
    assert report["faiss"]["index"] == "Flat" and report["faiss"]["recall@10_vs_exact"] == 1.0
    shift = demo_shift(demo_engine)  # the window is stated: the demo's moved dates
    assert shift is not None and report["window"]["end"] == shift.last_day.isoformat()
    assert report["window"]["start"] == (date(1997, 9, 20) + timedelta(days=shift.days)).isoformat()
    held = report["window"]["heldout"]
    assert report["window"]["start"] <= held["start"] < held["end"] == report["window"]["end"]


class _Sealed(dict):  # type: ignore[type-arg]
    """Held-out purchases whose keys (the customers to rank for) may be read, never the values."""

    def __getitem__(self, key: object) -> list[int]:
        raise AssertionError(f"a model read the test purchases of {key}")

    def values(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("a model read the test purchases")

    def items(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("a model read the test purchases")


def test_in_house_peers_are_tuned_on_validation_only() -> None:
    """An in-house peer keeps the configuration of its grid best on the validation purchases, and
    neither tuning nor fitting reads a test purchase (only who the test customers are)."""
    from smartmkt.bench.protocols import Protocol
    from smartmkt.bench.recommend import INHOUSE_GRIDS, _Catalog, _inhouse
    from smartmkt.catalog import CatalogItem

    items = [
        CatalogItem(id=i, title=f"t{i}", year=2000, genres=("Drama",), price_cents=100) for i in range(1, 16)
    ]
    together = {c: [1, 2] for c in range(1, 40)} | {c: [3, 4] for c in range(40, 60)} | {60: [1]}
    heldout = {c: [2] for c in range(61, 70)}
    tune = together | {c: [1] for c in range(61, 70)}
    protocol = Protocol("made up", "", tune, heldout, together, together, _Sealed({60: [5]}))
    ranked = _inhouse(ItemKNN, protocol, _Catalog(items), Budget(configs=4))
    assert ranked.chosen in INHOUSE_GRIDS[ItemKNN] and 0 < ranked.valid_ndcg <= 1
    assert ranked.top[60][0] == 2  # bought 1: 2 goes with it; 1 itself is never listed
    assert 1 not in ranked.top[60]
    # leave-one-out's way (no ``fit``): the tuned peer itself ranks, from the query histories
    kept = Protocol("kept", "", tune, heldout, None, tune | {60: [3]}, _Sealed({60: [5]}))
    ranked = _inhouse(ItemKNN, kept, _Catalog(items), Budget(configs=4))
    assert ranked.top[60][0] == 4 and 3 not in ranked.top[60]


def test_the_ordered_matrix_weights_the_latest_purchase_of_each_item() -> None:
    from smartmkt.bench.recommend import _matrix

    train = {7: [10, 11, 10, 12], 8: [11]}
    position = {10: 0, 11: 1, 12: 2}
    binary = _matrix(train, [7, 8], position, 3).toarray()
    ordered = _matrix(train, [7, 8], position, 3, decay=0.9).toarray()
    assert binary.tolist() == [[1, 1, 1], [0, 1, 0]]
    assert ordered[0] == pytest.approx([0.9, 0.81, 1.0])  # 10 bought 1 purchase ago, 11 two, 12 last
    assert ordered[1] == pytest.approx([0, 1, 0])
