"""models/manifest.json: which trained artifact of each kind is served, and from what inputs.

Artifacts live in models/<kind>/<fingerprint>/; the fingerprint hashes everything the training
read, so an unchanged input is never retrained and a changed one never served stale.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


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
    fd, tmp = tempfile.mkstemp(dir=models_dir, suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(manifest, handle, indent=2, sort_keys=True)
    os.replace(tmp, models_dir / MANIFEST)


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
    if entry.is_dir():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(entry, target)
    else:
        shutil.copy2(entry, target)
    return True
