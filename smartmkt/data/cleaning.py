"""The import's row rules, vectorised: a chunk of mapped fields in, store records out.

Every row comes out accepted (with the repairs and imputations it needed) or rejected with the
first rule it broke, in the order the fields are checked. Cell conversions are those of
smartmkt.data.columnar (and so of smartmkt.data.values); the rules added here are:

  missing.<field>          a required field is empty
  imputed.currency         no currency anywhere on the row -> the shop's currency
                           (Context.currency: SMARTMKT_CURRENCY, or what `data import` asked)
  imputed.quantity         no quantity on an order line -> 1
  imputed.amount           no line amount -> unit price x quantity (the catalog price when the
                           row has no unit price either; that one is filled in when written)
  imputed.created_at       a customer without a sign-up time -> the import time
  order.return             a negative quantity is a return: its amount is stored negative
  invalid.negative_amount  a negative amount on a positive quantity
  invalid.negative_price   a negative unit price (smartmkt.data.values; a return is a negative
                           quantity, its unit price stays positive)
  invalid.number           a quantity that is not whole or out of range
  invalid.money            an amount beyond what the store holds (2^31 cents)
  invalid.too_long         an id or text longer than its store column
  dropped.unreadable       an age or release year nothing can read: emptied, the row kept
  title.article_moved      "Usual Suspects, The" -> "The Usual Suspects" (mapping option
                           title_article_last, for catalogs sorted by title)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

from smartmkt.data import columnar as c
from smartmkt.data.mapping import KindMapping
from smartmkt.data.timings import Timings

RULE, DETAIL, REPAIRS, IMPUTED, KEY = "__rule", "__detail", "__repairs", "__imputed", "__key"
PYTHON = "__python"  # the row had a cell only the row-by-row rule could read (counted, reported)
MAX_CENTS = 2**31 - 1
MAX_INT = 2**31 - 1
KEY_LENGTH = 200  # orders.line_key
LENGTHS = {
    "customer_id": 128,
    "product_id": 128,
    "title": 512,
    "gender": 16,
    "occupation": 64,
    "postal_code": 16,
    "country": 64,
}

Convert = Callable[[pl.Series], pl.DataFrame]
# "Usual Suspects, The" -> "The Usual Suspects"; "Homme, L'" -> "L'Homme" (as catalog.display_title)
ARTICLE_LAST = r"^(.+), (The|A|An|Il|La|Le|Les|Das|Der|Die|El|Los|Las)$"
ELIDED_LAST = r"^(.+), (L')$"


@dataclass(frozen=True)
class Context:
    mapping: KindMapping  # how the file is read (dayfirst, category options ...)
    now: datetime  # the upper bound of plausible dates
    imported_at: datetime  # what an imputed created_at gets
    currency: str = "USD"  # the shop's currency: what a row that names none is in


# Which rule family converts each field (``Timings``: "clean.<family>")
FAMILY = {
    **dict.fromkeys(("customer_id", "product_id", "order_id"), "ids"),
    **dict.fromkeys(("title", "gender", "occupation", "postal_code", "country", "currency"), "text"),
    **dict.fromkeys(("created_at", "ordered_at"), "dates"),
    **dict.fromkeys(("age", "year", "quantity"), "numbers"),
    **dict.fromkeys(("price", "amount", "unit_price"), "money"),
    "active": "booleans",
}


# What each field's conversion answers for an empty cell: a column a file does not have is that
# answer repeated, without the conversion's dozen polars operations (a one-line order through
# the shop API has half its fields empty). The conversion's own answer, so always the same.
_EMPTY: dict[str, pl.DataFrame] = {}


def _convert(name: str, convert: Convert, raw: pl.Series) -> pl.DataFrame:
    if len(raw) == 0 or raw.null_count() < len(raw):
        return convert(raw)
    if name not in _EMPTY:
        _EMPTY[name] = convert(pl.Series([None], dtype=pl.String))
    empty = _EMPTY[name]
    return pl.DataFrame(
        [pl.repeat(empty[c][0], len(raw), dtype=empty[c].dtype, eager=True).alias(c) for c in empty.columns]
    )


def _cells(fields: pl.DataFrame, spec: dict[str, Convert], timings: Timings) -> pl.DataFrame:
    """Each field converted; result columns named "<field>.value", "<field>.repairs" ..."""
    parts = []
    for name, convert in spec.items():
        with timings.time(f"clean.{FAMILY[name]}"):
            result = _convert(name, convert, fields[name])
        parts.append(result.rename({col: f"{name}.{col}" for col in result.columns}))
    return pl.concat(parts, how="horizontal")


def _python_cells() -> pl.Expr:
    """Whether any of the row's cells went through the row-by-row rule."""
    return pl.any_horizontal(pl.col(rf"^.*\.{c.PYTHON}$")).alias(PYTHON)


