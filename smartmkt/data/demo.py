"""The embedded demo store: MovieLens-100k as shipped inside the recbole 1.2.1 wheel.

The wheel is fetched from PyPI at setup time (``pip download --no-deps``) and read as a zip;
the app never imports recbole (it is installed only in .venv-recbole, for the bench's peers).
Every rating counts as one purchase. The files go through the same import pipeline as a shop's
exports, with smartmkt/data/mappings/movielens.yml.

Prices are SYNTHETIC: MovieLens has none, so each title gets a deterministic price drawn from a
random generator seeded with its item id (same price on every machine, every run).

The demo's clock: MovieLens' purchases end on 1998-04-22 while the product's clock (offers, chat
orders, "the next 30 days") is today. Once imported, every demo timestamp (orders and customers'
sign-up dates) is moved by one constant number of whole weeks so that the last demo purchase falls
in the week before loading: on the latest day before today with its weekday (1998-04-22 was a
Wednesday), so yesterday when today is a Thursday and at most 7 days ago. Order, gaps, times of
day and weekdays are kept (a shift to exactly yesterday would move weekdays by up to 6 days).
The shift is chosen once, on the first load, and stored (table demo_clock); loading again on any
later day imports nothing and moves nothing (it reports the stored shift), so chat orders placed
since stay after the history.
A store loaded by an earlier version (1998 dates, no shift stored) is moved once, in place.
"""

from __future__ import annotations

import logging
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartmkt.data import wheels
from smartmkt.data.importer import Importer
from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, DemoClock, ImportRun, Order, Product

log = logging.getLogger(__name__)

RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
_ML_PREFIX = "recbole/dataset_example/ml-100k/ml-100k"
PRICE_POINTS_CENTS = (299, 399, 499, 599, 799, 999, 1199, 1499, 1999, 2499)
DEMO_MARK = "movielens-100k"  # the folder the demo exports are written to (var/cache/...)
MAPPING = Path(__file__).resolve().parent / "mappings" / "movielens.yml"
IMPORTED = "import"  # the channel of imported orders and the source of imported customers
_BATCH = 10_000


@dataclass(frozen=True)
class DemoShift:
    """Whole days added to every demo timestamp; ``last_day`` is the demo's last purchase after."""

    days: int
    source_last_day: date
    last_day: date
    shifted_at: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "source_last_purchase": self.source_last_day.isoformat(),
            "last_purchase": self.last_day.isoformat(),
            "shifted_at": as_utc(self.shifted_at).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True)
class DemoCounts:
    customers: int
    products: int
    orders: int
    shift: DemoShift | None = None


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


def _shift(row: DemoClock) -> DemoShift:
    return DemoShift(row.shift_days, row.source_last_day, row.last_day, as_utc(row.shifted_at))


def demo_shift(engine: Engine) -> DemoShift | None:
    """The shift applied when the demo was loaded; None before (or in a store without the demo)."""
    with session_scope(engine) as session:
        row = session.scalars(select(DemoClock).order_by(DemoClock.id).limit(1)).first()
        return _shift(row) if row else None


def _move(session: Session, column: Any, where: Any, delta: timedelta) -> None:
    """Add ``delta`` to ``column`` in the rows matching ``where``, in the caller's transaction.
    Done row by row in Python (bulk UPDATE by primary key) so it is the same on SQLite, which has
    no interval arithmetic on its text timestamps, and on PostgreSQL."""
    entity = column.class_
    rows = session.execute(select(entity.id, column).where(where)).all()
    for start in range(0, len(rows), _BATCH):
        batch = rows[start : start + _BATCH]
        session.execute(update(entity), [{"id": i, column.key: t + delta} for i, t in batch])


def shift_demo_clock(engine: Engine, today: date) -> DemoShift:
    """Move the imported history by whole weeks so its last purchase is on the latest day before
    ``today`` with the same weekday (1 to 7 days before), once.

    Returns the stored shift when one was applied already (a later load moves nothing: chat orders
    placed since must stay after the history). Imported orders and imported customers' sign-up
    dates move together in one transaction with the record of the shift, whose id is always 1: of
    two loads racing, the second fails on it, rolls its moves back and reports the first's."""
    try:
        return _shift_once(engine, today)
    except IntegrityError:
        stored = demo_shift(engine)
        if stored is None:
            raise
        return stored


def _shift_once(engine: Engine, today: date) -> DemoShift:
    with session_scope(engine) as session:
        row = session.scalars(select(DemoClock).order_by(DemoClock.id).limit(1)).first()
        if row is not None:
            return _shift(row)
        last = session.scalar(select(func.max(Order.ordered_at)).where(Order.channel == IMPORTED))
        if last is None:
            raise RuntimeError("the demo store holds no imported orders: nothing to move")
        source_last_day = as_utc(last).date()
        days = (today - timedelta(days=1) - source_last_day).days
        days -= days % 7  # whole weeks: weekdays are kept, the last purchase 1-7 days before today
        if days:
            delta = timedelta(days=days)
            _move(session, Order.ordered_at, Order.channel == IMPORTED, delta)
            _move(session, Customer.created_at, Customer.source.in_((IMPORTED, DEMO_MARK)), delta)
        row = DemoClock(
            id=1,
            shift_days=days,
            source_last_day=source_last_day,
            last_day=source_last_day + timedelta(days=days),
            shifted_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return _shift(row)


def load_demo(
    engine: Engine,
    cache_dir: Path,
    progress: Callable[[str, int], None] | None = None,
    today: date | None = None,
) -> DemoCounts:
    """Load MovieLens-100k through the import pipeline (smartmkt/data/mappings/movielens.yml),
    then move its clock (``shift_demo_clock``) so its last purchase is in the week before
    ``today`` (default: today, UTC). A no-op when it is loaded and moved: the counts and the
    stored shift.

    Raises ValueError if the store already holds other data, so a shop's own data is never
    mixed with the demo.
    """
    today = today or utcnow().date()
    if demo_loaded(engine):
        return replace(demo_counts(engine), shift=shift_demo_clock(engine, today))
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
    return replace(demo_counts(engine), shift=shift_demo_clock(engine, today))
