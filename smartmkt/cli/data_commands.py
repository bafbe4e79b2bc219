"""``smartmkt data``: load the demo or CDNOW, import a shop's exports, report on the data and
work through the rows an import quarantined."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smartmkt.cli.progress import console, counting_bars
from smartmkt.cli.shared import JsonFlag, fail, migrated_store
from smartmkt.settings import currency_code, get_settings

data_app = typer.Typer(help="Data in the store.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Rows an import set aside.", no_args_is_help=True)
data_app.add_typer(quarantine_app, name="quarantine")


@data_app.command("load-demo")
def data_load_demo(as_json: JsonFlag = False) -> None:
    """Load the demo store (MovieLens-100k from the recbole 1.2.1 wheel) with its clock moved so
    its last purchase falls in the week before, weekdays kept (chosen once, stored); no-op if loaded."""
    from smartmkt.data.demo import load_demo
    from smartmkt.store.db import get_engine
    from smartmkt.store.migrate import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    totals = {"customers": 943, "products": 1682, "orders": 100_000}
    try:
        with counting_bars(totals=totals) as advance:
            counts = load_demo(get_engine(), settings.var_dir / "cache" / "wheels", progress=advance)
    except (ValueError, RuntimeError) as exc:
        fail(str(exc))
    shift = counts.shift
    if as_json:
        figures = {"customers": counts.customers, "products": counts.products, "orders": counts.orders}
        print(json.dumps({**figures, "shift": shift.as_json() if shift else None}, indent=2))
        return
    console.print(
        f"demo store: {counts.customers} customers, {counts.products} products, {counts.orders} orders"
    )
    if shift:
        console.print(
            f"demo clock: moved {shift.days:+,} days (last demo purchase {shift.source_last_day} -> "
            f"{shift.last_day}; chosen when first loaded, {shift.shifted_at:%Y-%m-%d})"
        )


@data_app.command("import")
def data_import(
    customers: Annotated[Path | None, typer.Option("--customers", help="Customers file.")] = None,
    products: Annotated[Path | None, typer.Option("--products", help="Products file.")] = None,
    orders: Annotated[Path | None, typer.Option("--orders", help="Orders file.")] = None,
    mapping: Annotated[Path | None, typer.Option("--mapping", help="YAML column mapping.")] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1_000_000, help="Rows per chunk (one transaction each).")
    ] = 100_000,
    currency: Annotated[
        str | None,
        typer.Option(
            "--currency",
            help="The shop's currency (ISO code, e.g. GBP) for prices and lines that name none; "
            "default SMARTMKT_CURRENCY. Asked for when a file does not say and neither is given.",
        ),
    ] = None,
    create_missing: Annotated[
        bool,
        typer.Option(
            "--create-missing",
            help="Create the customers and products an orders file names that the store does not "
            "have, from its lines (an orders-only export); without it they are quarantined.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Import a shop's exports (CSV/TSV, JSON Lines, JSON, Parquet, Excel, fixed-width text)."""
    from smartmkt.data.importer import CurrencyUnknown, Importer
    from smartmkt.data.mapping import MappingError
    from smartmkt.data.readers import ReaderError
    from smartmkt.store.db import get_engine
    from smartmkt.store.migrate import upgrade

    sources = {k: p for k, p in (("customers", customers), ("products", products), ("orders", orders)) if p}
    if not sources:
        fail("nothing to import: give --customers, --products and/or --orders")
    settings = get_settings()
    shop_currency = _currency_code(currency) if currency else None
    if shop_currency is None and "currency" in settings.model_fields_set:
        shop_currency = settings.currency  # SMARTMKT_CURRENCY, set on purpose
    upgrade(settings.resolved_database_url)
    while True:
        try:
            with counting_bars(enabled=not as_json) as advance:
                report = Importer(
                    get_engine(),
                    batch_size=batch_size,
                    progress=lambda path, n: advance(Path(path).name, n),
                    currency=shop_currency,
                    create_missing=create_missing,
                ).run(sources, mapping)
            break
        except CurrencyUnknown as exc:
            if as_json or not sys.stdin.isatty():
                fail(f"{exc}: give --currency CODE (e.g. --currency GBP) or set SMARTMKT_CURRENCY")
            shop_currency = _currency_code(typer.prompt(f"{exc}. The shop's currency (ISO code, e.g. GBP)"))
        except MappingError as exc:
            _mapping_failed(exc, as_json)
        except (ReaderError, OSError) as exc:
            fail(str(exc))
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
        return
    for f in report.files:
        if f.mapping_detected:
            console.print(
                f"[bold]{f.kind}[/bold] mapping detected for {f.file}: "
                + ", ".join(f"{k} <- {v}" for k, v in f.mapping.items())
            )
    table = Table("file", "kind", "read", "inserted", "updated", "unchanged", "duplicates", "quarantined")
    for f in report.files:
        table.add_row(
            Path(f.file).name,
            f.kind,
            str(f.rows_read),
            str(f.inserted),
            str(f.updated),
            str(f.unchanged),
            str(sum(f.duplicates.values())),
            str(sum(f.quarantined.values())),
        )
    console.print(table)
    for f in report.files:
        if f.repaired or f.imputed:
            changes = {**f.repaired, **f.imputed}
            console.print(
                f"{Path(f.file).name} repaired: " + ", ".join(f"{k} {n}" for k, n in changes.items())
            )
    rules = {r: n for f in report.files for r, n in f.quarantined.items()}
    if rules:
        console.print(
            "quarantined by rule: "
            + ", ".join(f"{r} {n}" for r, n in rules.items())
            + "  (see `smartmkt data quarantine list`)"
        )
    unknown = sum(n for r, n in rules.items() if r.startswith("reference.unknown_"))
    if unknown and not create_missing:
        console.print(
            f"{unknown} order line(s) name customers or products the store does not have: import their "
            "files, then `smartmkt data quarantine retry` (an orders-only export: --create-missing)"
        )
    console.print(f"run {report.run_id} in {report.elapsed_s:.1f} s")


