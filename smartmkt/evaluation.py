"""Held-out evaluation of every trained model, used by `smartmkt eval` and by the promotion gate.

Each kind has one held-out set, so a candidate and the served model are always measured on the
same data:
  nlu          bot/tests/nlu_test.yml, never trained on      classification (intent)
  purchase     the store's latest H days, after training      classification (buys at all) + counts
  recommender  each customer's latest 20% of purchases        ranking (recall/ndcg/coverage @10)
The served models are trained without their held-out data (smartmkt.training), so the figures
of what is served are honest ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from smartmkt import registry
from smartmkt.settings import Settings

PRIMARY_METRIC = {"nlu": "intent_macro_f1", "purchase": "auc", "recommender": "ndcg@10"}
EVALUATED_KINDS = tuple(PRIMARY_METRIC)


@dataclass
class Evaluation:
    kind: str
    task: str  # "classification" or "ranking"
    metrics: dict[str, Any]
    heldout: str
    artifact: str = ""
    plot: str | None = None
    curves: dict[str, Any] = field(default_factory=dict, repr=False)


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
    )


def evaluate_purchase(settings: Settings, engine: Engine, artifact: Path) -> Evaluation:
    from smartmkt.predict import scoring
    from smartmkt.predict.history import purchase_days

    days = purchase_days(engine)
    horizon = settings.purchase_horizon_days
    model = scoring.load(artifact)
    held = scoring.predict_holdout(model, days, horizon)
    split = scoring.holdout_split(days, horizon)
    return Evaluation(
        "purchase",
        "classification",
        scoring.holdout_figures(held),
        f"purchases {split.holdout.cutoff:%Y-%m-%d}..{split.holdout.end - timedelta(days=1):%Y-%m-%d} "
        f"({horizon} days)",
        curves={
            "calibration": (held.actual > 0, held.score),
            "precision_recall": (held.actual > 0, held.score),
        },
    )


def evaluate_recommender(engine: Engine, artifact: Path) -> Evaluation:
    from smartmkt.recommend.evaluate import evaluate_ranker, temporal_split
    from smartmkt.recommend.recommender import Recommender
    from smartmkt.training import purchase_histories

    model = Recommender.load(artifact)
    train, test = temporal_split(purchase_histories(engine))

    def recommend(history: list[int], k: int) -> list[int]:
        return [r.product_id for r in model.recommend(history, k=k)]

    figures = evaluate_ranker(recommend, train, test, len(model.items))
    curve = figures.pop("recall_curve")
    return Evaluation(
        "recommender",
        "ranking",
        figures,
        f"each customer's latest 20% of purchases ({figures['customers']} customers)",
        curves={"recall_at_k": curve},
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


def served_score(settings: Settings, engine: Engine | None, kind: str, candidate: Path) -> float | None:
    """The served model's primary figure on today's held-out data. None, so nothing to compare
    with, when nothing else is served, when the served artifact no longer loads, or when it has no
    metadata (trained before held-out gating: it may have learned from today's held-out data)."""
    entry = registry.served(settings.models_dir, kind)
    if entry is None or settings.models_dir / entry["path"] == candidate:
        return None
    if registry.read_metadata(settings.models_dir / entry["path"]) is None:
        return None
    try:
        result = evaluate_artifact(settings, engine, kind, settings.models_dir / entry["path"])
    except Exception:
        return None
    value = result.metrics.get(PRIMARY_METRIC[kind])
    return float(value) if value is not None else None


# --- plots and the whole report --------------------------------------------------------------
def plot(result: Evaluation, reports_dir: Path) -> Path:
    from smartmkt import reports

    path = reports_dir / f"{result.kind}.png"
    if result.task == "ranking":
        return reports.recall_at_k_plot(
            path, f"{result.kind}: recall@k", {result.kind: result.curves["recall_at_k"]}
        )
    title = {
        "nlu": "nlu: top intent confidence vs correct (left), every intent one-vs-rest (right)",
        "purchase": "purchase: buys within the horizon",
    }[result.kind]
    return reports.classifier_plot(
        path, title, result.curves["calibration"], result.curves["precision_recall"]
    )


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
        artifact = registry.served_path(settings.models_dir, kind)
        result = evaluate_artifact(settings, engine, kind, artifact)
        if reports_dir is not None:
            result.plot = str(plot(result, reports_dir))
        results[kind] = result
    return results


def as_json(results: dict[str, Evaluation]) -> dict[str, Any]:
    return {
        kind: {
            "task": r.task,
            "artifact": r.artifact,
            "heldout": r.heldout,
            "metrics": r.metrics,
            **({"recall_at_k": r.curves["recall_at_k"]} if "recall_at_k" in r.curves else {}),
            "plot": r.plot,
        }
        for kind, r in results.items()
    }