def _value(name: str) -> pl.Expr:
    return pl.col(f"{name}.value")


def _cell_check(name: str, required: bool = False) -> tuple[pl.Expr, pl.Expr]:
    rule, detail = pl.col(f"{name}.rule"), pl.col(f"{name}.detail")
    if required:
        missing = _value(name).is_null()
        rule = pl.coalesce(rule, pl.when(missing).then(pl.lit(f"missing.{name}")))
        detail = pl.coalesce(detail, pl.when(missing).then(pl.lit(f"{name} is empty")))
    return rule, detail


def _check(failed: pl.Expr, rule: str, detail: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return pl.when(failed).then(pl.lit(rule)), pl.when(failed).then(detail)


def _too_long(name: str) -> tuple[pl.Expr, pl.Expr]:
    limit = LENGTHS[name]
    return _check(
        (_value(name).str.len_chars() > limit).fill_null(False),
        "invalid.too_long",
        pl.lit(f"{name} is longer than {limit} characters"),
    )


def _required_text(*names: str) -> list[tuple[pl.Expr, pl.Expr]]:
    """Required ids and names: present, and no longer than their store column."""
    return [check for name in names for check in (_cell_check(name, required=True), _too_long(name))]


def _first(checks: list[tuple[pl.Expr, pl.Expr]]) -> list[pl.Expr]:
    """The first failed check's rule and detail (checks run in the order listed)."""
    rule = pl.coalesce(*(r for r, _ in checks)).alias(RULE)
    detail = pl.coalesce(*(pl.when(r.is_not_null()).then(d) for r, d in checks)).alias(DETAIL)
    return [rule, detail]


def _joined(parts: Sequence[pl.Expr], alias: str) -> pl.Expr:
    return pl.concat_str([p.fill_null("") for p in parts], separator=" ").str.strip_chars().alias(alias)


def _repairs(*names: str) -> list[pl.Expr]:
    return [pl.col(f"{n}.repairs") for n in names]


def cents(micros: pl.Expr) -> pl.Expr:
    """Micros -> cents, rounding half to even (as Decimal.quantize does)."""
    whole = micros.floordiv(10_000)
    rest = micros - whole * 10_000
    up = (rest > 5_000) | ((rest == 5_000) & (whole % 2 != 0))
    return whole + up.cast(pl.Int64)


def _whole(micros: pl.Expr) -> pl.Expr:
    """int(Decimal): truncated toward zero."""
    return micros.abs().floordiv(c.MICROS) * micros.sign()


def _out_of_range(name: str, limit: int, rule: str = "invalid.number") -> tuple[pl.Expr, pl.Expr]:
    return _check(
        (_whole(_value(name)).abs() > limit).fill_null(False), rule, pl.lit(f"{name} is out of range")
    )


def _descriptive_number(raw: pl.Series) -> pl.DataFrame:
    """An age or a release year describes a row but is not what it is about: a value no rule
    can read (or out of range) is emptied and flagged ``dropped.unreadable``, not quarantined."""
    cells = c.quantity(raw)
    unreadable = cells["rule"].is_not_null() | (cells["value"].abs() > MAX_INT * c.MICROS).fill_null(False)
    return cells.select(
        pl.when(unreadable).then(None).otherwise(pl.col("value")).alias("value"),
        pl.when(unreadable).then(pl.lit("dropped.unreadable")).otherwise(pl.col("repairs")).alias("repairs"),
        pl.lit(None, dtype=pl.String).alias("rule"),
        pl.lit(None, dtype=pl.String).alias("detail"),
        pl.col(c.PYTHON),
    )


# --- customers -------------------------------------------------------------------------------
def clean_customers(fields: pl.DataFrame, ctx: Context, timings: Timings | None = None) -> pl.DataFrame:
    timings = Timings() if timings is None else timings
    cells = _cells(
        fields,
        {
            "customer_id": c.text,
            "created_at": lambda s: c.timestamp(s, ctx.mapping.dayfirst, ctx.now),
            "age": _descriptive_number,
            "gender": c.text,
            "occupation": c.text,
            "postal_code": c.text,
            "country": c.text,
        },
        timings,
    )
    no_date = _value("created_at").is_null()
    checks = [
        *_required_text("customer_id"),
        _cell_check("created_at"),
        *(_too_long(n) for n in ("gender", "occupation", "postal_code", "country")),
    ]
    return cells.select(
        _value("customer_id").alias("external_ref"),
        pl.coalesce(_value("created_at"), pl.lit(ctx.imported_at)).alias("created_at"),
        _whole(_value("age")).alias("age"),
        _value("gender").alias("gender"),
        _value("occupation").alias("occupation"),
        _value("postal_code").alias("postal_code"),
        _value("country").alias("country"),
        *_first(checks),
        _joined(
            _repairs("customer_id", "created_at", "age", "gender", "occupation", "postal_code", "country"),
            REPAIRS,
        ),
        pl.when(no_date).then(pl.lit("imputed.created_at")).otherwise(pl.lit("")).alias(IMPUTED),
        _value("customer_id").alias(KEY),
        _python_cells(),
    )


# --- products --------------------------------------------------------------------------------
def clean_products(fields: pl.DataFrame, ctx: Context, timings: Timings | None = None) -> pl.DataFrame:
    timings = Timings() if timings is None else timings
    cells = _cells(
        fields,
        {
            "product_id": c.text,
            "title": c.text,
            "price": c.money,
            "currency": c.text,
            "year": _descriptive_number,
            "active": c.boolean,
        },
        timings,
    )
    with timings.time("clean.categories"):
        cells = cells.with_columns(_genres(fields["category"], ctx))
    own_currency = pl.col("price.currency")
    currency = pl.coalesce(own_currency, _value("currency"))
    checks = [
        *_required_text("product_id", "title"),
        _cell_check("price", required=True),
        _out_of_range("price", MAX_CENTS // 100, "invalid.money"),
        _cell_check("active"),
    ]
    repairs = [
        *_repairs("product_id", "title", "price"),
        pl.when(own_currency.is_null()).then(pl.col("currency.repairs")),
        pl.col("genres.repairs"),
        *_repairs("year", "active"),
    ]
    title = _value("title")
    moved = pl.lit(False)
    if ctx.mapping.title_article_last:
        moved = (title.str.contains(ARTICLE_LAST) | title.str.contains(ELIDED_LAST)).fill_null(False)
        title = title.str.replace(ARTICLE_LAST, "${2} ${1}").str.replace(ELIDED_LAST, "${2}${1}")
    repairs.append(pl.when(moved).then(pl.lit("title.article_moved")))
    return cells.select(
        _value("product_id").alias("external_ref"),
        title.alias("title"),
        _whole(_value("year")).alias("year"),
        pl.col("genres.value").alias("genres"),
        cents(_value("price")).alias("price_cents"),
        pl.coalesce(currency, pl.lit(ctx.currency)).str.to_uppercase().str.slice(0, 3).alias("currency"),
        _value("active").fill_null(True).alias("active"),
        *_first(checks),
        _joined(repairs, REPAIRS),
        pl.when(currency.is_null()).then(pl.lit("imputed.currency")).otherwise(pl.lit("")).alias(IMPUTED),
        _value("product_id").alias(KEY),
        _python_cells(),
    )


def _genres(raw: pl.Series, ctx: Context) -> list[pl.Series]:
    """ "drama|ROMANCE", "Drama; Comedy" -> "Drama|Romance"; repairs of the parts kept, except
    plain whitespace (category names are expected to be trimmed)."""
    if raw.null_count() == len(raw):  # no category column (most orders files): nothing to read
        empty = pl.Series([""] * len(raw), dtype=pl.String)
        return [empty.alias("genres.value"), empty.alias("genres.repairs")]
    separators = "[" + re.escape(ctx.mapping.category_separator) + "]"
    parts = (
        pl.DataFrame({"raw": raw})
        .with_row_index("row")
        .select(
            "row",
            pl.col("raw").fill_null("").str.replace_all(separators, "\x1f").str.split("\x1f").alias("part"),
        )
        .explode("part")
    )
    clean = c.category(parts["part"])
    skip = [s.lower() for s in ctx.mapping.skip_categories]
    parts = parts.with_columns(
        clean["value"].alias("genre"),
        clean["repairs"].str.replace_all(r"\btext\.normalized\b", "").alias("repairs"),
    ).filter(pl.col("genre").is_not_null() & ~pl.col("genre").str.to_lowercase().is_in(skip))
    joined = parts.group_by("row", maintain_order=True).agg(
        pl.col("genre").unique(maintain_order=True).str.join("|"), pl.col("repairs").str.join(" ")
    )
    rows = pl.DataFrame({"row": pl.int_range(len(raw), eager=True, dtype=pl.UInt32)})
    full = rows.join(joined, on="row", how="left", maintain_order="left")
    return [
        full["genre"].fill_null("").alias("genres.value"),
        full["repairs"].fill_null("").alias("genres.repairs"),
    ]


# --- orders ----------------------------------------------------------------------------------
def clean_orders(fields: pl.DataFrame, ctx: Context, timings: Timings | None = None) -> pl.DataFrame:
    timings = Timings() if timings is None else timings
    cells = _cells(
        fields,
        {
            "customer_id": c.text,
            "product_id": c.text,
            "ordered_at": lambda s: c.timestamp(s, ctx.mapping.dayfirst, ctx.now),
            "quantity": c.quantity,
            "amount": lambda s: c.money(s, signed=True),
            "unit_price": c.money,  # a negative one is invalid.negative_price (a return's quantity is)
            "currency": c.text,
            "order_id": c.text,
            "title": c.text,
            "country": c.text,
        },
        timings,
    )
    with timings.time("clean.categories"):
        cells = cells.with_columns(_genres(fields["category"], ctx))
    quantity = _value("quantity").fill_null(c.MICROS)
    whole = quantity.floordiv(c.MICROS)
    amount, unit = _value("amount"), _value("unit_price")
    from_unit = amount.is_null() & unit.is_not_null()
    too_big = (unit.cast(pl.Float64).abs() * whole.cast(pl.Float64).abs() >= 9e18).fill_null(False)
    line_amount = pl.when(from_unit & ~too_big).then(unit * whole.abs()).otherwise(amount)
    line_amount = pl.when(quantity < 0).then(-line_amount.abs()).otherwise(line_amount)
    own_currency = pl.coalesce(pl.col("amount.currency"), pl.col("unit_price.currency"))
    currency = pl.coalesce(own_currency, _value("currency"))
    cents_range = (cents(line_amount).abs() > MAX_CENTS) | (cents(unit).abs() > MAX_CENTS)
    checks = [
        *_required_text("customer_id", "product_id"),
        _cell_check("ordered_at", required=True),
        _cell_check("quantity"),
        _check(
            quantity % c.MICROS != 0,
            "invalid.number",
            pl.lit("quantity is not a whole number: ") + pl.col("quantity_raw"),
        ),
        _out_of_range("quantity", MAX_INT),
        _cell_check("amount"),
        _cell_check("unit_price"),
        _check(too_big | cents_range.fill_null(False), "invalid.money", pl.lit("amount is out of range")),
        _check(
            ((_value("amount") < 0) & (quantity > 0)).fill_null(False),
            "invalid.negative_amount",
            pl.lit("negative amount on quantity ") + whole.cast(pl.String),
        ),
        _too_long("title"),
        _too_long("country"),
    ]
    repairs = [
        *_repairs("customer_id", "product_id", "ordered_at", "quantity", "amount", "unit_price"),
        pl.when(quantity < 0).then(pl.lit("order.return")),
        pl.when(own_currency.is_null()).then(pl.col("currency.repairs")),
        pl.col("order_id.repairs"),
        *_repairs("title", "country"),
        pl.col("genres.repairs"),
    ]
    imputed = [
        pl.when(_value("quantity").is_null()).then(pl.lit("imputed.quantity")),
        pl.when(from_unit).then(pl.lit("imputed.amount")),
        pl.when(currency.is_null()).then(pl.lit("imputed.currency")),
    ]
    with timings.time("clean.row_checks"):
        records = cells.with_columns(fields["quantity"].alias("quantity_raw")).select(
            _value("customer_id").alias("customer_ref"),
            _value("product_id").alias("product_ref"),
            _value("ordered_at").alias("ordered_at"),
            whole.alias("quantity"),
            cents(line_amount).alias("amount_cents"),
            (amount.is_null() & unit.is_null()).alias("amount_missing"),
            cents(unit).alias("unit_cents"),
            pl.coalesce(currency, pl.lit(ctx.currency)).str.to_uppercase().str.slice(0, 3).alias("currency"),
            _value("order_id").alias("order_id"),
            _value("title").alias("title"),
            pl.col("genres.value").alias("genres"),
            _value("country").alias("country"),
            *_first(checks),
            _joined(repairs, REPAIRS),
            _joined(imputed, IMPUTED),
            _python_cells(),
        )
    with timings.time("clean.keys"):
        return records.with_columns(_line_keys(records)).drop("order_id")


def _line_keys(records: pl.DataFrame) -> pl.Series:
    """What identifies an order line: the order id and product, or (no order id) the line's whole
    content; keys longer than the column are replaced by their SHA-1."""
    epoch = pl.col("ordered_at").dt.epoch("us").cast(pl.String)
    content = pl.concat_str(
        pl.lit("c:"),
        pl.col("customer_ref"),
        pl.lit("|"),
        pl.col("product_ref"),
        pl.lit("|"),
        epoch,
        pl.lit("|"),
        pl.col("quantity").cast(pl.String),
        pl.lit("|"),
        pl.col("amount_cents").cast(pl.String).fill_null(""),
    )
    by_order = pl.concat_str(pl.lit("o:"), pl.col("order_id"), pl.lit("|"), pl.col("product_ref"))
    keys = records.select(
        pl.when(pl.col("order_id").is_not_null()).then(by_order).otherwise(content)
    ).to_series()
    long = (keys.str.len_bytes() > KEY_LENGTH).fill_null(False)
    if long.any():
        hashed = [
            None if k is None else "h:" + hashlib.sha1(k.encode()).hexdigest() for k in keys.filter(long)
        ]
        mapping = dict(zip(keys.filter(long).to_list(), hashed, strict=True))
        keys = keys.replace(mapping)
    return keys.alias(KEY)


CLEANERS: dict[str, Callable[[pl.DataFrame, Context, Timings | None], pl.DataFrame]] = {
    "customers": clean_customers,
    "products": clean_products,
    "orders": clean_orders,
}
