"""The model a running process serves, swapped in place when `smartmkt train` promotes a new one.

Every request asks ``ServedModel.get()``, which reads the kind's entry in models/manifest.json (a
small file: tens of microseconds); when the entry changed, the newly promoted artifact is loaded
and swapped in under a lock. If loading fails (a corrupt or half-copied artifact, an incompatible
file), the error is logged, the old model keeps serving, and that entry is not tried again until
the manifest changes once more. So a bad promotion never takes the running app down, and nobody has to restart
it for a good one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from smartmkt.store import model_registry

log = logging.getLogger(__name__)

T = TypeVar("T")


class ServedModel(Generic[T]):
    def __init__(self, models_dir: Path, kind: str, loader: Callable[[Path], T]) -> None:
        self.models_dir, self.kind, self.loader = models_dir, kind, loader
        self._model: T | None = None
        self._path: Path | None = None
        self._seen: tuple[str, str] | None = None  # the manifest entry last acted on
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def path(self) -> Path | None:
        """The artifact being served now (None before the first successful load)."""
        return self._path

    def _entry(self) -> tuple[str, str] | None:
        """(artifact path, trained_at) of the manifest's entry: a retrain into the same folder
        (--force) changes trained_at, so it is reloaded too."""
        entry = model_registry.served(self.models_dir, self.kind)
        return (entry["path"], str(entry.get("trained_at"))) if entry else None

    def get(self) -> T:
        """The served model; raises FileNotFoundError only when nothing was ever loaded."""
        entry = self._entry()
        if entry != self._seen:
            with self._lock:
                if entry != self._seen:
                    self._refresh(entry)
        if self._model is None:
            raise FileNotFoundError(self.last_error or f"no {self.kind} model")
        return self._model

    def _refresh(self, entry: tuple[str, str] | None) -> None:
        try:
            self._load(entry)
        finally:  # only once settled: a get() on another thread meanwhile waits on the lock
            self._seen = entry

    def _load(self, entry: tuple[str, str] | None) -> None:
        if entry is None:
            self.last_error = (
                f"no trained {self.kind} model in {self.models_dir}; "
                f"run `smartmkt train {self.kind.replace('_', '-')}`"
            )
            if self._model is not None:
                log.error("%s; still serving %s", self.last_error, self._path)
            return
        path = self.models_dir / entry[0]
        try:
            model = self.loader(path)
        except Exception as exc:
            self.last_error = f"could not load {self.kind} model {path}: {exc}"
            log.error(
                "%s; %s", self.last_error, f"still serving {self._path}" if self._model else "none served"
            )
            return
        self._model, self._path, self.last_error = model, path, None
        log.info("serving %s model %s", self.kind, path)


@dataclass
class WarmUp:
    """What exercising a process's models before it serves found: milliseconds per part that
    worked, and the exception of each part that failed, by name."""

    ms: dict[str, float] = field(default_factory=dict)
    errors: dict[str, Exception] = field(default_factory=dict)


def warm_up(parts: Mapping[str, Callable[[], object]]) -> WarmUp:
    """Run each named part once (a model's first call: lazy imports, first batches, cold pages),
    timing it; a part that raises is recorded by name and the rest still run."""
    result = WarmUp()
    for name, part in parts.items():
        started = time.perf_counter()
        try:
            part()
        except Exception as exc:  # reported by name: the caller decides what a failure means
            result.errors[name] = exc
            continue
        result.ms[name] = round((time.perf_counter() - started) * 1000, 1)
    return result
