"""The recommender bench's protocols and its RecBole peers, run by RecBole itself (.venv-recbole).

The RecBole tests train real RecBole models on small made-up histories where the next purchase
follows from the last one, so a sequence model that learns anything ranks it first, and check
what comes back: product ids, ten per customer, never one of the customer's own purchases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from smartmkt.bench.protocols import Budget, leave_one_out_protocol, temporal_protocol
from smartmkt.bench.recbole_peers import RecBoleMissing, recbole_python, run_peer
from smartmkt.recommend.evaluate import ranking_figures
from smartmkt.settings import get_settings

CATALOG = 60


def test_temporal_protocol_tunes_inside_the_training_period() -> None:
    protocol = temporal_protocol({1: list(range(10)), 2: [5]})
    assert protocol.test == {1: [8, 9]}
    assert protocol.fit == protocol.query == {1: list(range(8)), 2: [5]}
    assert protocol.tune_heldout == {1: [6, 7]}  # the last fifth of the training period
    assert protocol.tune_train[1] == list(range(6))
    assert not set(protocol.tune_heldout[1]) & set(protocol.test[1])


def test_leave_one_out_protocol_is_recboles() -> None:
    protocol = leave_one_out_protocol({1: [4, 5, 6, 7], 2: [1, 2]})
    assert protocol.test == {1: [7]} and protocol.tune_heldout == {1: [6]}
    assert protocol.tune_train == {1: [4, 5], 2: [1, 2]}  # too short to hold anything out
    assert protocol.fit is None  # the tuned model is kept, as RecBole's protocol does
    assert protocol.query == {1: [4, 5, 6]}  # the validation purchase is history at test time


def _walks(customers: int = 150, length: int = 15, seed: int = 3) -> dict[int, list[int]]:
    """Each customer buys consecutive products (mod the catalog) from a random start: product ids
    100..159, so an id mix-up between the bench and RecBole's own ids would show."""
    rng = np.random.default_rng(seed)
    return {
        c: [100 + (int(start) + i) % CATALOG for i in range(length)]
        for c, start in enumerate(rng.integers(0, CATALOG, customers), start=1)
    }


def _check_answer(answer: dict, protocol) -> None:  # type: ignore[no-untyped-def]
    assert set(answer["top"]) == set(protocol.test)
    for customer, top in answer["top"].items():
        assert len(top) == 10 and len(set(top)) == 10
        assert all(100 <= p < 100 + CATALOG for p in top)
        assert not set(top) & set(protocol.query[customer])  # never what they bought


@pytest.mark.usefixtures("private_var_dir")
def test_recbole_sasrec_learns_what_comes_next() -> None:
    protocol = temporal_protocol(_walks())
    answer = run_peer("SASRec", protocol, Budget(configs=1, max_epochs=6, patience=6), reuse=False)
    _check_answer(answer, protocol)
    figures = ranking_figures(answer["top"], protocol.test, CATALOG)
    # the 3 held-out purchases are the next 3 products: a model that learned the walk finds them
    # (chance would put them in a top 10 of the 48 products not bought with recall ~0.2)
    assert figures["recall@10"] > 0.6, figures
    assert answer["chosen"] == {
        "learning_rate": 1e-3,
        "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2,
        "train_batch_size": 512,
    }
    assert 1 <= answer["chosen_epochs"] <= 6 and len(answer["tried"]) == 1
    assert answer["tried"][0]["stopped_at_cap"] == (answer["chosen_epochs"] == 6)
    assert answer["train_seconds"] > 0 and answer["latency_ms"] > 0


@pytest.mark.usefixtures("private_var_dir")
def test_recbole_general_model_on_leave_one_out() -> None:
    protocol = leave_one_out_protocol(_walks(customers=80))
    answer = run_peer(
        "BPR", protocol, Budget(configs=2, max_epochs=2, patience=1), unmasked=True, reuse=False
    )
    _check_answer(answer, protocol)
    assert len(answer["tried"]) == 2  # the budget's two configurations, each measured on validation
    assert all(0 <= t["valid_ndcg@10"] <= 1 for t in answer["tried"])
    # two epochs at most: a configuration still improving at the second was stopped by the cap
    assert all(t["stopped_at_cap"] == (t["epochs"] == 2) for t in answer["tried"])
    unmasked = answer["top_unmasked"]
    assert set(unmasked) == set(protocol.test) and all(len(t) == 10 for t in unmasked.values())


def test_a_missing_recbole_environment_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SMARTMKT_PROJECT_ROOT", str(tmp_path))
    get_settings.cache_clear()  # type: ignore[attr-defined]
    try:
        with pytest.raises(RecBoleMissing, match="make setup"):
            recbole_python()
    finally:
        monkeypatch.delenv("SMARTMKT_PROJECT_ROOT")
        get_settings.cache_clear()  # type: ignore[attr-defined]


def test_an_answer_is_reused_only_for_the_same_job(private_var_dir: Path) -> None:
    """A long bench stopped half-way resumes: the same job (data, configuration, budget, code) is
    answered from the earlier run, and says so; another job runs RecBole again."""
    protocol = temporal_protocol(_walks(customers=40))
    budget = Budget(configs=1, max_epochs=1, patience=1)
    first = run_peer("BPR", protocol, budget)
    again = run_peer("BPR", protocol, budget)
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["top"] == first["top"] and again["tried"] == first["tried"]
    # one answer per configuration, one for the final training
    kept = sorted(
        f.name.split("-")[1] for f in (private_var_dir / "cache" / "bench" / "recbole").glob("BPR-*.json")
    )
    assert kept == ["final", "tune"]
    other = run_peer("BPR", temporal_protocol(_walks(customers=41)), budget)
    assert other["cached"] is False
