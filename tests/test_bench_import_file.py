"""The import benchmark's file stays what it is: ``smartmkt bench import`` figures compare across
commits only while the generated export (its rows, and its shares of messy values) is the same.
A change to the generator that changes the file must change these hashes on purpose, and say
so in docs/benchmarks.md."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smartmkt.bench.imports import GENERATE_ROWS, generate_orders

PINNED = {
    # rows: sha256 of the file for seed 7; 600,000 rows span two generation chunks
    30_000: "28b06c6da26c4509b081db38aa73349c693ad79824ec9c5e817d526b04b99c56",
    600_000: "ebe9b97049ca853ce5bb649f6b1a95bad9b3ee552f19a4b56f015b06d0f89535",
}


@pytest.mark.parametrize("rows", sorted(PINNED))
def test_the_generated_export_is_pinned(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "orders.csv"
    assert generate_orders(path, rows, seed=7) == rows
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PINNED[rows]


def test_the_pinned_sizes_cross_a_generation_chunk() -> None:
    assert max(PINNED) > GENERATE_ROWS > min(PINNED)


# What the pipeline of 585ee84 (before issue 19's rework: the csv module for quoted records,
# executemany from Python tuples) reported for the pinned 30,000-row file, and a SHA-256 of the
# order lines it stored (customer, product, quantity, prices, time, key, imputed fields; by key).
# The reworked pipeline must give the same, chunked and in bulk.
BEFORE_REWORK = {
    "rows_read": 30_000,
    "inserted": 29_268,
    "duplicates": {"duplicates.exact": 306},
    "quarantined": {
        "duplicates.business_key": 154,
        "format.column_count": 11,
        "invalid.zero_quantity": 129,
        "missing.customer_id": 86,
        "reference.unknown_product": 46,
    },
    "repaired": {
        "date.epoch": 885,
        "date.reformatted": 2350,
        "date.timezone": 1158,
        "missing.token": 869,
        "money.currency_found": 3568,
        "money.decimal_comma": 1453,
        "money.thousands": 115,
        "order.return": 593,
        "text.normalized": 283,
    },
    "imputed": {"imputed.amount": 869, "imputed.quantity": 151},
}
ORDERS_SHA_BEFORE_REWORK = "83ce1f644563d75b8eccd1c7af0ec9d9c0f9400426156722b3059f30c2d9326f"


@pytest.mark.parametrize("bulk", [False, True], ids=["chunked", "bulk"])
def test_the_bench_file_imports_as_before_the_rework(tmp_path: Path, bulk: bool) -> None:
    """Same counts per rule, and the same order lines stored (a checksum of the table), as
    before the import was reworked for speed: chunked (SQLAlchemy, a transaction per chunk) and
    in bulk (ADBC, one transaction), in chunks of 7,000 so that chunks straddle the reader's
    blocks."""
    from sqlalchemy import text

    from smartmkt.bench.imports import generate_catalog
    from smartmkt.data.importer import Importer
    from smartmkt.store.db import make_engine
    from smartmkt.store.migrate import upgrade

    orders = tmp_path / "orders.csv"
    generate_orders(orders, 30_000, seed=7)
    customers, products = generate_catalog(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    now = datetime(2026, 11, 27, tzinfo=UTC)
    Importer(engine, now=now).run({"customers": customers, "products": products})
    importer = Importer(engine, now=now, batch_size=7_000, bulk_rows=1 if bulk else 10**9)
    report = importer.run({"orders": orders}).files[0]
    assert report.bulk is bulk
    figures = {name: getattr(report, name) for name in BEFORE_REWORK}
    assert {k: dict(v) if isinstance(v, dict) else v for k, v in figures.items()} == BEFORE_REWORK
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.external_ref, p.external_ref, o.quantity, o.unit_price_cents, o.amount_cents,"
                " o.ordered_at, o.line_key, o.imputed FROM orders o"
                " JOIN customers c ON c.id = o.customer_id JOIN products p ON p.id = o.product_id"
                " ORDER BY o.line_key"
            )
        ).all()
    engine.dispose()
    table = "\n".join("|".join(map(str, row)) for row in rows).encode()
    assert hashlib.sha256(table).hexdigest() == ORDERS_SHA_BEFORE_REWORK


# The same order lines, read through the store's own types (times in UTC, imputed fields as
# lists), so that SQLite and PostgreSQL compare: what 585ee84's pipeline stored in SQLite.
ORDERS_READ_BEFORE_REWORK = "f1f28004259bc320deaae2dc5eae6a82e48f663d5ac23417373c233b04571afc"


def test_the_bench_file_imports_alike_on_every_store(tmp_path: Path, store_url: str) -> None:
    """Chunked, on SQLite and on PostgreSQL (order lines through COPY there): the counts per
    rule of the pipeline before the rework, and the same order lines."""
    from sqlalchemy import select

    from smartmkt.bench.imports import generate_catalog
    from smartmkt.data.importer import Importer
    from smartmkt.store.db import make_engine
    from smartmkt.store.models import Customer, Order, Product

    orders = tmp_path / "orders.csv"
    generate_orders(orders, 30_000, seed=7)
    customers, products = generate_catalog(tmp_path)
    engine = make_engine(store_url)
    now = datetime(2026, 11, 27, tzinfo=UTC)
    Importer(engine, now=now).run({"customers": customers, "products": products})
    report = Importer(engine, now=now, batch_size=7_000, bulk_rows=10**9).run({"orders": orders}).files[0]
    figures = {name: getattr(report, name) for name in BEFORE_REWORK}
    assert {k: dict(v) if isinstance(v, dict) else v for k, v in figures.items()} == BEFORE_REWORK
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Customer.external_ref,
                Product.external_ref,
                Order.quantity,
                Order.unit_price_cents,
                Order.amount_cents,
                Order.ordered_at,
                Order.line_key,
                Order.imputed,
            )
            .join(Customer, Customer.id == Order.customer_id)
            .join(Product, Product.id == Order.product_id)
            .order_by(Order.line_key)
        ).all()
    engine.dispose()
    lines = [(*row[:5], _utc(row[5]).isoformat(), *row[6:]) for row in rows]
    table = "\n".join("|".join(map(str, line)) for line in lines).encode()
    assert hashlib.sha256(table).hexdigest() == ORDERS_READ_BEFORE_REWORK


def _utc(moment: datetime) -> datetime:
    """SQLite gives the stored UTC time without a zone, PostgreSQL with the session's."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_the_bench_imports_into_a_postgresql_database_of_its_own() -> None:
    """``bench import --database-url`` (a PostgreSQL server): the figures for that store, and
    the database it made for itself is gone afterwards; another kind of URL is refused."""
    import json
    import os
    import subprocess
    import sys

    import sqlalchemy as sa

    server = os.environ.get("SMARTMKT_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("SMARTMKT_TEST_POSTGRES_URL is not set: run `make test` (or .ci/postgres start)")
    command = [str(Path(sys.executable).parent / "smartmkt"), "bench", "import", "--rows", "3000", "--json"]
    done = subprocess.run([*command, "--database-url", server], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["store"], report["rows"], report["bulk"]) == ("postgresql", 3000, False)
    assert report["inserted"] + report["quarantined"] + sum(report["duplicates"].values()) == 3000
    admin = sa.create_engine(server)
    with admin.connect() as conn:
        query = "SELECT datname FROM pg_database WHERE datname LIKE 'smartmkt_bench_import_%'"
        assert conn.execute(sa.text(query)).all() == []
    admin.dispose()
    refused = subprocess.run(
        [*command, "--database-url", "sqlite:///x.db"], capture_output=True, text=True, check=False
    )
    assert refused.returncode == 1 and "must be a PostgreSQL URL" in refused.stderr
