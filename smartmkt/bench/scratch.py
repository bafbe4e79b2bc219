"""A scratch store for one benchmark run: benchmarks never read the product's own store.

The product's store changes as it is used (chat orders, offers, opt-outs); a benchmark's figure
must not. ``scratch_demo_store`` migrates a temporary SQLite database, loads the demo data into it
through the same loader as `smartmkt data load-demo` (import pipeline, clock moved to today), and
deletes it afterwards. Loading takes a few seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from sqlalchemy import Engine

from smartmkt.data.demo import load_demo
from smartmkt.store.db import make_engine
from smartmkt.store.migrate import upgrade


@contextmanager
def scratch_demo_store(wheels_dir: Path, today: date | None = None) -> Iterator[Engine]:
    """An engine on a temporary store holding the demo data only, removed when the block ends."""
    with tempfile.TemporaryDirectory(prefix="smartmkt-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'demo.db'}"
        upgrade(url)
        engine = make_engine(url)
        try:
            load_demo(engine, wheels_dir, today=today)
            yield engine
        finally:
            engine.dispose()
