"""The importer on hand-written messy files: exact counts per rule, quarantined reasons,
idempotent re-import, incremental files, and an interrupted import leaving the store whole."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from smartmkt.data.importer import Importer
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.models import Customer, Order, Product, QuarantinedRow

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    """The same tests on SQLite and on PostgreSQL."""
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    customers = tmp_path / "customers.csv"
    customers.write_bytes(
        codecs.BOM_UTF8
        + (
            b"Customer ID,Signup Date,Zip\n"
            b"C1,2024-01-05,10115\n"
            b"C2,05/02/2024,N/A\n"
            b"C2,05/02/2024,N/A\n"  # exact duplicate
            b",2024-01-01,12345\n"  # missing id
            b"C3,,99999\n"  # no sign-up date: imputed
            b"C4,2024-02-30,11111\n"  # impossible date
            b"C5,2024-03-01\n"  # wrong column count
        )
    )
    products = tmp_path / "products.tsv"
    products.write_bytes(
        (
            "sku\tname\tgenre\tprice\n"
            "P1\tCafé Olé\t  COMEDY \t$1,234.50\n"
            "P2\tNaïve\tdrama|ROMANCE\t3,50\n"
            "P3\t\tDrama\t4\n"  # missing title
            "P4\tBad Price\tDrama\t-2\n"  # negative price
            "P2\tNaïve (2nd edition)\tDrama\t3,75\n"  # same sku again: the last one wins
        ).encode("cp1252")
    )
    orders = tmp_path / "orders.jsonl"
    lines = [
        {
            "order": "O1",
            "customer": "C1",
            "sku": "P1",
            "qty": "2",
            "total": "$2,469.00",
            "date": "2024-03-05T10:00:00+02:00",
        },
        {"order": "O1", "customer": "C1", "sku": "P2", "qty": 1, "total": None, "date": "5 Mar 2024"},
        {"order": "O2", "customer": "C9", "sku": "P1", "qty": 1, "total": "7", "date": "2024-03-06"},
        {"order": "O3", "customer": "C2", "sku": "P1", "qty": 0, "total": "7", "date": "2024-03-06"},
        {"order": "O4", "customer": "C2", "sku": "P2", "qty": -1, "total": "3,50", "date": 1709900000},
        {"order": "O5", "customer": "C3", "sku": "P9", "qty": 1, "total": "1", "date": "2024-03-07"},
    ]
    orders.write_text("\n".join(json.dumps(x) for x in lines) + '\n{"order": "O6", "custo\n')
    return {"customers": customers, "products": products, "orders": orders}


def run(engine: Engine, files: dict[str, Path], **kw):  # type: ignore[no-untyped-def]
    return {f.kind: f for f in Importer(engine, now=NOW, **kw).run(files).files}


def count(engine: Engine, model: type) -> int:  # type: ignore[type-arg]
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_messy_files_exact_counts(engine: Engine, files: dict[str, Path]) -> None:
    report = run(engine, files)
    c, p, o = report["customers"], report["products"], report["orders"]
    assert (c.rows_read, c.inserted, c.duplicates["duplicates.exact"]) == (7, 3, 1)
    assert dict(c.quarantined) == {"missing.customer_id": 1, "invalid.date": 1, "format.column_count": 1}
    assert c.imputed["imputed.created_at"] == 1 and c.repaired["date.reformatted"] == 1
    assert (p.rows_read, p.inserted, p.updated, p.duplicates["duplicates.business_key"]) == (5, 2, 0, 1)
    assert dict(p.quarantined) == {"missing.title": 1, "invalid.negative_price": 1}
    # counted on the rows stored: the second P2 row replaced the first one
    assert p.repaired["money.thousands"] == 1 and p.repaired["money.decimal_comma"] == 1
    assert p.imputed["imputed.currency"] == 1  # P2; P1 names its currency with "$"
    assert (o.rows_read, o.inserted) == (7, 3)
    assert dict(o.quarantined) == {
        "reference.unknown_customer": 1,
        "invalid.zero_quantity": 1,
        "reference.unknown_product": 1,
        "format.json": 1,
    }
    assert o.repaired["order.return"] == 1 and o.imputed["imputed.amount"] == 1
    # nothing lost: every row read is accepted, a dropped duplicate, or quarantined
    for f in report.values():
        assert f.rows_read == f.accepted + sum(f.duplicates.values()) + sum(f.quarantined.values())
    assert count(engine, QuarantinedRow) == 3 + 2 + 4
    with session_scope(engine) as s:
        p2 = s.scalars(select(Product).where(Product.external_ref == "P2")).one()
        assert (p2.title, p2.price_cents, p2.genres) == ("Naïve (2nd edition)", 375, "Drama")
        p1 = s.scalars(select(Product).where(Product.external_ref == "P1")).one()
        assert (p1.title, p1.price_cents, p1.currency, p1.genres) == ("Café Olé", 123450, "USD", "Comedy")
        ret = s.scalars(select(Order).where(Order.quantity < 0)).one()
        assert ret.amount_cents == -350
        first = s.scalars(select(Order).where(Order.line_key == "o:O1|P1")).one()
        assert first.ordered_at.replace(tzinfo=UTC) == datetime(2024, 3, 5, 8, tzinfo=UTC)
        reasons = {q.rule: q for q in s.scalars(select(QuarantinedRow))}
        assert reasons["format.column_count"].raw == "C5,2024-03-01"
        assert reasons["format.column_count"].line_number == 8
        assert "C9" in reasons["reference.unknown_customer"].detail


def test_reimport_changes_nothing(engine: Engine, files: dict[str, Path]) -> None:
    run(engine, files)
    before = (
        count(engine, Customer),
        count(engine, Product),
        count(engine, Order),
        count(engine, QuarantinedRow),
    )
    again = run(engine, files)
    assert all(f.inserted == 0 and f.updated == 0 for f in again.values())
    assert (
        count(engine, Customer),
        count(engine, Product),
        count(engine, Order),
        count(engine, QuarantinedRow),
    ) == before


def test_a_later_file_adds_only_new_orders(engine: Engine, files: dict[str, Path], tmp_path: Path) -> None:
    run(engine, files)
    later = tmp_path / "later.jsonl"
    later.write_text(
        files["orders"].read_text().splitlines()[0]
        + "\n"
        + json.dumps(
            {"order": "O7", "customer": "C3", "sku": "P1", "qty": 1, "total": "5", "date": "2024-04-01"}
        )
        + "\n"
    )
    report = run(engine, {"orders": later})["orders"]
    assert (report.inserted, report.unchanged) == (1, 1)


def test_placeholders_by_configuration(engine: Engine, files: dict[str, Path], tmp_path: Path) -> None:
    mapping = tmp_path / "m.yml"
    mapping.write_text("orders:\n  unknown_references: placeholder\n")
    report = Importer(engine, now=NOW).run(files, mapping)
    orders = next(f for f in report.files if f.kind == "orders")
    assert orders.repaired["reference.placeholder_customer"] == 1
    assert orders.repaired["reference.placeholder_product"] == 1
    assert "reference.unknown_customer" not in orders.quarantined


def test_an_interrupted_import_leaves_a_batch_boundary_and_resumes(engine: Engine, tmp_path: Path) -> None:
    orders = tmp_path / "orders.csv"
    rows = "".join(f"C1,P1,2024-01-{1 + i % 28:02d},{i}\n" for i in range(1, 101))
    orders.write_text("customer,sku,date,total\n" + rows)
    run(
        engine,
        {
            "customers": _one(tmp_path, "c.csv", "id\nC1\n"),
            "products": _one(tmp_path, "p.csv", "sku,title,price\nP1,T,1\n"),
        },
    )
    batches = []

    def crash_after_two(_path: str, _n: int) -> None:
        batches.append(_n)
        if len(batches) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Importer(engine, batch_size=30, now=NOW, progress=crash_after_two).run({"orders": orders})
    assert count(engine, Order) == 60  # two committed batches, never half of one
    resumed = run(engine, {"orders": orders})["orders"]
    assert (resumed.unchanged, resumed.inserted) == (60, 40)
    assert count(engine, Order) == 100


def _one(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_quality_report_after_a_messy_import(engine: Engine, files: dict[str, Path], tmp_path: Path) -> None:
    from smartmkt.data.quality import quality_report
    from smartmkt.data.quarantine import export_quarantine

    run(engine, files)
    report = quality_report(engine)
    assert report["tables"] == {"customers": 3, "products": 2, "orders": 3}
    assert report["missing_rate"]["customers"]["postal_code"] == round(1 / 3, 4)  # C2 had "N/A"
    assert report["top_categories"] == {"Drama": 1, "Comedy": 1}
    assert sum(report["quarantine_open"].values()) == 9
    exported = tmp_path / "q.csv"
    assert export_quarantine(engine, exported) == 9
    assert "C5,2024-03-01" in exported.read_text()


def test_retry_imports_rows_whose_reference_now_exists(
    engine: Engine, files: dict[str, Path], tmp_path: Path
) -> None:
    run(engine, files)
    late = tmp_path / "late_customers.csv"
    late.write_text("Customer ID\nC9\n")
    run(engine, {"customers": late})
    reports = Importer(engine, now=NOW).retry_quarantine(kind="orders")
    orders = {r.file: r for r in reports}[str(files["orders"])]
    assert orders.inserted == 1  # C9's order
    assert dict(orders.quarantined) == {"invalid.zero_quantity": 1, "reference.unknown_product": 1}
    with session_scope(engine) as s:
        open_rules = sorted(
            s.scalars(
                select(QuarantinedRow.rule).where(
                    QuarantinedRow.kind == "orders", QuarantinedRow.resolved_at.is_(None)
                )
            )
        )
    # the unreadable JSON line cannot be retried: its file must be fixed and re-imported
    assert open_rules == ["format.json", "invalid.zero_quantity", "reference.unknown_product"]
    again = Importer(engine, now=NOW).retry_quarantine(kind="orders")
    assert sum(r.inserted for r in again) == 0


def _orders_table(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with session_scope(engine) as s:
        rows = s.execute(
            select(Order.customer_id, Order.product_id, Order.quantity, Order.amount_cents, Order.line_key)
        ).all()
    return sorted(tuple(r) for r in rows)


def _indexes(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {row[0] for row in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}


def _quarantine_table(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with session_scope(engine) as s:
        entries = s.scalars(select(QuarantinedRow).order_by(QuarantinedRow.kind, QuarantinedRow.line_number))
        return [
            (e.kind, e.line_number, e.raw, e.fields, e.rule, e.detail, e.created_at.year) for e in entries
        ]


def _stored_lines(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with session_scope(engine) as s:
        rows = s.execute(
            select(Order.line_key, Order.ordered_at, Order.unit_price_cents, Order.channel, Order.imputed)
        ).all()
    return sorted((key, at.isoformat(), unit, channel, imputed) for key, at, unit, channel, imputed in rows)


def test_bulk_import_matches_the_chunked_one(tmp_path: Path, files: dict[str, Path]) -> None:
    """SQLite bulk mode (ADBC, order lines bound from Arrow; indexes dropped and rebuilt in one
    transaction) stores the same rows, times, JSON and quarantine entries as the chunked one."""
    from smartmkt.store.migrate import upgrade

    engines = []
    for name, bulk_rows in (("chunked", 10**9), ("bulk", 1)):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        engines.append(make_engine(url))
        reports = {f.kind: f for f in Importer(engines[-1], now=NOW, bulk_rows=bulk_rows).run(files).files}
        assert reports["orders"].bulk is (name == "bulk")
    chunked, bulk = engines
    assert _orders_table(bulk) == _orders_table(chunked) and len(_orders_table(bulk)) == 3
    assert _stored_lines(bulk) == _stored_lines(chunked)
    assert _quarantine_table(bulk) == _quarantine_table(chunked) and len(_quarantine_table(bulk)) > 3
    again = Importer(bulk, now=NOW, bulk_rows=1).run({"orders": files["orders"]}).files[0]
    assert (again.bulk, again.inserted, again.unchanged) == (True, 0, 3)  # nothing stored twice
    assert {"ix_orders_customer_time", "ix_orders_ordered_at", "uq_orders_line_key"} <= _indexes(bulk)
    with bulk.connect() as conn:  # foreign keys are enforced again on the pooled connection
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_an_interrupted_bulk_import_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    from smartmkt.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'bulk.db'}"
    upgrade(url)
    engine = make_engine(url)
    orders = tmp_path / "orders.csv"
    orders.write_text("customer,sku,date,total\n" + "".join(f"C1,P1,2024-01-01,{i}\n" for i in range(1, 101)))
    Importer(engine, now=NOW).run(
        {
            "customers": _one(tmp_path, "c.csv", "id\nC1\n"),
            "products": _one(tmp_path, "p.csv", "sku,title,price\nP1,T,1\n"),
        }
    )

    def crash_after_two(_path: str, n: int, seen: list[int] = []) -> None:  # noqa: B006
        seen.append(n)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Importer(engine, batch_size=30, now=NOW, progress=crash_after_two, bulk_rows=1).run(
            {"orders": orders}
        )
    assert count(engine, Order) == 0  # one transaction: all of it or none
    assert {"ix_orders_customer_time", "ix_orders_ordered_at"} <= _indexes(engine)  # the DROPs rolled back
    again = Importer(engine, now=NOW, bulk_rows=1).run({"orders": orders}).files[0]
    assert (again.bulk, again.inserted) == (True, 100)


def test_a_bulk_import_waits_for_no_connection_it_cannot_see(tmp_path: Path, files: dict[str, Path]) -> None:
    """ADBC's driver carries its own SQLite: it never opens the store while this process has a
    connection of its own open to it (smartmkt.data.writers); the import is chunked instead."""
    from smartmkt.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    Importer(engine, now=NOW).run({"customers": files["customers"], "products": files["products"]})
    with engine.connect():  # held open while the import runs
        report = Importer(engine, now=NOW, bulk_rows=1).run({"orders": files["orders"]}).files[0]
    assert (report.bulk, report.inserted) == (False, 3)


KILLED_IMPORT = """
import sys
import time
from pathlib import Path
from smartmkt.data.importer import Importer
from smartmkt.store.db import make_engine

