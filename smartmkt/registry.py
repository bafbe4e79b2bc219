"""models/manifest.json: which trained artifact of each kind is served, and from what inputs.

Artifacts live in models/<kind>/<fingerprint>/; the fingerprint hashes everything the training
read, so an unchanged input is never retrained and a changed one never served stale. Next to each
artifact, a metadata file says what it was trained on (data fingerprint, parameters, seed), how it
scored on held-out data, and when. ``promote`` points the manifest at a new artifact only when its
held-out figure is at least the served one's on the same held-out data (or when forced).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

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


def decide(candidate: ModelMetadata, served_score: float | None, force: bool = False) -> Promotion:
    """Promote when forced, when nothing comparable is served, or when the candidate's held-out
    figure is at least the served model's (measured on the same held-out data)."""
    metric = candidate.primary_metric
    if force:
        return Promotion(True, "forced", candidate.score, served_score)
    if served_score is None or metric is None:
        return Promotion(True, "nothing comparable served", candidate.score, served_score)
    if candidate.score is None:
        return Promotion(False, f"the candidate has no {metric}", None, served_score)
    if candidate.score >= served_score:
        return Promotion(
            True,
            f"{metric} {candidate.score:.4f} >= served {served_score:.4f}",
            candidate.score,
            served_score,
        )
    return Promotion(
        False,
        f"{metric} {candidate.score:.4f} < served {served_score:.4f}: "
        "the served model stays (--force to override)",
        candidate.score,
        served_score,
    )


def promote(
    models_dir: Path,
    artifact: Path,
    meta: ModelMetadata,
    served_score: float | None,
    force: bool = False,
    **info: Any,
) -> Promotion:
    """Write the candidate's metadata, then switch the manifest to it if ``decide`` says so.

    The manifest is replaced in one rename, so a reader sees the old model or the new one."""
    write_metadata(artifact, meta)
    decision = decide(meta, served_score, force)
    if decision.promoted:
        record(models_dir, meta.kind, artifact, meta.fingerprint, metrics=meta.metrics, **info)
    return decision


def _atomic_json(path: Path, payload: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp, path)
