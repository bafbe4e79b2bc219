"""Held-out evaluation of every trained model, used by `smartmkt eval` and by the promotion gate.

Each kind has one held-out set, so a candidate and the served model are always measured on the
same data:
  nlu          bot/tests/nlu_test.yml, never trained on      classification (intent)
  purchase     the store's latest H days, after training      classification (buys at all) + counts
  recommender  each customer's latest 20% of purchases        ranking (recall/ndcg/coverage @10)
The served models are trained without their held-out data (smartmkt.lifecycle.training), so the figures
of what is served are honest ones.

Each evaluation counts the held-out positives its figures rest on (test messages, buyers in the
purchase window, held-out purchases). None at all stops with ``NoPositives``: there is nothing to
measure. Fewer than ``gate_min_positives`` is reported with a warning, and the promotion gate
cannot decide on them. ``compare`` gives the gate a paired bootstrap interval of the difference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from smartmkt.settings import Settings
from smartmkt.store import model_registry

PRIMARY_METRIC = {"nlu": "intent_macro_f1", "purchase": "auc", "recommender": "ndcg@10"}
EVALUATED_KINDS = tuple(PRIMARY_METRIC)


class NoPositives(RuntimeError):
    """A held-out window without a single positive example: no figure measured on it means
    anything (an AUC, a lift, a recall), so benchmarks, training and `smartmkt eval` stop."""


@dataclass
class Evaluation:
    kind: str
    task: str  # "classification" or "ranking"
    metrics: dict[str, Any]
    heldout: str
    artifact: str = ""
    plot: str | None = None
    curves: dict[str, Any] = field(default_factory=dict, repr=False)
    positives: int = 0  # held-out positives the figures rest on
    # per held-out example, what ``compare`` resamples: (truth, score) for purchase, (gold, predicted)
    # intents for nlu, (ndcg per customer,) for the recommender
    paired: tuple[Any, ...] = field(default=(), repr=False)
    labels: frozenset[str] = frozenset()  # the classes a classifier can answer (NLU: its intents)

    def warning(self, min_positives: int) -> str | None:
        """Why these figures should not be trusted, or None."""
        if self.positives >= min_positives:
            return None
        return (
            f"only {self.positives} held-out positives (fewer than {min_positives}): "
            "these figures are noise, not a measurement"
        )


# --- per kind ------------------------------------------------------------------------------
def nlu_test_file(settings: Settings) -> Path:
    return settings.bot_dir / "tests" / "nlu_test.yml"


def evaluate_nlu(settings: Settings, artifact: Path) -> Evaluation:
    from smartmkt.nlu.data import load_nlu
    from smartmkt.nlu.evaluate import evaluate_parser, intent_confidences, score
    from smartmkt.nlu.parser import NLUParser

    test_file = nlu_test_file(settings)
    examples = load_nlu(test_file)
    parser = NLUParser(artifact, settings.nlu_fallback_threshold, settings.nlu_max_chars)
    predictions = evaluate_parser(parser.parse_batch, examples)
    gold = [ex.intent for ex in examples]
    top = [float(p["intent"]["confidence"]) for p in predictions]
    correct = [p["intent"]["name"] == g for p, g in zip(predictions, gold, strict=True)]
    truth, scores = [], []
    for label in sorted(set(gold)):  # micro one-vs-rest, for the precision/recall curve
        truth += [g == label for g in gold]
        scores += intent_confidences(label, predictions)
    return Evaluation(
        "nlu",
        "classification",
        score(examples, predictions),
        f"{test_file.relative_to(settings.project_root)} ({len(examples)} messages)",
        curves={"calibration": (correct, top), "precision_recall": (truth, scores)},
        positives=len(examples),
        paired=(gold, [p["intent"]["name"] for p in predictions]),
        labels=frozenset(parser.intents),
    )


def evaluate_purchase(settings: Settings, engine: Engine, artifact: Path) -> Evaluation:
    from smartmkt.predict import scoring
    from smartmkt.predict.history import purchase_days

    days = purchase_days(engine)
    horizon = settings.purchase_horizon_days
    model = scoring.load(artifact)
    split = scoring.holdout_split(days, horizon)
    window = (
        f"purchases {split.holdout.cutoff:%Y-%m-%d}..{split.holdout.end - timedelta(days=1):%Y-%m-%d} "
        f"({horizon} days)"
    )
    held = scoring.predict_holdout(model, days, horizon)
    positives = int((held.actual > 0).sum())
    if not positives:
        raise NoPositives(
            f"the purchase model's held-out window ({window}) has no positive example: none of the "
            f"{len(held.actual)} customers with earlier purchases bought in it, so there is nothing "
            "to measure the model on"
        )
    return Evaluation(
        "purchase",
        "classification",
        {**scoring.holdout_figures(held), "heldout_positives": positives},
        window,
        curves={
            "calibration": (held.actual > 0, held.score),
            "precision_recall": (held.actual > 0, held.score),
        },
        positives=positives,
        paired=(held.actual > 0, held.score),
    )


def evaluate_recommender(engine: Engine, artifact: Path) -> Evaluation:
    from smartmkt.recommend.evaluate import evaluate_ranker, temporal_split
    from smartmkt.recommend.recommender import Recommender
    from smartmkt.store.training_data import purchase_histories

    model = Recommender.load(artifact)
    train, test = temporal_split(purchase_histories(engine))

    def recommend(history: list[int], k: int) -> list[int]:
        return [r.product_id for r in model.recommend(history, k=k)]

    positives = sum(len(items) for items in test.values())
    if not positives:
        raise NoPositives(
            "the recommender's held-out set is empty: no customer has two purchases, so none has a "
            "latest 20% to hold out"
        )
    figures = evaluate_ranker(recommend, train, test, len(model.items))
    curve = figures.pop("recall_curve")
    by_customer = figures.pop("ndcg_by_customer")
    return Evaluation(
        "recommender",
        "ranking",
        {**figures, "heldout_positives": positives},
        f"each customer's latest 20% of purchases ({figures['customers']} customers)",
        curves={"recall_at_k": curve},
        positives=positives,
        paired=(by_customer,),
    )


def evaluate_artifact(settings: Settings, engine: Engine | None, kind: str, artifact: Path) -> Evaluation:
    if kind == "nlu":
        result = evaluate_nlu(settings, artifact)
    elif engine is None:
        raise ValueError(f"evaluating the {kind} model needs the store")
    elif kind == "purchase":
        result = evaluate_purchase(settings, engine, artifact)
    elif kind == "recommender":
        result = evaluate_recommender(engine, artifact)
    else:
        raise ValueError(f"no held-out evaluation for {kind!r}; evaluated: {', '.join(EVALUATED_KINDS)}")
    result.artifact = str(artifact.relative_to(settings.models_dir))
    return result


def served_evaluation(
    settings: Settings, engine: Engine | None, kind: str, candidate: Path
) -> Evaluation | None:
    """The served model on today's held-out data. None, so nothing to compare with, when nothing
    else is served, when the served artifact no longer loads, or when it has no metadata (trained
    before held-out gating: it may have learned from today's held-out data)."""
    entry = model_registry.served(settings.models_dir, kind)
    if entry is None or settings.models_dir / entry["path"] == candidate:
        return None
    if model_registry.read_metadata(settings.models_dir / entry["path"]) is None:
        return None
    try:
        return evaluate_artifact(settings, engine, kind, settings.models_dir / entry["path"])
    except Exception:
        return None


def unknown_to(served: Evaluation, candidate: Evaluation) -> list[str]:
    """Held-out classes the served model cannot answer at all (intents added to the bot since it
    was trained): it is then no yardstick, since the bot's dialogue expects the new ones."""
    if not served.labels or candidate.kind != "nlu":
        return []
    return sorted(set(candidate.paired[0]) - served.labels)


def primary(result: Evaluation) -> float | None:
    value = result.metrics.get(PRIMARY_METRIC[result.kind])
    return float(value) if value is not None else None


def _difference(kind: str) -> Callable[..., float]:
    """The primary figure of the candidate minus the served model's, on resampled examples."""
    from sklearn.metrics import f1_score, roc_auc_score

    if kind == "purchase":

        def auc_difference(truth: np.ndarray, candidate: np.ndarray, served: np.ndarray) -> float:
            if truth.all() or not truth.any():  # a draw of one class only has no AUC: no evidence
                return 0.0
            return float(roc_auc_score(truth, candidate) - roc_auc_score(truth, served))

        return auc_difference
    if kind == "nlu":

        def f1_difference(gold: np.ndarray, candidate: np.ndarray, served: np.ndarray) -> float:
            macro = {"labels": sorted(set(gold.tolist())), "average": "macro", "zero_division": 0}
            return float(f1_score(gold, candidate, **macro) - f1_score(gold, served, **macro))  # type: ignore[arg-type]

        return f1_difference

    def mean_difference(candidate: np.ndarray, served: np.ndarray) -> float:
        return float(np.mean(candidate - served))

    return mean_difference


def compare(
    candidate: Evaluation, served: Evaluation, settings: Settings, seed: int = 0
) -> model_registry.Comparison:
    """A paired bootstrap (scipy.stats.bootstrap, percentile interval, fixed seed) of the primary
    figure's difference: both models' outputs on the same resampled held-out examples, so the
    interval measures how much the difference could move on another draw of the same size."""
    from scipy.stats import bootstrap

    if candidate.kind != served.kind or len(candidate.paired[0]) != len(served.paired[0]):
        raise ValueError(f"{candidate.kind} and {served.kind} were not measured on the same held-out data")
    if candidate.kind == "recommender":
        data: tuple[np.ndarray, ...] = (np.asarray(candidate.paired[0]), np.asarray(served.paired[0]))
    else:
        truth = np.asarray(candidate.paired[0])
        if not np.array_equal(truth, np.asarray(served.paired[0])):
            raise ValueError(f"the two {candidate.kind} models were not measured on the same held-out data")
        data = (truth, np.asarray(candidate.paired[1]), np.asarray(served.paired[1]))
    result = bootstrap(
        data,
        _difference(candidate.kind),
        paired=True,
        vectorized=False,
        n_resamples=settings.gate_resamples,
        confidence_level=settings.gate_confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return model_registry.Comparison(
        positives=candidate.positives,
        low=round(float(interval.low), 4),
        high=round(float(interval.high), 4),
        confidence=settings.gate_confidence,
        min_positives=settings.gate_min_positives,
    )


# --- plots and the whole report --------------------------------------------------------------
def plot(result: Evaluation, reports_dir: Path) -> Path:
    from smartmkt.lifecycle import plots

    path = reports_dir / f"{result.kind}.png"
    if result.task == "ranking":
        return plots.recall_at_k_plot(
            path, f"{result.kind}: recall@k", {result.kind: result.curves["recall_at_k"]}
        )
    title = {
        "nlu": "nlu: top intent confidence vs correct (left), every intent one-vs-rest (right)",
        "purchase": "purchase: buys within the horizon",
    }[result.kind]
    return plots.classifier_plot(path, title, result.curves["calibration"], result.curves["precision_recall"])


def evaluate_served(
    settings: Settings,
    engine: Engine | None,
    kinds: tuple[str, ...] = EVALUATED_KINDS,
    reports_dir: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Evaluation]:
    """Every served model of ``kinds`` on its held-out data, a PNG each under ``reports_dir``."""
    results = {}
    for kind in kinds:
        if progress:
            progress(f"evaluating {kind}")
        artifact = model_registry.served_path(settings.models_dir, kind)
        result = evaluate_artifact(settings, engine, kind, artifact)
        if reports_dir is not None:
            result.plot = str(plot(result, reports_dir))
        results[kind] = result
    return results


def as_json(results: dict[str, Evaluation], min_positives: int) -> dict[str, Any]:
    return {
        kind: {
            "task": r.task,
            "artifact": r.artifact,
            "heldout": r.heldout,
            "positives": r.positives,
            "warning": r.warning(min_positives),
            "metrics": r.metrics,
            **({"recall_at_k": r.curves["recall_at_k"]} if "recall_at_k" in r.curves else {}),
            "plot": r.plot,
        }
        for kind, r in results.items()
    }