def _mapping_failed(exc: Exception, as_json: bool) -> None:
    """A file whose columns detection cannot place: the mapping it would use, as YAML to edit
    and pass with --mapping, then the error."""
    suggestion = getattr(exc, "suggestion", None)
    if suggestion and not as_json:
        console.print("The mapping detection would use (save it, fill it in, pass it with --mapping):")
        print(suggestion, end="")
    if suggestion and as_json:
        print(json.dumps({"error": str(exc), "suggested_mapping": suggestion}, indent=2))
        raise typer.Exit(1)
    fail(str(exc))


def _currency_code(text: str) -> str:
    try:
        return currency_code(text, "--currency")
    except ValueError as exc:
        fail(str(exc))
        raise  # not reached: fail exits


@data_app.command("load-cdnow")
def data_load_cdnow(
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Default: sqlite:///var/cdnow.db (its own store).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Load CDNOW (the buy-till-you-die benchmark) through the import pipeline into its own store."""
    from smartmkt.data.cdnow import default_url, load_cdnow

    settings = get_settings()
    url = database_url or default_url(settings.var_dir)
    with counting_bars(enabled=not as_json) as advance:
        report = load_cdnow(
            url, settings.var_dir / "cache" / "wheels", progress=lambda _path, n: advance("CDNOW", n)
        )
    body = report.as_dict()
    if as_json:
        print(json.dumps({"database_url": url, **body}, indent=2, default=str))
        return
    console.print(
        f"CDNOW into {url}: {body['rows_read']} rows read, {body['inserted']} inserted, "
        f"{body['unchanged']} unchanged, {body['duplicates_dropped']} exact duplicates dropped, "
        f"{body['quarantined_total']} quarantined, in {body['elapsed_s']} s"
    )


@data_app.command("report")
def data_report(as_json: JsonFlag = False) -> None:
    """Data quality of the store: counts, date range, missing rates, top categories, quarantine."""
    from smartmkt.data.quality import quality_report

    report = quality_report(migrated_store())
    if as_json:
        print(json.dumps(report, indent=2))
        return
    console.print(f"rows: {report['tables']}")
    console.print(f"orders from {report['orders_date_range'][0]} to {report['orders_date_range'][1]}")
    table = Table("table", "field", "missing")
    for name, rates in report["missing_rate"].items():
        for field_name, rate in rates.items():
            table.add_row(name, field_name, f"{rate:.1%}")
    console.print(table)
    console.print("top categories: " + ", ".join(f"{k} {n}" for k, n in report["top_categories"].items()))
    console.print(f"open quarantine: {report['quarantine_open'] or 'none'}")


@quarantine_app.command("list")
def quarantine_list(
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    rule: Annotated[str | None, typer.Option("--rule")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: JsonFlag = False,
) -> None:
    """Open quarantined rows with their file, line, rule and raw text."""
    from smartmkt.data.quarantine import list_quarantine

    entries = list_quarantine(migrated_store(), kind, rule, limit)
    if as_json:
        print(json.dumps([e.__dict__ for e in entries], indent=2, default=str))
        return
    table = Table("id", "kind", "file", "line", "rule", "detail", "raw")
    for e in entries:
        table.add_row(
            str(e.id), e.kind, Path(e.source_file).name, str(e.line_number), e.rule, e.detail, e.raw[:60]
        )
    console.print(table)


@quarantine_app.command("retry")
def quarantine_retry(
    kind: Annotated[str | None, typer.Option("--kind")] = None,
    fixed: Annotated[
        Path | None,
        typer.Option(
            "--fixed",
            help="Corrected rows: a file with a quarantine_id column and the original file's columns.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run open quarantined rows through the rules again (e.g. after importing missing customers),
    or import corrected versions of them (--fixed) and resolve the entries they fix."""
    from smartmkt.data.importer import Importer
    from smartmkt.data.readers import ReaderError

    try:
        importer = Importer(migrated_store(), currency=get_settings().currency)
        reports = importer.retry_fixed(fixed) if fixed else importer.retry_quarantine(kind)
    except (ReaderError, ValueError, OSError) as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
        return
    for r in reports:
        console.print(
            f"{r.kind} from {Path(r.file).name}: {r.rows_read} retried, {r.accepted} imported, "
            f"{sum(r.quarantined.values())} still quarantined {dict(r.quarantined) or ''}"
        )
    if not reports:
        console.print("nothing to retry")


@quarantine_app.command("export")
def quarantine_export(
    output: Annotated[Path, typer.Argument(help="CSV file to write.")],
    kind: Annotated[str | None, typer.Option("--kind")] = None,
) -> None:
    """Write open quarantined rows to CSV for a person to fix."""
    from smartmkt.data.quarantine import export_quarantine

    if output.is_dir() or not output.parent.is_dir():
        fail(f"{output}: not a file in an existing folder")
    console.print(f"{export_quarantine(migrated_store(), output, kind)} rows written to {output}")
