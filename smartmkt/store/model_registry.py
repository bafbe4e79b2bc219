"""models/manifest.json: which trained artifact of each kind is served, and from what inputs.

Artifacts live in models/<kind>/<fingerprint>/; the fingerprint hashes everything the training
read, so an unchanged input is never retrained and a changed one never served stale. Next to each
artifact, a metadata file says what it was trained on (data fingerprint, parameters, seed), how it
scored on held-out data, and when. ``promote`` points the manifest at a new artifact only when its
held-out figure beats the served one's on the same held-out data beyond noise, with enough
held-out positives (or when forced); otherwise the served model stays and the reason says why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smartmkt.store.clock import utcnow

MANIFEST = "manifest.json"
METADATA = "metadata.json"


def load_manifest(models_dir: Path) -> dict[str, Any]:
    path = models_dir / MANIFEST
    if not path.exists():
        return {}
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def served(models_dir: Path, kind: str) -> dict[str, Any] | None:
    """The manifest entry for ``kind`` if its artifact exists on disk."""
    entry = load_manifest(models_dir).get(kind)
    if entry and (models_dir / entry["path"]).exists():
        return entry  # type: ignore[no-any-return]
    return None


def served_path(models_dir: Path, kind: str) -> Path:
    entry = served(models_dir, kind)
    if entry is None:
        raise FileNotFoundError(
            f"no trained {kind} model in {models_dir}; run `smartmkt train {kind.replace('_', '-')}`"
        )
    return models_dir / entry["path"]


def is_current(models_dir: Path, kind: str, fingerprint: str) -> bool:
    entry = served(models_dir, kind)
    return bool(entry and entry.get("fingerprint") == fingerprint)


def record(models_dir: Path, kind: str, path: Path, fingerprint: str, **info: Any) -> None:
    """Point ``kind`` at ``path``; written atomically so readers never see half a manifest."""
    models_dir.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(models_dir)
    manifest[kind] = {
        "path": str(path.relative_to(models_dir)),
        "fingerprint": fingerprint,
        "trained_at": utcnow().isoformat(timespec="seconds"),
        **info,
    }
    _atomic_json(models_dir / MANIFEST, manifest)


def _cache_entry(cache_dir: Path, kind: str, target: Path) -> Path:
    return cache_dir / kind / target.name


def save_to_cache(cache_dir: Path | None, kind: str, target: Path) -> None:
    """Keep a copy keyed by fingerprint (the artifact's name), so an identical training run on
    this machine (a fresh clone, CI) is a copy, not minutes of CPU. Best effort: never fails."""
    if cache_dir is None:
        return
    entry = _cache_entry(cache_dir, kind, target)
    if entry.exists():
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = entry.with_name(entry.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        if target.is_dir():
            shutil.copytree(target, staging)
        else:
            shutil.copy2(target, staging)
        os.replace(staging, entry)
    except OSError:
        return


def restore_from_cache(cache_dir: Path | None, kind: str, target: Path) -> bool:
    """Copy a cached artifact with the same fingerprint into ``target``; False if none."""
    if cache_dir is None:
        return False
    entry = _cache_entry(cache_dir, kind, target)
    if not entry.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(target.name + ".partial")  # renamed into place: never half a copy
    shutil.rmtree(staging, ignore_errors=True)
    if entry.is_dir():
        shutil.copytree(entry, staging)
        shutil.rmtree(target, ignore_errors=True)
    else:
        shutil.copy2(entry, staging)
    os.replace(staging, target)
    return True


# --- metadata and promotion ----------------------------------------------------------------
@dataclass
class ModelMetadata:
    """What a trained artifact is: kept beside it as metadata.json."""

    kind: str
    fingerprint: str  # the artifact's: data + code + parameters
    data_fingerprint: str = ""  # what it learned from
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    primary_metric: str | None = None
    heldout: str = ""
    created_at: str = field(default_factory=lambda: utcnow().isoformat(timespec="seconds"))

    @property
    def score(self) -> float | None:
        if self.primary_metric is None:
            return None
        value = self.metrics.get(self.primary_metric)
        return float(value) if value is not None else None


def metadata_path(artifact: Path) -> Path:
    """metadata.json inside a folder artifact; ``<file>.metadata.json`` beside a file artifact."""
    return artifact / METADATA if artifact.is_dir() else artifact.with_name(artifact.name + "." + METADATA)


def write_metadata(artifact: Path, meta: ModelMetadata) -> None:
    _atomic_json(metadata_path(artifact), asdict(meta))


def read_metadata(artifact: Path) -> ModelMetadata | None:
    path = metadata_path(artifact)
    if not path.exists():
        return None
    return ModelMetadata(**json.loads(path.read_text()))


@dataclass(frozen=True)
class Promotion:
    promoted: bool
    reason: str
    candidate: float | None = None
    served: float | None = None
    decided: bool = True  # False: too few held-out positives, or a difference within noise
    positives: int | None = None  # the held-out positives the comparison rests on


@dataclass(frozen=True)
class Comparison:
    """The candidate's primary figure minus the served model's, measured on the same held-out
    data: a paired bootstrap confidence interval (``low``..``high``) and the number of held-out
    positives the figures rest on (smartmkt.lifecycle.evaluation.compare)."""

    positives: int
    low: float
    high: float
    confidence: float
    min_positives: int

    def interval(self) -> str:
        return f"{self.confidence:.0%} CI of the difference {self.low:+.4f}..{self.high:+.4f}"


def decide(
    candidate: ModelMetadata,
    served_score: float | None,
    force: bool = False,
    comparison: Comparison | None = None,
    incomparable: str | None = None,
) -> Promotion:
    """Promote when forced, when nothing comparable is served (``incomparable`` says why, when
    a served model exists), or when the candidate is better
    than the served model beyond noise: enough held-out positives and the whole confidence
    interval of the paired difference above zero. A difference within noise, or a held-out set
    with too few positives, cannot decide: the served model stays, and the reason says so."""
    metric = candidate.primary_metric
    positives = comparison.positives if comparison else None
    if force:
        return Promotion(True, "forced", candidate.score, served_score, positives=positives)
    if served_score is None or metric is None:
        reason = incomparable or "nothing comparable served"
        if comparison and comparison.positives < comparison.min_positives:
            reason += f"; its figures rest on {comparison.positives} held-out positives only"
        return Promotion(True, reason, candidate.score, served_score, positives=positives)
    if candidate.score is None:
        return Promotion(False, f"the candidate has no {metric}", None, served_score, positives=positives)
    figures = f"{metric} {candidate.score:.4f} vs served {served_score:.4f}"
    keep = "the served model stays"
    if comparison is None:
        return Promotion(
            False,
            f"cannot decide: {figures} without a paired comparison on the held-out data; {keep}",
            candidate.score,
            served_score,
            decided=False,
        )
    if comparison.positives < comparison.min_positives:
        return Promotion(
            False,
            f"cannot decide: {comparison.positives} held-out positives, "
            f"{comparison.min_positives} needed ({figures}); {keep}",
            candidate.score,
            served_score,
            decided=False,
            positives=positives,
        )
    evidence = f"{comparison.interval()}, {comparison.positives} held-out positives"
    if comparison.low > 0:
        return Promotion(
            True,
            f"{metric} {candidate.score:.4f} > served {served_score:.4f} beyond noise ({evidence})",
            candidate.score,
            served_score,
            positives=positives,
        )
    if comparison.high < 0:
        return Promotion(
            False,
            f"{metric} {candidate.score:.4f} < served {served_score:.4f} beyond noise ({evidence}): "
            f"{keep} (--force to override)",
            candidate.score,
            served_score,
            positives=positives,
        )
    return Promotion(
        False,
        f"cannot decide: {figures} is within noise ({evidence}); {keep}",
        candidate.score,
        served_score,
        decided=False,
        positives=positives,
    )


def promote(
    models_dir: Path,
    artifact: Path,
    meta: ModelMetadata,
    served_score: float | None,
    force: bool = False,
    comparison: Comparison | None = None,
    incomparable: str | None = None,
    **info: Any,
) -> Promotion:
    """Write the candidate's metadata, then switch the manifest to it if ``decide`` says so.

    The manifest is replaced in one rename, so a reader sees the old model or the new one."""
    write_metadata(artifact, meta)
    decision = decide(meta, served_score, force, comparison, incomparable)
    if decision.promoted:
        record(models_dir, meta.kind, artifact, meta.fingerprint, metrics=meta.metrics, **info)
    return decision


def _atomic_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)
