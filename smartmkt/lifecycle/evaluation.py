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

What each kind's held-out data is and how a model is measured on it is the kind's own
(``ModelKind.evaluate`` in smartmkt.lifecycle.kinds); this module looks kinds up by name in
``KINDS`` and holds what every kind shares: the served model as the yardstick, the bootstrap,
the plots and the report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine

from smartmkt.lifecycle.heldout import Evaluation
from smartmkt.lifecycle.kinds import KINDS, PURCHASE, ModelKind, TrainingData
from smartmkt.settings import Settings
from smartmkt.store import model_registry

PRIMARY_METRIC = {name: kind.primary_metric for name, kind in KINDS.items() if kind.gated}
EVALUATED_KINDS = tuple(PRIMARY_METRIC)


def evaluated_kind(name: str) -> ModelKind[Any]:
    """The kind of that name, if it has a held-out evaluation."""
    kind = KINDS.get(name)
    if kind is None or not kind.gated:
        raise ValueError(f"no held-out evaluation for {name!r}; evaluated: {', '.join(EVALUATED_KINDS)}")
    return kind


def measure(kind: ModelKind[Any], data: TrainingData, artifact: Path) -> Evaluation:
    """``artifact`` on the held-out data of ``data`` (read once per run, whoever measures)."""
    if kind.needs_store and not data.has_store:
        raise ValueError(f"evaluating the {kind.name} model needs the store")
    result = kind.evaluate(data, artifact)
    result.artifact = str(artifact.relative_to(data.settings.models_dir))
    return result


def evaluate_artifact(settings: Settings, engine: Engine | None, kind: str, artifact: Path) -> Evaluation:
    """One artifact on its kind's held-out data, read for this call alone."""
    model_kind = evaluated_kind(kind)
    return measure(model_kind, model_kind.data(settings, engine), artifact)


def evaluate_purchase(settings: Settings, engine: Engine, artifact: Path) -> Evaluation:
    return measure(PURCHASE, PURCHASE.data(settings, engine), artifact)


def served_evaluation(kind: ModelKind[Any], data: TrainingData, candidate: Path) -> Evaluation | None:
    """The served model on the same held-out data as the candidate. None, so nothing to compare
    with, when nothing else is served, when the served artifact no longer loads, or when it has
    no metadata (trained before held-out gating: it may have learned from today's held-out data)."""
    models_dir = data.settings.models_dir
    entry = model_registry.served(models_dir, kind.name)
    if entry is None or models_dir / entry["path"] == candidate:
        return None
    if model_registry.read_metadata(models_dir / entry["path"]) is None:
        return None
    try:
        return measure(kind, data, models_dir / entry["path"])
    except Exception:
        return None


def unknown_to(served: Evaluation, candidate: Evaluation) -> list[str]:
    """Held-out classes the served model cannot answer at all (intents added to the bot since it
    was trained): it is then no yardstick, since the bot's dialogue expects the new ones."""
    if not served.labels or not candidate.labels:
        return []
    return sorted(set(candidate.paired[0]) - served.labels)


def primary(result: Evaluation, kind: ModelKind[Any] | None = None) -> float | None:
    """The figure the gate compares (``kind``'s, else that of the kind named in ``result``)."""
    value = result.metrics.get((kind or KINDS[result.kind]).primary_metric)
    return float(value) if value is not None else None


def compare(
    candidate: Evaluation,
    served: Evaluation,
    settings: Settings,
    seed: int = 0,
    kind: ModelKind[Any] | None = None,
) -> model_registry.Comparison:
    """A paired bootstrap (scipy.stats.bootstrap, percentile interval, fixed seed) of the primary
    figure's difference (the kind's ``difference``): both models' outputs on the same resampled
    held-out examples, so the interval measures how much the difference could move on another
    draw of the same size."""
    from scipy.stats import bootstrap

    if candidate.kind != served.kind or len(candidate.paired[0]) != len(served.paired[0]):
        raise ValueError(f"{candidate.kind} and {served.kind} were not measured on the same held-out data")
    if len(candidate.paired) == 1:  # a figure per example (the recommender's ndcg per customer)
        data: tuple[np.ndarray, ...] = (np.asarray(candidate.paired[0]), np.asarray(served.paired[0]))
    else:  # (truth, prediction): the same truth, each model's prediction
        truth = np.asarray(candidate.paired[0])
        if not np.array_equal(truth, np.asarray(served.paired[0])):
            raise ValueError(f"the two {candidate.kind} models were not measured on the same held-out data")
        data = (truth, np.asarray(candidate.paired[1]), np.asarray(served.paired[1]))
    result = bootstrap(
        data,
        (kind or KINDS[candidate.kind]).difference,
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
    title = KINDS[result.kind].plot_title
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