written = []

def progress(_path, rows):
    written.append(rows)
    print(rows, flush=True)
    if len(written) == 4:  # four chunks in the transaction: wait here to be killed
        time.sleep(120)

importer = Importer(make_engine(sys.argv[1]), batch_size=2_000, bulk_rows=1, progress=progress)
importer.run({"orders": Path(sys.argv[2])})
"""


def test_a_killed_bulk_import_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    """The process is killed (SIGKILL: no exception, no rollback of its own) after it has
    written several chunks of a bulk import: the store has none of its lines and all of its
    indexes, and the import runs again whole."""
    import signal
    import subprocess
    import sys

    from smartmkt.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    engine = make_engine(url)
    Importer(engine, now=NOW).run(
        {
            "customers": _one(tmp_path, "c.csv", "id\n" + "".join(f"C{i}\n" for i in range(50))),
            "products": _one(tmp_path, "p.csv", "sku,title,price\nP1,T,1\n"),
        }
    )
    engine.dispose()
    lines = "".join(f"O{i},C{i % 50},P1,2024-01-01 10:00,{i % 7 + 1}\n" for i in range(40_000))
    orders = _one(tmp_path, "o.csv", "order,customer,sku,date,qty\n" + lines)
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_IMPORT, url, str(orders)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    written = [child.stdout.readline() for _ in range(4)]  # four chunks written; it waits
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert all(line.strip() == "2000" for line in written)
    engine = make_engine(url)
    assert count(engine, Order) == 0
    assert {"ix_orders_customer_time", "ix_orders_ordered_at", "uq_orders_line_key"} <= _indexes(engine)
    again = Importer(engine, now=NOW, bulk_rows=1).run({"orders": orders}).files[0]
    assert (again.bulk, again.inserted) == (True, 40_000)
    engine.dispose()


def test_a_large_file_is_prepared_in_a_second_process(engine: Engine, files: dict[str, Path]) -> None:
    """process_rows=1 sends every file through the child process: same result as in-process."""
    reports = {f.kind: f for f in Importer(engine, now=NOW, process_rows=1).run(files).files}
    assert (reports["orders"].rows_read, reports["orders"].inserted) == (7, 3)
    assert dict(reports["customers"].quarantined) == {
        "missing.customer_id": 1,
        "invalid.date": 1,
        "format.column_count": 1,
    }


def test_fixed_rows_resolve_their_quarantine_entries(
    engine: Engine, files: dict[str, Path], tmp_path: Path
) -> None:
    """A row the reader could not parse (wrong column count) is fixed by hand and re-imported."""
    run(engine, files)
    with session_scope(engine) as s:
        entry = s.scalars(select(QuarantinedRow).where(QuarantinedRow.rule == "format.column_count")).one()
        entry_id = entry.id
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"quarantine_id,Customer ID,Signup Date,Zip\n{entry_id},C5,2024-03-01,10999\n")
    reports = Importer(engine, now=NOW).retry_fixed(fixed)
    assert [(r.kind, r.inserted) for r in reports] == [("customers", 1)]
    with session_scope(engine) as s:
        c5 = s.scalars(select(Customer).where(Customer.external_ref == "C5")).one()
        assert c5.postal_code == "10999"
        assert s.get(QuarantinedRow, entry_id).resolved_at is not None  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="no open quarantine entries"):
        Importer(engine, now=NOW).retry_fixed(fixed)  # already resolved
    (tmp_path / "bad.csv").write_text("Customer ID\nC6\n")
    with pytest.raises(ValueError, match="quarantine_id"):
        Importer(engine, now=NOW).retry_fixed(tmp_path / "bad.csv")


def test_values_the_store_cannot_hold_are_quarantined(engine: Engine, tmp_path: Path) -> None:
    """Over-long ids and amounts beyond the integer columns are set aside, never a crash."""
    customers = _one(tmp_path, "c.csv", "id,zip\n" + "X" * 200 + ",1\nC1," + "9" * 30 + "\n")
    products = _one(
        tmp_path,
        "p.csv",
        'sku,title,price,year\nP1,T,1,1995\nP2,T2,"$99,999,999,999.00",2000\nP3,T3,2,MCMXC\n',
    )
    reports = {
        f.kind: f for f in Importer(engine, now=NOW).run({"customers": customers, "products": products}).files
    }
    assert dict(reports["customers"].quarantined) == {"invalid.too_long": 2}  # the id; the zip
    assert dict(reports["products"].quarantined) == {"invalid.money": 1}
    assert reports["products"].repaired["dropped.unreadable"] == 1  # P3's year, the row kept
    assert reports["products"].inserted == 2


def test_a_negative_unit_price_is_quarantined_not_flipped(engine: Engine, tmp_path: Path) -> None:
    """A line whose unit price is below zero ("Adjust bad debt" lines in retail exports) breaks
    the row rule invalid.negative_price; before, the pipeline stored it as a positive price with
    no rule named. A return (a negative quantity at a positive price) is kept as a return."""
    customers = _one(tmp_path, "c.csv", "id\nC1\n")
    products = _one(tmp_path, "p.csv", "sku,title,price\nP1,T,9.99\n")
    orders = _one(
        tmp_path,
        "o.csv",
        "order_id,customer_id,sku,qty,unit_price,date\n"
        "O1,C1,P1,1,-3.45,2024-03-05\n"
        'O2,C1,P1,1,"-$1,234.50",2024-03-05\n'
        "O3,C1,P1,-2,3.45,2024-03-05\n",
    )
    Importer(engine, now=NOW).run({"customers": customers, "products": products})
    report = Importer(engine, now=NOW).run({"orders": orders}).files[0]
    assert dict(report.quarantined) == {"invalid.negative_price": 2}
    assert report.inserted == 1 and report.repaired["order.return"] == 1
    with session_scope(engine) as s:
        [(quantity, unit, amount)] = s.execute(
            select(Order.quantity, Order.unit_price_cents, Order.amount_cents)
        ).all()
    assert (quantity, unit, amount) == (-2, 345, -690)


def test_an_orders_fields_carry_to_its_later_lines_across_chunks(engine: Engine, tmp_path: Path) -> None:
    """order.filled_from_order: a line with no customer or date takes its order's, from an
    earlier line of the same order id, also when the order straddles two chunks (batch_size 2);
    a line of another order, or with no order id, gets nothing and is quarantined as before."""
    customers = _one(tmp_path, "c.csv", "id\nC1\nC2\n")
    products = _one(tmp_path, "p.csv", "sku,title,price\nP1,T,1\nP2,U,2\nP3,V,3\n")
    orders = _one(
        tmp_path,
        "o.csv",
        "order,customer,sku,date\n"
        "#1,C1,P1,2024-03-05 10:00\n"
        "#1,,P2,\n"  # same chunk
        "#1,,P3,\n"  # next chunk: carried over
        "#2,,P1,2024-03-06\n"  # another order: no customer to take
        ",,P2,2024-03-06\n"  # no order id
        "#3,C2,P1,\n",  # its order has no date anywhere
    )
    Importer(engine, now=NOW).run({"customers": customers, "products": products})
    report = Importer(engine, now=NOW, batch_size=2).run({"orders": orders}).files[0]
    assert report.repaired["order.filled_from_order"] == 2
    assert dict(report.quarantined) == {"missing.customer_id": 2, "missing.ordered_at": 1}
    with session_scope(engine) as s:
        stored = s.execute(
            select(Customer.external_ref, Product.external_ref, Order.ordered_at)
            .join(Customer, Customer.id == Order.customer_id)
            .join(Product, Product.id == Order.product_id)
            .order_by(Product.external_ref)
        ).all()
    assert [(c, p, f"{at:%Y-%m-%d %H:%M}") for c, p, at in stored] == [
        ("C1", "P1", "2024-03-05 10:00"),
        ("C1", "P2", "2024-03-05 10:00"),
        ("C1", "P3", "2024-03-05 10:00"),
    ]


UCI_ORDERS = """InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country
536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom
536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom
536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850,United Kingdom
536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047,France
536368,85123A,CREAM HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:35,2.55,13047,
"""


def test_an_orders_file_names_its_products_and_a_products_file_wins(engine: Engine, tmp_path: Path) -> None:
    """Product names on order lines (the UCI Online Retail export's Description) title the
    products they create, the chunk's last name winning; a products file's title then wins over
    any later orders file; the lines' Country fills in the customer's country."""
    mapping = _one(tmp_path, "m.yml", "orders:\n  unknown_references: placeholder\n")
    orders = _one(tmp_path, "o.csv", UCI_ORDERS)
    report = Importer(engine, now=NOW).run({"orders": orders}, mapping).files[0]
    assert report.mapping["title"] == "Description" and report.inserted == 5
    assert report.repaired["reference.placeholder_product"] == 4

    def products() -> dict[str, tuple[str, str | None, list[str] | None]]:
        with session_scope(engine) as s:
            rows = s.execute(
                select(Product.external_ref, Product.title, Product.title_source, Product.imputed)
            )
            return {ref: (title, source, imputed) for ref, title, source, imputed in rows}

    assert products()["85123A"] == ("CREAM HANGING HEART T-LIGHT HOLDER", "orders", ["price"])
    assert products()["71053"][:2] == ("WHITE METAL LANTERN", "orders")
    with session_scope(engine) as s:
        countries = dict(s.execute(select(Customer.external_ref, Customer.country)).all())
    assert countries == {"17850": "United Kingdom", "13047": "France"}

    catalog = _one(tmp_path, "p.csv", "sku,title,price\n71053,White metal lantern,3.39\n")
    Importer(engine, now=NOW).run({"products": catalog})
    later = _one(
        tmp_path,
        "o2.csv",
        "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
        "536370,71053,LANTERN (OLD NAME),1,12/2/2010 9:00,3.39,13047,Spain\n"
        "536370,84879,BIRD ORNAMENT,1,12/2/2010 9:00,1.69,13047,Spain\n",
    )
    again = Importer(engine, now=NOW).run({"orders": later}, mapping).files[0]
    assert again.repaired["product.named_by_order_line"] == 1  # 84879 only
    assert "customer.country_from_order_line" not in again.repaired  # France is kept
    assert products()["71053"][:2] == ("White metal lantern", "products")
    assert products()["84879"][:2] == ("BIRD ORNAMENT", "orders")


def _catalog_rows(engine: Engine) -> list[tuple]:  # type: ignore[type-arg]
    with session_scope(engine) as s:
        products = s.execute(
            select(
                Product.external_ref,
                Product.title,
                Product.genres,
                Product.price_cents,
                Product.currency,
                Product.active,
                Product.imputed,
                Product.title_source,
                Product.catalog_version.is_not(None),
            ).order_by(Product.external_ref)
        ).all()
        customers = s.execute(
            select(Customer.external_ref, Customer.country, Customer.source, Customer.created_at).order_by(
                Customer.external_ref
            )
        ).all()
    return [*map(tuple, products), *map(tuple, customers)]


def test_a_bulk_import_creates_and_names_what_the_chunked_one_does(tmp_path: Path) -> None:
    """In bulk (ADBC) the customers and products an orders file creates, the names and
    countries it gives them and their catalog version are those of the chunked import: JSON,
    times and booleans written as SQLAlchemy writes them. A second file renames in bulk too."""
    from smartmkt.store.migrate import upgrade

    mapping = _one(tmp_path, "m.yml", "orders:\n  unknown_references: placeholder\n")
    orders = _one(tmp_path, "o.csv", UCI_ORDERS)
    header = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    more = "".join(
        f"5364{i:02d},{sku},{name},1,12/2/2010 9:{i:02d},1.69,{who},Spain\n"
        for i, (sku, name, who) in enumerate(
            [("84879", "BIRD ORNAMENT", "13047"), ("22633", "HAND WARMER", "99999")] * 3
        )
    )
    later = _one(tmp_path, "o2.csv", header + more)  # as many lines as the store has: bulk again
    stores = []
    for name, bulk_rows in (("chunked", 10**9), ("bulk", 1)):
        url = f"sqlite:///{tmp_path / name}.db"
        upgrade(url)
        engine = make_engine(url)
        first = Importer(engine, now=NOW, bulk_rows=bulk_rows).run({"orders": orders}, mapping).files[0]
        second = Importer(engine, now=NOW, bulk_rows=bulk_rows).run({"orders": later}, mapping).files[0]
        assert (first.bulk, second.bulk) == (name == "bulk", name == "bulk")
        stores.append((engine, dict(first.repaired), dict(second.repaired)))
    (chunked, *reports_chunked), (bulk, *reports_bulk) = stores
    assert reports_bulk == reports_chunked
    assert reports_bulk[1]["product.named_by_order_line"] == 2  # 84879, 22633: new names
    assert reports_bulk[1]["reference.placeholder_customer"] == 1  # 99999
    assert _catalog_rows(bulk) == _catalog_rows(chunked)
    assert _orders_table(bulk) == _orders_table(chunked) and len(_orders_table(bulk)) == 11


def test_an_import_says_where_its_time_went(engine: Engine, files: dict[str, Path]) -> None:
    """Each file's report times its stages (smartmkt.data.timings): the preparing side's read,
    clean (per rule family) and dedupe, and the writer's setup, wait, write and commit, which
    with the run's own records make up its elapsed time (``bench import``'s breakdown)."""
    from smartmkt.bench.imports import breakdown

    orders = run(engine, files)["orders"]
    timings = orders.timings
    assert {
        "read",
        "clean",
        "clean.ids",
        "clean.dates",
        "clean.money",
        "dedupe",
        "setup",
        "wait",
        "write",
    } <= set(timings)
    assert all(seconds >= 0 for seconds in timings.values()), timings
    assert sum(v for k, v in timings.items() if k.startswith("clean.")) <= timings["clean"]
    parts = breakdown(timings, orders.elapsed_s)
    writer = ("setup_s", "wait_s", "write_s", "index_s", "commit_s", "other_s")
    assert abs(sum(parts[k] for k in writer) - orders.elapsed_s) < 0.05, parts
    assert parts["other_s"] >= -0.02 and orders.as_dict()["timings"]["write"] > 0
