"""Writing cleaned chunks into the store: upserts for customers and products, insert-if-new for
order lines, and quarantine rows; in the caller's transaction, so a chunk is all or nothing.

The statements go through smartmkt.data.writers: SQLAlchemy Core on a transaction's connection,
or, for a large orders file into SQLite, an ADBC connection whose one transaction holds the whole
file (``ArrowSQLite``: order lines bound from Arrow buffers, the orders table's secondary
indexes dropped while they go in and built again at the end).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Connection, update

from smartmkt.data.cleaning import IMPUTED, KEY
from smartmkt.data.writers import ORDER_COLUMNS, CoreRows, Rows
from smartmkt.store.models import CatalogState, Customer, Product, QuarantinedRow


def rows_of(conn: Connection | Rows) -> Rows:
    """The statements on ``conn``: a Core connection, or a bulk import's own (already Rows)."""
    return CoreRows(conn) if isinstance(conn, Connection) else conn


@dataclass
class Rejected:
    """A row set aside: where it came from, what it said, and why."""

    line: int
    raw: str
    fields: dict[str, Any] | None
    rule: str
    detail: str


@dataclass
class WriteCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    repaired: dict[str, int] = field(default_factory=dict)
    imputed: dict[str, int] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)


# --- customers and products --------------------------------------------------------------------
ENTITY_FIELDS = {
    "customers": ("age", "gender", "occupation", "postal_code", "country"),
    # title_source: a products file's title wins over an order line's (OrderWriter._names)
    "products": ("title", "year", "genres", "price_cents", "currency", "active", "title_source"),
}


def upsert_entities(conn: Connection, kind: str, records: pl.DataFrame) -> WriteCounts:
    """New ids are inserted; known ones updated where a field differs (the file is newer)."""
    model: Any = Customer if kind == "customers" else Product
    compared = ENTITY_FIELDS[kind]
    counts = WriteCounts()
    rows = CoreRows(conn)
    refs = records["external_ref"].to_list()
    existing = rows.by_ref(model, [model.external_ref, *(getattr(model, f) for f in compared)], refs)
    known = {row[0]: row[1:] for row in existing}
    inserts, updates = [], []
    if kind == "products":
        records = records.with_columns(pl.lit("products").alias("title_source"))
    for record in records.iter_rows(named=True):
        before = known.get(record["external_ref"])
        if before is None:
            inserts.append(_entity_row(kind, record))
        elif tuple(before) != tuple(record[f] for f in compared):
            updates.append({"ref": record["external_ref"], **{f: record[f] for f in compared}})
        else:
            counts.unchanged += 1
    if kind == "products" and (inserts or updates):  # serving processes follow the catalog by it
        version = next_catalog_version(rows)
        for row in (*inserts, *updates):
            row["catalog_version"] = version
    rows.insert(model, inserts)
    rows.update_by_ref(model, updates, {})
    counts.inserted, counts.updated = len(inserts), len(updates)
    return counts


def next_catalog_version(rows: Rows) -> int:
    """The catalog's next version, for the products this transaction writes. The UPDATE locks
    catalog_state's row until commit, so product writes commit in version order and a reader
    that has seen version N has seen every change up to N (smartmkt.recommend.live_catalog)."""
    version = rows.scalar(
        update(CatalogState)
        .where(CatalogState.id == 1)
        .values(version=CatalogState.version + 1)
        .returning(CatalogState.version)
    )
    if version is None:  # a store made without the migration that adds the row
        rows.insert(CatalogState, [{"id": 1, "version": 1}])
        version = 1
    return int(version)


