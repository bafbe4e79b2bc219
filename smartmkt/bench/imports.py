"""``smartmkt bench import``: a generated messy orders export, imported into a fresh store (a
SQLite file, or with ``--database-url`` a database of its own on a PostgreSQL server).

The file is what a shop's export really looks like at scale: mostly one date and number format,
with a share of everything else (US and ISO-with-offset dates, epoch seconds, CDNOW-style
compact dates, "5 Mar 2024"; "$1,234.50", "12,50", "9.99 EUR", "N/A" amounts; padded ids;
returns; zero and missing quantities; missing customer ids; unknown products; exact and
business-key duplicates; lines with a wrong column count; stray cp1252 bytes). Generation is
seeded and chunked, so the same file comes out on every machine in bounded memory.

The import runs in a child process, so ``peak_rss_mb`` is the import's own peak resident memory
(the generator's memory is not counted; nor is the PostgreSQL server's).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

GENERATE_ROWS = 500_000
CUSTOMERS = 100_000
PRODUCTS = 10_000
START = 1_577_836_800  # 2020-01-01
SPAN = 4 * 365 * 86_400
CP1252_MARK = b"\x01"  # stands for the euro sign written as a cp1252 byte (invalid UTF-8)


def _pick(rng: np.random.Generator, n: int, shares: dict[str, float]) -> np.ndarray:
    names = list(shares)
    weights = np.array([shares[k] for k in names])
    return np.array(names)[rng.choice(len(names), size=n, p=weights / weights.sum())]


def _chunk(rng: np.random.Generator, start_row: int, n: int) -> list[str]:
    """``n`` order lines (as CSV text lines) starting at row ``start_row``."""
    order = start_row + np.arange(n)
    customer = rng.integers(1, CUSTOMERS + 1, n)
    product = rng.integers(1, PRODUCTS + 1, n)
    seconds = START + (order * (SPAN // 6_000_000)) + rng.integers(0, 3600, n)  # time-ordered export
    quantity = rng.integers(1, 6, n)
    big_ticket = rng.random(n) < 0.05  # a share of lines worth thousands ("$1,234.50")
    unit_cents = np.where(big_ticket, rng.integers(10_000, 250_000, n), rng.integers(199, 9_999, n))
    frame = pl.DataFrame(
        {
            "order": order,
            "customer": customer,
            "product": product,
            "seconds": seconds,
            "quantity": quantity,
            "unit": unit_cents,
            "date_form": _pick(
                rng, n, {"iso": 85, "us": 5, "offset": 4, "epoch": 3, "compact": 2, "words": 1}
            ),
            "amount_form": _pick(rng, n, {"plain": 80, "dollars": 10, "comma": 5, "missing": 3, "eur": 2}),
            "qty_form": _pick(rng, n, {"plain": 97, "return": 2, "zero": 0.5, "missing": 0.5}),
            "row_form": _pick(
                rng,
                n,
                {
                    "ok": 97.4,
                    "padded": 1,
                    "no_customer": 0.3,
                    "unknown_product": 0.2,
                    "columns": 0.05,
                    "cp1252": 0.05,
                },
            ),
            "dup": _pick(rng, n, {"none": 98.5, "exact": 1, "key": 0.5}),
        }
    )
    stamp = pl.from_epoch(pl.col("seconds"))
    date = (
        pl.when(pl.col("date_form") == "iso")
        .then(stamp.dt.strftime("%Y-%m-%d %H:%M:%S"))
        .when(pl.col("date_form") == "us")
        .then(stamp.dt.strftime("%m/%d/%Y %H:%M"))
        .when(pl.col("date_form") == "offset")
        .then((stamp + pl.duration(hours=2)).dt.strftime("%Y-%m-%dT%H:%M:%S+02:00"))
        .when(pl.col("date_form") == "epoch")
        .then(pl.col("seconds").cast(pl.String))
        .when(pl.col("date_form") == "compact")
        .then(stamp.dt.strftime("%Y%m%d"))
        .otherwise(stamp.dt.strftime("%-d %b %Y"))
    )
    qty = (
        pl.when(pl.col("qty_form") == "return")
        .then(pl.lit("-1"))
        .when(pl.col("qty_form") == "zero")
        .then(pl.lit("0"))
        .when(pl.col("qty_form") == "missing")
        .then(pl.lit(""))
        .otherwise(pl.col("quantity").cast(pl.String))
    )
    total_cents = pl.col("unit") * pl.col("quantity")
    dollars = (total_cents // 100).cast(pl.String)
    cents = (total_cents % 100).cast(pl.String).str.pad_start(2, "0")
    thousands = (
        pl.when(total_cents >= 100_000)
        .then(
            (total_cents // 100_000).cast(pl.String)
            + ","
            + ((total_cents // 100) % 1000).cast(pl.String).str.pad_start(3, "0")
        )
        .otherwise(dollars)
    )
    amount = (
        pl.when(pl.col("amount_form") == "dollars")
        .then('"$' + thousands + "." + cents + '"')
        .when(pl.col("amount_form") == "comma")
        .then('"' + dollars + "," + cents + '"')
        .when(pl.col("amount_form") == "missing")
        .then(pl.lit("N/A"))
        .when(pl.col("row_form") == "cp1252")
        .then(dollars + "." + cents + " \x01")
        .when(pl.col("amount_form") == "eur")
        .then(dollars + "." + cents + " EUR")
        .otherwise(dollars + "." + cents)
    )
    customer_text = (
        pl.when(pl.col("row_form") == "no_customer")
        .then(pl.lit(""))
        .when(pl.col("row_form") == "padded")
        .then(" C" + pl.col("customer").cast(pl.String) + " ")
        .otherwise("C" + pl.col("customer").cast(pl.String))
    )
    product_text = (
        pl.when(pl.col("row_form") == "unknown_product")
        .then("X" + pl.col("product").cast(pl.String))
        .otherwise("P" + pl.col("product").cast(pl.String))
    )
    unit_text = (
        (pl.col("unit") // 100).cast(pl.String)
        + "."
        + (pl.col("unit") % 100).cast(pl.String).str.pad_start(2, "0")
    )
    line = pl.concat_str(
        "O" + pl.col("order").cast(pl.String),
        customer_text,
        product_text,
        qty,
        unit_text,
        amount,
        pl.when(pl.col("amount_form") == "eur").then(pl.lit("EUR")).otherwise(pl.lit("USD")),
        date,
        separator=",",
    )
    line = pl.when(pl.col("row_form") == "columns").then(line.str.replace(r",[^,]*$", "")).otherwise(line)
    lines = frame.with_columns(line.alias("line"))
    key_dup = lines.filter(pl.col("dup") == "key").with_columns(
        pl.col("line").str.replace(r",USD,", ",USD ,")
    )
    exact_dup = lines.filter(pl.col("dup") == "exact")
    out = pl.concat([lines, exact_dup, key_dup]).sort("order", maintain_order=True)
    return out["line"].to_list()


def generate_orders(path: Path, rows: int, seed: int = 7) -> int:
    """A messy orders CSV of about ``rows`` lines (duplicates included); returns the line count."""
    rng = np.random.default_rng(seed)
    written = 0
    with path.open("wb") as handle:
        handle.write(b"order_id,customer_id,sku,qty,unit_price,total,currency,order_date\n")
        start = 0
        while written < rows:
            lines = _chunk(rng, start, min(GENERATE_ROWS, rows - written))
            lines = lines[: rows - written]
            body = "\n".join(lines) + "\n"
            handle.write(body.encode("utf-8").replace(CP1252_MARK, b"\x80"))  # "€" in cp1252
            written += len(lines)
            start += GENERATE_ROWS
    return written


def generate_catalog(folder: Path) -> tuple[Path, Path]:
    customers = folder / "customers.csv"
    products = folder / "products.csv"
    pl.DataFrame({"customer_id": [f"C{i}" for i in range(1, CUSTOMERS + 1)]}).with_columns(
        pl.lit("2019-06-01").alias("signup_date")
    ).write_csv(customers)
    rng = np.random.default_rng(11)
    pl.DataFrame(
        {
            "sku": [f"P{i}" for i in range(1, PRODUCTS + 1)],
            "name": [f"Product number {i}" for i in range(1, PRODUCTS + 1)],
            "price": [f"{c / 100:.2f}" for c in rng.integers(199, 9_999, PRODUCTS)],
            "category": rng.choice(["Comedy", "Drama", "Action|Thriller", "Sci-Fi"], PRODUCTS),
        }
    ).write_csv(products)
    return customers, products


class BenchStoreError(RuntimeError):
    """The store the bench was pointed at cannot be used (not PostgreSQL, unreachable)."""


@contextmanager
def bench_store(folder: Path, database_url: str | None) -> Iterator[str]:
    """A fresh store's URL: a SQLite file in ``folder``, or a database of the bench's own on
    the PostgreSQL server ``database_url`` names, dropped afterwards."""
    if database_url is None:
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    import sqlalchemy as sa

    if not database_url.startswith("postgresql"):
        raise BenchStoreError(f"--database-url must be a PostgreSQL URL, not {database_url.split(':')[0]}")
    name = f"smartmkt_bench_import_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.SQLAlchemyError as exc:
        admin.dispose()
        raise BenchStoreError(f"cannot create a database on {admin.url.render_as_string()}: {exc}") from exc
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _child(url: str, orders: Path, customers: Path, products: Path) -> dict[str, Any]:
    """Runs in the child process: catalog first (not timed), then the orders file (timed)."""
    from smartmkt.data.importer import Importer
    from smartmkt.store.db import make_engine
    from smartmkt.store.migrate import upgrade

    upgrade(url)
    engine = make_engine(url)
    Importer(engine).run({"customers": customers, "products": products})
    start = time.perf_counter()
    report = Importer(engine).run({"orders": orders}).files[0]
    elapsed = time.perf_counter() - start
    engine.dispose()
    return {"elapsed_s": elapsed, **report.as_dict()}


def breakdown(timings: dict[str, float], elapsed_s: float) -> dict[str, Any]:
    """Where the import's time went. Reading, cleaning and de-duplicating run in the preparing
    process (or thread) while the writer writes the chunk before: ``read_s``, ``clean_s`` (with
    ``clean_s_by_family``; "other": mapping the columns, the rules' bookkeeping) and
    ``dedupe_s`` are that process's busy time. The writer's ``setup_s``, ``wait_s`` (for the
    next prepared chunk: what preparing costs beyond the overlap), ``write_s``, ``index_s``,
    ``commit_s`` and ``other_s`` (the run's own records) sum to ``elapsed_s``."""
    get = lambda name: round(timings.get(name, 0.0), 2)  # noqa: E731
    families = {k.removeprefix("clean."): v for k, v in timings.items() if k.startswith("clean.")}
    families["other"] = timings.get("clean", 0.0) - sum(families.values())
    writer = ("setup", "wait", "write", "index", "commit")
    return {
        "read_s": get("read"),
        "clean_s": get("clean"),
        "clean_s_by_family": {k: round(v, 2) for k, v in sorted(families.items(), key=lambda kv: -kv[1])},
        "dedupe_s": get("dedupe"),
        **{f"{name}_s": get(name) for name in writer},
        "other_s": round(elapsed_s - sum(timings.get(name, 0.0) for name in writer), 2),
    }


def run_import_bench(
    rows: int, workdir: Path | None = None, keep: bool = False, database_url: str | None = None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(dir=workdir) as tmp, bench_store(Path(tmp), database_url) as url:
        folder = Path(tmp)
        orders = folder / "orders.csv"
        started = time.perf_counter()
        lines = generate_orders(orders, rows)
        customers, products = generate_catalog(folder)
        generated_s = time.perf_counter() - started
        command = [
            sys.executable,
            "-c",
            "import json,sys; from smartmkt.bench.imports import _child; from pathlib import Path;"
            "print(json.dumps(_child(sys.argv[1], *map(Path, sys.argv[2:]))))",
            url,
            str(orders),
            str(customers),
            str(products),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the import failed: {done.stderr.strip()[-2000:]}")
        child = json.loads(done.stdout.strip().splitlines()[-1])
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        report = {
            "store": "postgresql" if url.startswith("postgresql") else "sqlite",
            "rows": lines,
            "rows_per_s": round(lines / child["elapsed_s"]),
            "peak_rss_mb": round(peak_kb / 1024),
            "quarantined": child["quarantined_total"],
            "python_rows": child["python_rows"],  # rows a cell of which took the row-by-row rule
            "python_share": round(child["python_rows"] / max(1, lines), 5),
            "elapsed_s": round(child["elapsed_s"], 2),
            **breakdown(child["timings"], child["elapsed_s"]),
            "file_mb": round(orders.stat().st_size / 2**20),
            "inserted": child["inserted"],
            "duplicates": child["duplicates"],
            "quarantined_by_rule": child["quarantined"],
            "repaired": child["repaired"],
            "imputed": child["imputed"],
            "bulk": child["bulk"],
            "generate_s": round(generated_s, 2),
        }
        if keep:
            report["kept"] = str(orders)
        return report
