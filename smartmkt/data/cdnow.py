"""CDNOW_master.txt (from the lifetimes 0.11.3 wheel) through the import pipeline into its own
store: the buy-till-you-die benchmark, kept apart from the shop's data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from smartmkt.data.importer import FileReport, Importer
from smartmkt.data.wheels import cdnow_master
from smartmkt.store.db import make_engine
from smartmkt.store.migrate import upgrade

MAPPING = Path(__file__).resolve().parent / "mappings" / "cdnow.yml"


def default_url(var_dir: Path) -> str:
    return f"sqlite:///{var_dir / 'cdnow.db'}"


def load_cdnow(url: str, cache_dir: Path, progress: Callable[[str, int], None] | None = None) -> FileReport:
    """Import CDNOW into ``url`` (idempotent: a second run inserts nothing)."""
    upgrade(url)
    engine = make_engine(url)
    try:
        report = Importer(engine, progress=progress).run({"orders": cdnow_master(cache_dir)}, MAPPING)
    finally:
        engine.dispose()
    return report.files[0]
