"""The model lifecycle: metrics against hand-computed values, a synthetic signal found and a
shuffled-label control not, reproducible seeds, the promotion gate, hot reload that survives a
bad artifact, and `smartmkt eval`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import roc_auc_score
from sqlalchemy import Engine, event

from smartmkt.lifecycle.hot_swap import ServedModel
from smartmkt.nlu.evaluate import intent_auc
from smartmkt.predict.evaluate import figures
from smartmkt.predict.history import Window
from smartmkt.predict.train import Examples, examples, fit_examples, training_windows
from smartmkt.recommend.evaluate import ranking_figures, recall_curve
from smartmkt.store import model_registry


# --- metrics by hand -----------------------------------------------------------------------------
def test_classification_figures_by_hand() -> None:
    score = np.array([0.9, 0.8, 0.7, 0.4, 0.3, 0.1])
    actual = np.array([2.0, 0.0, 1.0, 1.0, 0.0, 0.0])  # bought: T F T T F F
    expected = np.array([1.5, 0.5, 1.0, 0.0, 0.0, 0.5])
    got = figures(score, expected, actual, threshold=0.5)
    # chosen: T T T F F F -> TP 2, FP 1, FN 1, TN 2
    assert got["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    assert got["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert got["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert got["f1"] == pytest.approx(2 / 3, abs=1e-4)
    # positive/negative pairs ranked right: (0.9 beats 3), (0.7 beats 0.3, 0.1), (0.4 beats 0.3, 0.1)
    assert got["auc"] == pytest.approx(7 / 9, abs=1e-4)
    assert got["mae"] == pytest.approx((0.5 + 0.5 + 0 + 1 + 0 + 0.5) / 6, abs=1e-4)
    assert got["aggregate_error"] == pytest.approx((3.5 - 4) / 4, abs=1e-4)


def test_ranking_figures_and_recall_curve_by_hand() -> None:
    test = {1: [10, 11], 2: [20]}
    recommended = {1: [11, 5, 10], 2: [7, 8, 9]}
    got = ranking_figures(recommended, test, catalog=12, k=3)
    assert got["recall@3"] == pytest.approx((1.0 + 0.0) / 2)
    dcg = 1 + 1 / np.log2(4)
    assert got["ndcg@3"] == pytest.approx(round((dcg / (1 + 1 / np.log2(3)) + 0) / 2, 4))
    assert got["coverage@3"] == pytest.approx(round(6 / 12, 4))
    assert recall_curve(recommended, test, ks=(1, 2, 3)) == {1: 0.25, 2: 0.25, 3: 0.5}


def test_intent_auc_by_hand() -> None:
    gold = ["greet", "greet", "buy"]
    ranking = [[("greet", 0.9), ("buy", 0.1)], [("buy", 0.6), ("greet", 0.4)], [("buy", 0.7)]]
    predictions = [{"intent_ranking": [{"name": n, "confidence": c} for n, c in r]} for r in ranking]
    # greet: positives 0.9, 0.4 vs negative 0.0 -> 1.0; buy: positive 0.7 vs 0.1, 0.6 -> 1.0
    assert intent_auc(gold, predictions) == 1.0
    swapped = [{"intent_ranking": [{"name": "buy", "confidence": 0.9}]}, *predictions[1:]]
    # greet: 0.0 and 0.4 vs 0.0 -> (0.5 + 1) / 2; buy: 0.7 vs 0.9 and 0.6 -> 0.5
    assert intent_auc(gold, swapped) == pytest.approx((0.75 + 0.5) / 2)


# --- the purchase model finds a real signal and no fake one -------------------------------------
START = datetime(2020, 1, 1)
HOLDOUT = Window(START + timedelta(weeks=34), 4.0)


def _rates(customers: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.003, 0.12, customers)


def _synthetic_store(customers: int = 400, seed: int = 3) -> pl.DataFrame:
    """Each customer buys on a day with their own fixed probability: the past predicts the future."""
    rng = np.random.default_rng(seed)
    rates = _rates(customers, seed)
    rng.uniform(size=customers)  # the draw _rates made
    rows = []
    for customer, rate in enumerate(rates, start=1):
        for offset in np.flatnonzero(rng.random(38 * 7) < rate):
            rows.append(
                (customer, date(2020, 1, 1) + timedelta(days=int(offset)), 1, float(rng.uniform(5, 50)))
            )
    return pl.DataFrame(rows, schema=["customer_id", "day", "quantity", "amount"], orient="row")


def _shuffle_labels(parts: list[Examples]) -> None:
    """The control: every label moved to a random example of any window, so nothing a model can
    see (history, horizon) says anything about it."""
    purchases = np.concatenate([p.purchases for p in parts])
    spend = np.concatenate([p.spend for p in parts])
    order = np.random.default_rng(0).permutation(len(purchases))
    start = 0
    for part in parts:
        stop = start + len(part.purchases)
        part.purchases, part.spend = purchases[order[start:stop]], spend[order[start:stop]]
        start = stop


def _holdout_predictions(days: pl.DataFrame, shuffle_labels: bool) -> tuple[np.ndarray, np.ndarray]:
    """(bought in the holdout, predicted P(buys)) of a model trained on the windows before it."""
    parts = [examples(days, w) for w in training_windows(START, HOLDOUT.cutoff, first_cutoff_weeks=4.0)]
    if shuffle_labels:
        _shuffle_labels(parts)
    model = fit_examples(parts, epochs=12, seed=7, threads=1)
    held = examples(days, HOLDOUT)
    return held.purchases > 0, model.predict(held)["p_any"]


def _log_loss(bought: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(np.where(bought, np.log(p), np.log(1 - p))))


def test_the_purchase_model_finds_a_synthetic_signal_and_not_shuffled_labels() -> None:
    days = _synthetic_store()
    held = examples(days, HOLDOUT)
    # the best any model can do: rank by each customer's true daily rate (purchases are random)
    oracle = roc_auc_score(held.purchases > 0, _rates(400, 3)[held.customers.astype(int) - 1])
    bought, real = _holdout_predictions(days, shuffle_labels=False)
    constant = _log_loss(bought, np.full(len(bought), bought.mean()))  # knows the base rate only
    assert roc_auc_score(bought, real) > max(0.75, oracle - 0.03)
    assert _log_loss(bought, real) < constant - 0.05
    # The control learns that nobody can be told apart: near-constant scores (whose residual
    # ordering is whatever the untrained layers left, so its AUC means nothing) and no better
    # than the base rate.
    _, control = _holdout_predictions(days, shuffle_labels=True)
    assert control.std() < 0.1 * real.std()
    assert _log_loss(bought, control) > constant


def test_the_same_seed_gives_the_same_model() -> None:
    days = _synthetic_store(customers=120)
    parts = [examples(days, w) for w in training_windows(START, HOLDOUT.cutoff, first_cutoff_weeks=4.0)]
    held = examples(days, HOLDOUT)
    runs = [fit_examples(parts, epochs=3, seed=s, threads=1).predict(held)["p_any"] for s in (11, 11, 12)]
    assert np.array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


# --- promotion -----------------------------------------------------------------------------------
def _artifact(models_dir: Path, name: str, payload: str) -> Path:
    path = models_dir / "toy" / name
    path.mkdir(parents=True)
    (path / "model.json").write_text(payload)
    return path


def _meta(score: float) -> model_registry.ModelMetadata:
    return model_registry.ModelMetadata("toy", f"fp{score}", "data", {"seed": 1}, {"auc": score}, "auc")


def _difference(low: float, high: float, positives: int = 120) -> model_registry.Comparison:
    return model_registry.Comparison(positives, low, high, confidence=0.95, min_positives=30)


def test_promotion_refuses_a_worse_model_unless_forced(tmp_path: Path) -> None:
    good = _artifact(tmp_path, "good", "{}")
    first = model_registry.promote(tmp_path, good, _meta(0.8), served_score=None)
    assert first.promoted
    worse = _artifact(tmp_path, "worse", "{}")
    refused = model_registry.promote(tmp_path, worse, _meta(0.7), 0.8, comparison=_difference(-0.15, -0.05))
    assert not refused.promoted and refused.decided
    assert (
        "0.7000 < served 0.8000 beyond noise" in refused.reason and "120 held-out positives" in refused.reason
    )
    assert model_registry.served_path(tmp_path, "toy") == good
    assert model_registry.read_metadata(worse).metrics == {"auc": 0.7}  # kept, with its figures
    better = model_registry.promote(tmp_path, worse, _meta(0.9), 0.8, comparison=_difference(0.02, 0.18))
    assert better.promoted and "beyond noise" in better.reason
    assert model_registry.promote(tmp_path, good, _meta(0.1), served_score=0.8, force=True).promoted
    assert model_registry.served_path(tmp_path, "toy") == good


def test_the_gate_cannot_decide_on_noise_or_on_few_positives(tmp_path: Path) -> None:
    """Issue 15: "not promoted (auc 0.3163 < served 0.3599)" on a window holding one purchase."""
    served = _artifact(tmp_path, "served", "{}")
    model_registry.promote(tmp_path, served, _meta(0.36), served_score=None)
    candidate = _artifact(tmp_path, "candidate", "{}")
    few = model_registry.promote(
        tmp_path, candidate, _meta(0.3163), 0.3599, comparison=_difference(-0.3, -0.1, 1)
    )
    assert not few.promoted and not few.decided and few.positives == 1
    assert few.reason.startswith("cannot decide: 1 held-out positives, 30 needed")
    assert "the served model stays" in few.reason
    tie = model_registry.promote(tmp_path, candidate, _meta(0.81), 0.80, comparison=_difference(-0.01, 0.03))
    assert not tie.promoted and not tie.decided and "within noise" in tie.reason
    blind = model_registry.promote(tmp_path, candidate, _meta(0.99), 0.80)  # no paired comparison at all
    assert not blind.promoted and not blind.decided
    assert model_registry.served_path(tmp_path, "toy") == served
    first = model_registry.decide(_meta(0.7), None, comparison=_difference(-0.1, 0.1, 3))
    assert first.promoted and "3 held-out positives only" in first.reason  # something must serve


def test_the_paired_bootstrap_tells_a_real_difference_from_none(base_settings) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.lifecycle.evaluation import compare
    from smartmkt.lifecycle.heldout import Evaluation

    rng = np.random.default_rng(3)
    bought = rng.random(900) < 0.2
    signal = bought * 0.6 + rng.random(900)
    noise = rng.random(900)

    def held(score: np.ndarray) -> Evaluation:
        return Evaluation(
            "purchase", "classification", {}, "", positives=int(bought.sum()), paired=(bought, score)
        )

    better = compare(held(signal), held(noise), base_settings)
    assert better.low > 0.1 and better.positives == int(bought.sum())
    assert roc_auc_score(bought, signal) - roc_auc_score(bought, noise) == pytest.approx(
        (better.low + better.high) / 2, abs=0.03
    )
    same = compare(held(noise), held(noise + rng.normal(0, 1e-3, 900)), base_settings)
    assert same.low <= 0 <= same.high
    assert compare(held(signal), held(noise), base_settings) == better  # fixed seed: reproducible


def test_the_training_gate_compares_on_the_same_held_out_data(
    demo_engine: Engine, tmp_path: Path, base_settings
) -> None:  # type: ignore[no-untyped-def]
    """The real gate: a purchase model trained on shuffled labels loses to the served one."""
    from smartmkt.lifecycle.kinds import PURCHASE
    from smartmkt.lifecycle.training import gate, train
    from smartmkt.predict import scoring
    from smartmkt.predict.history import purchase_days

    settings = base_settings.model_copy(update={"models_dir": tmp_path / "models", "model_cache": ""})
    with _order_reads(demo_engine) as reads:
        served = train(PURCHASE, settings, demo_engine)
    assert served.promoted and served.metrics["auc"] > 0.75
    assert reads == ["fingerprint", "orders"]  # fit, gate and scores share one read of the orders
    meta = model_registry.read_metadata(served.path)
    assert meta is not None and meta.data_fingerprint and meta.params["seed"] == 7 and meta.created_at
    model_registry.metadata_path(served.path).unlink()  # as if served from before metadata.json existed
    again = train(PURCHASE, settings, demo_engine)  # gated again for its figures, not retrained
    refigured = model_registry.read_metadata(served.path)
    assert again.reused and again.promoted and refigured is not None
    assert refigured.metrics["auc"] == pytest.approx(meta.metrics["auc"])

    days = purchase_days(demo_engine)
    split = scoring.holdout_split(days, settings.purchase_horizon_days)
    first_day = datetime.combine(days["day"].min(), datetime.min.time())  # type: ignore[arg-type]
    windows = training_windows(first_day, split.train_until, first_cutoff_weeks=4.0)
    parts = [examples(days, w) for w in windows]
    _shuffle_labels(parts)
    bad = settings.models_dir / "purchase" / "shuffled"
    scoring.save(fit_examples(parts, epochs=4, threads=1), bad)
    candidate = model_registry.ModelMetadata("purchase", "shuffled")
    heldout = PURCHASE.data(settings, demo_engine)
    refused = gate(PURCHASE, heldout, bad, candidate, force=False)
    assert not refused.promoted and refused.decided and "beyond noise" in refused.reason
    assert refused.positives == served.metrics["heldout_positives"] >= settings.gate_min_positives
    assert refused.candidate is not None and refused.served == pytest.approx(served.metrics["auc"])
    assert refused.candidate < refused.served
    assert model_registry.served_path(settings.models_dir, "purchase") == served.path
    assert gate(PURCHASE, heldout, bad, candidate, force=True).promoted
    assert model_registry.served_path(settings.models_dir, "purchase") == bad


@contextmanager
def _order_reads(engine: Engine) -> Iterator[list[str]]:
    """The queries of the orders table while inside: "fingerprint" for the store's fingerprint
    (a count), "orders" for a read of the orders themselves."""
    reads: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args: object) -> None:  # type: ignore[no-untyped-def]
        if "FROM orders" in statement:
            reads.append("fingerprint" if "count(orders.id)" in statement else "orders")

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", seen)


# --- hot reload ----------------------------------------------------------------------------------
def _promote_toy(models_dir: Path, artifact: Path) -> None:
    model_registry.record(models_dir, "toy", artifact, artifact.name)


def test_a_promoted_model_is_swapped_in_and_a_broken_one_is_not(tmp_path: Path) -> None:
    served = ServedModel(tmp_path, "toy", lambda p: json.loads((p / "model.json").read_text()))
    with pytest.raises(FileNotFoundError):
        served.get()
    _promote_toy(tmp_path, _artifact(tmp_path, "v1", '{"version": 1}'))
    assert served.get() == {"version": 1}
    _promote_toy(tmp_path, _artifact(tmp_path, "v2", "{half a file"))
    assert served.get() == {"version": 1}  # the old model keeps serving
    assert served.last_error and "v2" in served.last_error
    assert served.path == tmp_path / "toy" / "v1"
    _promote_toy(tmp_path, _artifact(tmp_path, "v3", '{"version": 3}'))
    assert served.get() == {"version": 3}
    assert served.last_error is None


def test_the_app_keeps_parsing_when_a_promoted_nlu_model_is_broken(tmp_path: Path, base_settings) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.web.app import create_app

    models = tmp_path / "models"
    real = model_registry.served_path(base_settings.models_dir, "nlu")
    (models / "nlu").mkdir(parents=True)
    (models / "nlu" / "good").symlink_to(real, target_is_directory=True)
    model_registry.record(models, "nlu", models / "nlu" / "good", "good")
    settings = base_settings.model_copy(update={"models_dir": models})
    with TestClient(create_app(settings)) as client:
        before = client.post("/model/parse", json={"text": "recommend me a comedy"}).json()
        broken = models / "nlu" / "broken"
        broken.mkdir()
        (broken / "config.json").write_text("not a model")
        model_registry.record(models, "nlu", broken, "broken")
        after = client.post("/model/parse", json={"text": "recommend me a comedy"})
        assert after.status_code == 200 and after.json() == before
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["nlu"] == "good"
        assert "broken" in health["reload_error"]
        model_registry.record(models, "nlu", models / "nlu" / "good", "good")
        assert client.get("/health").json()["reload_error"] is None


# --- smartmkt eval -------------------------------------------------------------------------------
def test_eval_reports_every_model_with_a_plot(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from smartmkt.cli.main import app

    result = CliRunner().invoke(app, ["eval", "--json", "--reports", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {"nlu", "purchase", "recommender"}
    for entry in report.values():  # the shifted demo's windows hold enough positives: no warning
        assert entry["positives"] >= 30 and entry["warning"] is None
    assert report["purchase"]["metrics"]["heldout_positives"] == report["purchase"]["positives"]
    for name in ("accuracy", "precision", "recall", "f1", "auc"):
        assert 0.0 <= report["purchase"]["metrics"][name] <= 1.0
    assert report["nlu"]["metrics"]["intent_auc"] > 0.9
    assert report["recommender"]["metrics"]["ndcg@10"] > 0.1
    curve = report["recommender"]["recall_at_k"]
    assert list(curve.values()) == sorted(curve.values())  # recall never drops as k grows
    for entry in report.values():
        png = Path(entry["plot"])
        assert png.parent == tmp_path and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = CliRunner().invoke(app, ["eval", "--model", "bert"])
    assert bad.exit_code != 0 and "unknown model bert" in bad.output


def test_the_console_flags_figures_on_too_few_positives(tmp_path: Path) -> None:
    from smartmkt.console.dashboard import model_warnings

    few = _artifact(tmp_path, "few", "{}")
    meta = model_registry.ModelMetadata("purchase", "few", metrics={"auc": 0.36, "heldout_positives": 1})
    meta.primary_metric = "auc"
    model_registry.promote(tmp_path, few, meta, served_score=None)
    many = _artifact(tmp_path, "many", "{}")
    figures = {"ndcg@10": 0.25, "heldout_positives": 20_000}
    meta = model_registry.ModelMetadata("recommender", "many", metrics=figures)
    model_registry.promote(tmp_path, many, meta, served_score=None)
    warnings = model_warnings(tmp_path, 30)
    assert set(warnings) == {"purchase"}
    assert warnings["purchase"].startswith("only 1 held-out positives (fewer than 30)")


def test_a_served_nlu_model_that_lacks_new_intents_is_no_yardstick(tmp_path: Path) -> None:
    """A bot that gained an intent needs an NLU model that knows it: the old one's figures on
    the new test messages are not a comparison the gate could keep it on."""
    from smartmkt.lifecycle.evaluation import unknown_to
    from smartmkt.lifecycle.heldout import Evaluation

    gold = ["greet", "choose_offer", "greet"]

    def nlu(labels: set[str]) -> Evaluation:
        return Evaluation(
            "nlu", "classification", {}, "", positives=3, paired=(gold, gold), labels=frozenset(labels)
        )

    assert unknown_to(nlu({"greet"}), nlu({"greet", "choose_offer"})) == ["choose_offer"]
    assert unknown_to(nlu({"greet", "choose_offer"}), nlu({"greet", "choose_offer"})) == []
    why = "the served model does not know choose_offer: nothing comparable served"
    decision = model_registry.decide(_meta(0.9), None, incomparable=why)
    assert decision.promoted and decision.reason == why


def test_the_real_gate_cannot_decide_between_a_model_and_its_copy(tmp_path: Path, base_settings) -> None:  # type: ignore[no-untyped-def]
    """The served NLU model against an identical copy: same figures on the same 219 messages, so
    the paired interval is around zero and the served model stays."""
    from smartmkt.lifecycle.kinds import NLU
    from smartmkt.lifecycle.training import gate

    models = tmp_path / "models"
    real = model_registry.served_path(base_settings.models_dir, "nlu")
    (models / "nlu" / "copy").mkdir(parents=True)
    (models / "nlu" / "served").symlink_to(real, target_is_directory=True)  # only read
    for part in real.iterdir():  # the gate writes the copy's metadata.json: never into the real one
        if part.name != model_registry.METADATA:
            (models / "nlu" / "copy" / part.name).symlink_to(part)
    settings = base_settings.model_copy(update={"models_dir": models, "model_cache": ""})
    meta = model_registry.read_metadata(real)
    assert meta is not None
    model_registry.record(models, "nlu", models / "nlu" / "served", "served")
    copy = model_registry.ModelMetadata("nlu", "copy")
    decision = gate(NLU, NLU.data(settings, None), models / "nlu" / "copy", copy, force=False)
    assert not decision.promoted and not decision.decided and "within noise" in decision.reason
    assert decision.positives == copy.metrics["n"] >= 30
    assert model_registry.served_path(models, "nlu") == models / "nlu" / "served"
    assert model_registry.read_metadata(real) == meta  # the served model's own record is untouched
