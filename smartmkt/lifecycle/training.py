"""Train what the product serves (NLU, recommender, purchase model, Rasa dialogue), skipping
what is current, and promote a new model only when it is better than the served one beyond noise.

Each trained artifact gets a metadata.json (data fingerprint, parameters, seed, held-out
metrics, created_at). The candidate and the served model are measured on the same held-out data
(smartmkt.lifecycle.evaluation); the manifest moves to the candidate only if its primary figure beats the
served one's beyond noise on enough held-out positives (smartmkt.store.model_registry.decide), or with
``force``; otherwise the served model stays and the reason is printed. The same seed gives the
same model. Every function takes a ``progress(label, done, total)`` callback so the CLI can draw
bars and tests stay quiet.

Every kind goes through one loop, ``train``: its inputs (one ``TrainingData`` per run, read once)
-> fingerprint -> served already, or restored from the model cache -> fit (into a staging folder)
-> gate (held-out figures against the served model's, then model_registry.promote) -> model cache
-> the kind's own last step. What differs between kinds is a ``ModelKind``
(smartmkt.lifecycle.kinds).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine

from smartmkt.lifecycle import evaluation
from smartmkt.lifecycle.kinds import (
    ModelKind,
    Progress,
    TrainingData,
)
from smartmkt.settings import Settings
from smartmkt.store import model_registry

D = TypeVar("D", bound=TrainingData)


@dataclass(frozen=True)
class TrainResult:
    kind: str
    path: Path
    fingerprint: str
    skipped: bool
    promotion: model_registry.Promotion | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    reused: bool = False  # the artifact was on disk already (model cache, or refused before)

    @property
    def promoted(self) -> bool:
        return self.promotion is None or self.promotion.promoted


def _quiet(_label: str, _done: int, _total: int) -> None:
    return None


def train(
    kind: ModelKind[D],
    settings: Settings,
    engine: Engine | None,
    force: bool = False,
    progress: Progress = _quiet,
    seed: int | None = None,
) -> TrainResult:
    """One model of ``kind``: skipped when the served one has the same fingerprint, else fitted
    (unless an artifact of that fingerprint is on disk already), gated and cached."""
    data = kind.data(settings, engine, seed)
    fingerprint = kind.fingerprint(data)
    target = kind.artifact(settings, fingerprint.artifact)
    skipped = not force and _reuse(settings, kind.name, target, fingerprint.artifact, kind.gated)
    promotion, metrics, reused = None, {}, not _needs_training(target, force)
    if not skipped:
        info = kind.info(data)
        if not reused:
            _build(target, lambda staging: kind.fit(data, fingerprint.artifact, staging, progress))
        params = kind.params(data)
        meta = model_registry.ModelMetadata(kind.name, fingerprint.artifact, fingerprint.data, params)
        if kind.gated:
            promotion = gate(kind, data, target, meta, force, **info)
            metrics = meta.metrics
        else:
            model_registry.promote(settings.models_dir, target, meta, served_score=None)
        model_registry.save_to_cache(settings.model_cache_dir, kind.name, target)
    kind.finish(data, progress)
    return TrainResult(kind.name, target, fingerprint.artifact, skipped, promotion, metrics, reused)


def _reuse(settings: Settings, kind: str, target: Path, fingerprint: str, gated: bool = True) -> bool:
    """True when ``target`` is served already (with its held-out figures). Otherwise a copy from
    the local model cache (same fingerprint: same inputs, code and seed) saves the training; a
    gated kind then still goes through the promotion gate, an ungated one is served at once."""
    if model_registry.is_current(settings.models_dir, kind, fingerprint):
        # one served from before metadata.json existed goes through the gate once for its figures
        return not gated or model_registry.read_metadata(target) is not None
    restored = not target.exists() and model_registry.restore_from_cache(
        settings.model_cache_dir, kind, target
    )
    if restored and not gated:
        model_registry.record(settings.models_dir, kind, target, fingerprint, restored_from_cache=True)
        return True
    return False


def gate(
    kind: ModelKind[D],
    data: D,
    target: Path,
    meta: model_registry.ModelMetadata,
    force: bool,
    **info: Any,
) -> model_registry.Promotion:
    """Measure ``target`` on the held-out data, compare with the served model there (a paired
    bootstrap of the difference, smartmkt.lifecycle.evaluation.compare), promote only beyond noise.

    Raises heldout.NoPositives when the held-out data has no positive example at all."""
    settings = data.settings
    result = evaluation.measure(kind, data, target)
    meta.metrics, meta.heldout = result.metrics, result.heldout
    meta.primary_metric = kind.primary_metric
    served = evaluation.served_evaluation(kind, data, target)
    comparison, incomparable = None, None
    unknown = evaluation.unknown_to(served, result) if served else []
    if unknown:
        served = None
        incomparable = f"the served model does not know {', '.join(unknown)}: nothing comparable served"
    if served is not None:
        try:
            comparison = evaluation.compare(result, served, settings, kind=kind)
        except ValueError:  # not the same held-out examples: the gate cannot decide
            comparison = None
    score = evaluation.primary(served, kind) if served else None
    return model_registry.promote(
        settings.models_dir, target, meta, score, force, comparison, incomparable=incomparable, **info
    )


def _needs_training(target: Path, force: bool) -> bool:
    """False when an artifact from the same inputs is on disk already (trained earlier but not
    promoted, or copied from the model cache): only the gate runs again."""
    return force or not target.exists()


def _build(target: Path, write: Callable[[Path], object]) -> None:
    """``write`` into a staging path, then rename it into place: an interrupted training never
    leaves a half-written artifact where the gate or the app would read it."""
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    write(staging)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
