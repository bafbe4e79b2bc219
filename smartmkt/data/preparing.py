"""Everything an import does to a chunk before writing it: drop exact duplicates, map the
columns to store fields, clean, settle business keys. Pure (no database), so a large file can be
prepared in a separate process while the importer writes (``prepared_chunks``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from smartmkt.data.cleaning import CLEANERS, DETAIL, IMPUTED, KEY, PYTHON, REPAIRS, RULE, Context
from smartmkt.data.loading import Rejected
from smartmkt.data.mapping import FIELDS, KindMapping
from smartmkt.data.prefetch import prefetch
from smartmkt.data.readers import BOOKKEEPING, ERROR, LINE, RAW, SourceInfo, read_chunks
from smartmkt.data.readers import REPAIRS as READER_REPAIRS
from smartmkt.data.seen import SeenHashes, row_hashes
from smartmkt.data.timings import Timings


@dataclass
class Prepared:
    """One chunk, read and cleaned, waiting to be written."""

    rows: int
    accepted: pl.DataFrame = field(default_factory=pl.DataFrame)
    fields: pl.DataFrame = field(default_factory=pl.DataFrame)  # mapped source values, by line
    rejected: list[Rejected] = field(default_factory=list)
    repaired: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    imputed: Counter[str] = field(default_factory=Counter)
    python_rows: int = 0  # rows with a cell only the row-by-row rule could read
    timings: Timings = field(default_factory=Timings)  # read, dedupe, clean (and its families)

    # A prepared chunk crosses from the preparing process to the writer pickled. A column with
    # no value at all (an orders file without names or countries) travels as polars' Null type:
    # a String column pickles 16 bytes a row even when empty.
    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = dict(vars(self))
        for name in ("accepted", "fields"):
            frame: pl.DataFrame = state[name]
            empty = [
                c
                for c, dtype in frame.schema.items()
                if dtype == pl.String and frame[c].null_count() == frame.height
            ]
            state[name] = (frame.with_columns(pl.col(empty).cast(pl.Null)), empty)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in ("accepted", "fields"):
            packed: tuple[pl.DataFrame, list[str]] = state[name]
            frame, empty = packed
            state[name] = frame.with_columns(pl.col(empty).cast(pl.String))
        vars(self).update(state)


# An order's own fields, the same on each of its lines (``order.filled_from_order``)
ORDER_LEVEL = ("customer_id", "ordered_at", "currency", "country")


def _blank(name: str) -> pl.Expr:
    return (pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")).alias(name)


def rule_counts(column: pl.Series) -> Counter[str]:
    """How often each rule name occurs in a column of space-separated rule names."""
    names = column.drop_nulls().str.split(" ").explode()
    names = names.filter(names != "")
    return Counter(dict(names.value_counts().iter_rows()))


def _count(counter: Counter[str], rule: str, n: int) -> None:
    if n:
        counter[rule] += n


class ChunkPreparer:
    """Carries what one file's chunks share: the rows and order lines already seen."""

    def __init__(self, ctx: Context, drop_exact: bool = True) -> None:
        self.ctx, self.drop_exact = ctx, drop_exact
        self.mapping = ctx.mapping
        self.kind = ctx.mapping.kind
        self.rows_seen = SeenHashes()
        self.keys_seen = SeenHashes()
        self._last_order = pl.DataFrame()  # the previous chunk's last line's order fields

    def close(self) -> None:
        self.rows_seen.close()
        self.keys_seen.close()

    def prepare(self, chunk: pl.DataFrame) -> Prepared:
        prepared = Prepared(rows=chunk.height)
        prepared.repaired.update(rule_counts(chunk[READER_REPAIRS]))
        prepared.rejected = [
            Rejected(line, raw, None, error, "the row could not be parsed")
            for line, raw, error in chunk.filter(pl.col(ERROR).is_not_null())
            .select(LINE, RAW, ERROR)
            .iter_rows()
        ]
        good = chunk.filter(pl.col(ERROR).is_null())
        timings = prepared.timings
        if self.drop_exact:
            with timings.time("dedupe"):
                source = [c for c in good.columns if c not in BOOKKEEPING]
                first = self.rows_seen.first_sight(*row_hashes(good, source))
                _count(prepared.duplicates, "duplicates.exact", int((~first).sum()))
                good = good.filter(pl.Series(first))
        with timings.time("clean"):
            fields = source_fields(good, self.kind, self.mapping)
            carried = pl.Series([], dtype=pl.Int64)  # the lines given their order's fields
            if self.kind == "orders" and "order_id" in self.mapping.columns:
                fields, filled = self._order_fields_carried(fields)
                carried = good[LINE].filter(filled)
            prepared.fields = fields.with_columns(good[LINE])
            cleaned = CLEANERS[self.kind](prepared.fields, self.ctx, timings).with_columns(
                good[LINE], good[RAW]
            )
        prepared.python_rows = int(cleaned[PYTHON].sum())
        cleaned = cleaned.drop(PYTHON)
        failed = cleaned.filter(pl.col(RULE).is_not_null())
        prepared.rejected += [
            Rejected(*row) for row in failed.select(LINE, RAW, pl.lit(None), RULE, DETAIL).iter_rows()
        ]
        with timings.time("dedupe"):
            accepted = self._business_keys(cleaned.filter(pl.col(RULE).is_null()), prepared)
        prepared.repaired.update(rule_counts(accepted[REPAIRS]))
        accepted = accepted.drop(RULE, DETAIL, REPAIRS)  # counted; the writer needs none of them
        _count(
            prepared.repaired, "order.filled_from_order", int(accepted[LINE].is_in(carried.implode()).sum())
        )
        prepared.imputed.update(rule_counts(accepted[IMPUTED]))
        prepared.accepted = accepted
        return prepared

    def _order_fields_carried(self, fields: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
        """Rule ``order.filled_from_order``: a line whose customer, date, currency or country is
        empty takes it from an earlier line of the same order id. Shopify's export writes an
        order's own fields on its first line only; the order's later lines would otherwise be
        quarantined for a missing customer or date. An order straddling two chunks is carried
        over (an export keeps an order's lines together). Returns the fields and which lines
        were given a value."""
        present = [f for f in ORDER_LEVEL if f in self.mapping.columns]
        nothing = pl.Series([False] * fields.height)
        lines = fields.select("order_id", *present)
        previous, self._last_order = self._last_order, lines.tail(1)
        if not present:
            return fields, nothing
        carried = pl.concat([previous, lines], how="diagonal") if previous.height else lines
        # only lines with a blank order field whose order has another line can take anything
        wanting = pl.any_horizontal(_blank(f) for f in present) & ~_blank("order_id")
        orders = carried.filter(wanting & pl.col("order_id").is_duplicated())["order_id"].unique()
        if orders.is_empty():
            return fields, nothing
        offset = carried.height - lines.height
        group = carried.with_row_index("row").filter(pl.col("order_id").is_in(orders.implode()))
        earlier = {  # each line's value, else its order's last value on an earlier line
            f: pl.when(~_blank(f)).then(pl.col(f)).forward_fill().over("order_id") for f in present
        }
        filled = group.select(
            (pl.col("row").cast(pl.Int64) - offset).alias("row"),
            *(
                pl.when(_blank(f)).then(pl.coalesce(earlier[f], pl.col(f))).otherwise(pl.col(f))
                for f in present
            ),
        ).filter(pl.col("row") >= 0)
        was_blank = group.filter(pl.col("row") >= offset).select(_blank(f) for f in present).to_numpy()
        still_blank = filled.select(_blank(f) for f in present).to_numpy()
        given = filled["row"].filter(pl.Series((was_blank & ~still_blank).any(axis=1)))
        rows = filled["row"].cast(pl.Int64)
        fields = fields.with_columns(fields[f].scatter(rows, filled[f]) for f in present)
        self._last_order = fields.select("order_id", *present).tail(1)
        return fields, nothing.scatter(given.cast(pl.Int64), True)

    def _business_keys(self, accepted: pl.DataFrame, prepared: Prepared) -> pl.DataFrame:
        """Orders: the first occurrence of an order line wins, later ones are quarantined.
        Customers and products: the last row for an id wins."""
        if self.kind == "orders":
            first = self.keys_seen.first_sight(*row_hashes(accepted, [KEY]))
            for line, raw, key in accepted.filter(pl.Series(~first)).select(LINE, RAW, KEY).iter_rows():
                detail = f"order line {key!r} was already read earlier in this import"
                prepared.rejected.append(Rejected(line, raw, None, "duplicates.business_key", detail))
            return accepted.filter(pl.Series(first))
        last = accepted.unique(subset=[KEY], keep="last", maintain_order=True)
        _count(prepared.duplicates, "duplicates.business_key", accepted.height - last.height)
        return last


def source_fields(chunk: pl.DataFrame, kind: str, mapping: KindMapping) -> pl.DataFrame:
    """The chunk's columns renamed to store fields; constants filled in; the rest missing."""
    columns = []
    for name in FIELDS[kind]:
        source = mapping.columns.get(name)
        if source is not None and source in chunk.columns:
            columns.append(chunk[source].cast(pl.String).alias(name))
        elif name in mapping.constants:
            columns.append(pl.Series(name, [str(mapping.constants[name])] * chunk.height, dtype=pl.String))
        else:
            columns.append(pl.Series(name, [None] * chunk.height, dtype=pl.String))
    return pl.DataFrame(columns)


def prepared_chunks(info: SourceInfo, ctx: Context, chunk_rows: int) -> Iterator[Prepared]:
    """A whole file, chunk by chunk, prepared (what the preparing process or thread runs). The
    next chunk is read in a thread of its own while this one is cleaned (polars and the file
    reads release the GIL), one chunk ahead."""
    preparer = ChunkPreparer(ctx)
    try:
        for chunk, read_s in prefetch(_read_timed(info, ctx, chunk_rows), depth=1):
            prepared = preparer.prepare(chunk)
            prepared.timings.add("read", read_s)
            yield prepared
    finally:
        preparer.close()


def _read_timed(info: SourceInfo, ctx: Context, chunk_rows: int) -> Iterator[tuple[pl.DataFrame, float]]:
    """Each chunk with the seconds spent reading it (not those spent waiting to hand it over)."""
    reading = Timings()
    for chunk in reading.each(read_chunks(info, ctx.mapping.header or None, chunk_rows), "read"):
        yield chunk, reading.pop("read")