def _entity_row(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    imputed = _field_names(record[IMPUTED]) or None
    if kind == "customers":
        own = ("external_ref", "created_at", *ENTITY_FIELDS["customers"])
        return {**{f: record[f] for f in own}, "source": "import", "imputed": imputed}
    return {**{f: record[f] for f in ("external_ref", *ENTITY_FIELDS["products"])}, "imputed": imputed}


def _field_names(rules: str | None) -> list[str]:
    """ "imputed.currency imputed.amount" -> ["currency", "amount"] (the store names fields)."""
    return [rule.split(".", 1)[1] for rule in (rules or "").split()]


# --- orders ---------------------------------------------------------------------------------
class OrderWriter:
    """Order lines for one file: resolves customer and product ids (creating placeholders when
    the mapping says so), fills amounts from the catalog, inserts lines not stored yet."""

    def __init__(
        self,
        conn: Connection | Rows,
        placeholders: bool,
        records: pl.DataFrame | None = None,
        channel: str = "import",
    ) -> None:
        """Every customer's and product's id is read at once (a file's lines reference most of
        them), or, given the ``records`` to write (a few lines sent through the shop API), only
        theirs. ``channel`` is stored on each order line."""
        self.placeholders, self.channel = placeholders, channel
        customer_refs = None if records is None else records["customer_ref"].unique()
        product_refs = None if records is None else records["product_ref"].unique()
        rows = rows_of(conn)
        self.customers = self._ids(rows, Customer, customer_refs)
        self.products = self._ids(rows, Product, product_refs)

    @staticmethod
    def _ids(rows: Rows, model: Any, refs: pl.Series | None = None) -> pl.DataFrame:
        """ref -> id (and the catalog price, for products): for ``refs``, or every row."""
        columns = [model.external_ref, model.id] + ([model.price_cents] if model is Product else [])
        found = rows.by_ref(model, columns, None if refs is None else refs.to_list())
        schema = {"ref": pl.String, "id": pl.Int64} | ({"price": pl.Int64} if model is Product else {})
        return pl.DataFrame(found, schema=schema, orient="row")

    def write(self, conn: Connection | Rows, records: pl.DataFrame) -> WriteCounts:
        rows = rows_of(conn)
        counts = WriteCounts()
        if self.placeholders:
            self._placeholders(rows, records, counts)
        if records["title"].null_count() < records.height:
            self._names(rows, records, counts)
        if records["country"].null_count() < records.height:
            self._countries(rows, records, counts)
        joined = records.join(
            self.customers.rename({"ref": "customer_ref", "id": "customer_id"}), on="customer_ref", how="left"
        ).join(
            self.products.rename({"ref": "product_ref", "id": "product_id", "price": "catalog_price"}),
            on="product_ref",
            how="left",
            maintain_order="left",
        )
        unknown = joined.filter(pl.col("customer_id").is_null() | pl.col("product_id").is_null())
        for row in unknown.iter_rows(named=True):
            side = "customer" if row["customer_id"] is None else "product"
            ref = row[f"{side}_ref"]
            counts.rejected.append(
                Rejected(
                    row["__line"],
                    row["__raw"],
                    None,
                    f"reference.unknown_{side}",
                    f"{side} {ref!r} is not in the store",
                )
            )
        lines = joined.filter(pl.col("customer_id").is_not_null() & pl.col("product_id").is_not_null())
        from_catalog = lines["amount_missing"]
        counts.imputed["imputed.amount"] = int(from_catalog.sum())
        lines = lines.with_columns(
            pl.when(pl.col("amount_missing"))
            .then(pl.col("catalog_price") * pl.col("quantity"))
            .otherwise(pl.col("amount_cents"))
            .alias("amount_cents"),
            pl.coalesce(pl.col("unit_cents"), pl.col("catalog_price")).alias("unit_price_cents"),
            _imputed_json(
                pl.concat_str(
                    pl.col(IMPUTED),
                    pl.when(pl.col("amount_missing")).then(pl.lit("imputed.amount")),
                    separator=" ",
                    ignore_nulls=True,
                )
            ).alias("imputed"),
            pl.lit(0).alias("discount_pct"),
            pl.lit(self.channel).alias("channel"),
            pl.col(KEY).alias("line_key"),
        )
        counts.inserted = rows.insert_lines(lines.select(ORDER_COLUMNS)) if lines.height else 0
        counts.unchanged = lines.height - counts.inserted
        return counts

    def _placeholders(self, rows: Rows, records: pl.DataFrame, counts: WriteCounts) -> None:
        new_customers = (
            records.filter(~pl.col("customer_ref").is_in(self.customers["ref"].implode()))
            .group_by("customer_ref", maintain_order=True)
            .agg(pl.col("ordered_at").first(), pl.col("country").drop_nulls().last())
        )
        if new_customers.height:
            customers = [
                {"external_ref": ref, "created_at": at, "source": "placeholder", "country": country}
                for ref, at, country in new_customers.iter_rows()
            ]
            rows.insert(Customer, customers)
            self.customers = pl.concat(
                [self.customers, self._ids(rows, Customer, new_customers["customer_ref"])]
            )
            counts.repaired["reference.placeholder_customer"] = new_customers.height
        new_products = (
            records.filter(~pl.col("product_ref").is_in(self.products["ref"].implode()))
            .group_by("product_ref", maintain_order=True)
            .agg(
                pl.col("unit_cents").first(),
                pl.col("amount_cents").first(),
                pl.col("quantity").first(),
                pl.col("currency").first(),
                pl.col("title").drop_nulls().last(),  # an orders file's product name, if any
                pl.col("genres").filter(pl.col("genres") != "").last(),
            )
        )
        if new_products.height:
            version = next_catalog_version(rows)
            products = []
            for ref, unit, amount, quantity, currency, title, genres in new_products.iter_rows():
                price = (
                    unit
                    if unit is not None
                    else (round(abs(amount) / max(1, abs(quantity))) if amount is not None else 0)
                )
                products.append(
                    {
                        "external_ref": ref,
                        "title": title or f"Product {ref}",
                        "genres": genres or "",
                        "price_cents": abs(price),
                        "currency": currency,
                        "active": True,
                        "imputed": ["price"] if title else ["title", "price"],
                        "title_source": "orders" if title else "placeholder",
                        "catalog_version": version,
                    }
                )
            rows.insert(Product, products)
            self.products = pl.concat([self.products, self._ids(rows, Product, new_products["product_ref"])])
            counts.repaired["reference.placeholder_product"] = new_products.height

    def _names(self, rows: Rows, records: pl.DataFrame, counts: WriteCounts) -> None:
        """Product names (and categories) on order lines title the products no products file
        has titled (placeholders, or titled by an earlier order line): the last line's name in
        the chunk wins, rule ``product.named_by_order_line``. A products file's title is kept."""
        named = (
            records.filter(pl.col("title").is_not_null())
            .group_by("product_ref", maintain_order=True)
            .agg(pl.col("title").last(), pl.col("genres").filter(pl.col("genres") != "").last())
        )
        columns = [Product.external_ref, Product.title, Product.genres, Product.title_source, Product.imputed]
        stored = {
            ref: (title, genres, source, imputed)
            for ref, title, genres, source, imputed in rows.by_ref(
                Product, columns, named["product_ref"].to_list()
            )
        }
        updates = []
        for ref, title, genres in named.iter_rows():
            before = stored.get(ref)
            if before is None or before[2] not in ("orders", "placeholder"):
                continue  # not in the store (quarantined), or titled by a products file
            genres = genres or before[1]
            if (title, genres, "orders") != before[:3]:
                imputed = [f for f in (before[3] or []) if f != "title"] or None
                updates.append({"ref": ref, "title": title, "genres": genres, "imputed": imputed})
        if not updates:
            return
        version = next_catalog_version(rows)
        rows.update_by_ref(Product, updates, {"title_source": "orders", "catalog_version": version})
        counts.repaired["product.named_by_order_line"] = len(updates)

    def _countries(self, rows: Rows, records: pl.DataFrame, counts: WriteCounts) -> None:
        """A country on order lines fills in the customer's country when the store has none
        (a customers file's is kept): rule ``customer.country_from_order_line``."""
        latest = (
            records.filter(pl.col("country").is_not_null())
            .group_by("customer_ref", maintain_order=True)
            .agg(pl.col("country").last())
        )
        columns = [Customer.external_ref, Customer.country]
        stored = rows.by_ref(Customer, columns, latest["customer_ref"].to_list())
        empty = {ref for ref, country in stored if country is None}
        updates = [{"ref": ref, "country": c} for ref, c in latest.iter_rows() if ref in empty]
        rows.update_by_ref(Customer, updates, {})
        if updates:
            counts.repaired["customer.country_from_order_line"] = len(updates)


def _imputed_json(rules: pl.Expr) -> pl.Expr:
    names = rules.str.strip_chars().str.replace_all(r"imputed\.", "")
    quoted = pl.concat_str(pl.lit('["'), names.str.replace_all(r"\s+", '", "'), pl.lit('"]'))
    return pl.when(names.fill_null("") == "").then(None).otherwise(quoted)


# --- quarantine --------------------------------------------------------------------------------
def quarantine(
    conn: Connection | Rows,
    run_id: int,
    kind: str,
    source: str,
    sha: str,
    rows: Sequence[Rejected],
    now: datetime,
) -> None:
    """Rejected rows, once each: a row already quarantined by an earlier run of the same file
    (same content hash, kind and line) is not stored twice."""
    values = [
        {
            "run_id": run_id,
            "kind": kind,
            "source_file": source,
            "source_sha": sha,
            "line_number": r.line,
            "raw": r.raw,
            "fields": r.fields,
            "rule": r.rule,
            "detail": r.detail,
            "created_at": now,
        }
        for r in rows
    ]
    rows_of(conn).insert(QuarantinedRow, values, ignore_conflicts=True)
