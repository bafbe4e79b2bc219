"""The cell rules of smartmkt.data.values, applied to a whole column of a chunk at once.

Each function answers, for every cell of a String column, the same thing the row-by-row rule
answers: a value and the names of the repairs it needed, or the rejection's rule and detail.
The common, unambiguous forms (plain ASCII ids and text, "$1,234.50", "12,5", ISO and
"03/05/2024" dates, epoch seconds ...) are converted by polars expressions. Every other cell
goes through the row-by-row rule itself, once per distinct value in the chunk, so the two paths
cannot disagree: the vectorised forms only take cells they are sure of, and tests compare both
on generated cells.

Results are DataFrames aligned with the input: ``value`` (plus ``currency`` for money),
``repairs`` (space-separated rule names, "" for none), ``rule`` and ``detail`` (null unless
the cell is rejected), and ``python`` (the cell took the row-by-row rule). Amounts and
quantities are integers in millionths (``MICROS``), exact for anything a shop writes with up
to six decimals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from smartmkt.data import values as v
from smartmkt.store.clock import utcnow

MICROS = 1_000_000
PYTHON = "python"  # a result column: the cell went through the row-by-row rule
LIMIT = Decimal(9_000_000_000_000)  # whole units whose micros still fit in an int64
PLAIN = r"^[!-~]+(?: [!-~]+)*$"  # printable ASCII, single inner spaces: clean_text leaves it as is
PADDED = r"^[ \t]*[!-~]+(?:[ \t]+[!-~]+)*[ \t]*$"  # the same with runs of spaces and tabs anywhere
MISSING = sorted(t for t in v.MISSING_TOKENS if t)
NUMBER_FORMS = (  # (regex of the number part, the repair it needs)
    (r"[0-9]{1,12}(?:\.[0-9]{1,6})?", ""),
    (r"[0-9]{1,3}(?:,[0-9]{3}){1,3}(?:\.[0-9]{1,6})?", "thousands"),
    (r"[0-9]{1,12},[0-9]{1,2}", "decimal_comma"),
    (r"[0-9]{1,3}(?:\.[0-9]{3}){1,3},[0-9]{1,2}", "decimal_comma"),
)
ISO = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{3}|[0-9]{6}))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?$"
)
SLASHED = r"^([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?: ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?)?$"
COMPACT = r"^([0-9]{4})([0-9]{2})([0-9]{2})$"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WORDS = rf"^([0-9]{{1,2}}) ({'|'.join(MONTHS)}) ([0-9]{{4}})$"  # "5 Mar 2024"
EPOCH = r"^[0-9]{9,13}$"
_TRUE = ("true", "t", "yes", "y", "1", "on")
_FALSE = ("false", "f", "no", "n", "0", "off")


def _result(schema: Mapping[str, pl.DataType]) -> dict[str, pl.DataType]:
    return {**schema, "repairs": pl.String(), "rule": pl.String(), "detail": pl.String()}


def _merge(
    raw: pl.Series,
    fast: pl.DataFrame,
    python: Callable[[str], dict[str, Any]],
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame:
    """Cells the fast path took (``fast["ok"]``) keep its answer; the rest are converted by the
    row-by-row rule, once per distinct value, and marked in the ``python`` column (the import
    reports how many rows needed it). Where the fast path has no rule and detail columns (it
    rejects nothing), they are null."""
    need = ~fast["ok"]
    full = _result(schema)
    fast = fast.with_columns(
        pl.lit(None, dtype=full[n]).alias(n) for n in ("rule", "detail") if n not in fast.columns
    )
    if not need.any():
        return fast.select(list(full)).with_columns(pl.lit(False).alias(PYTHON))
    cells = raw.filter(need)
    distinct = cells.unique(maintain_order=True)
    lookup = pl.DataFrame([python(x) for x in distinct], schema=full, orient="row").with_columns(
        distinct.alias("__cell")
    )
    slow = pl.DataFrame({"__cell": cells}).join(lookup, on="__cell", how="left", maintain_order="left")
    rows = need.arg_true()
    merged = {name: fast[name].scatter(rows, slow[name]) for name in full}
    return pl.DataFrame({**merged, PYTHON: need.fill_null(True)})


def _python(
    convert: Callable[[Any], v.Clean[Any]], unpack: Callable[[Any], dict[str, Any]]
) -> Callable[[str], dict[str, Any]]:
    def run(cell: str) -> dict[str, Any]:
        try:
            clean = convert(cell)
            body = unpack(clean.value)
        except v.Rejected as exc:
            return {"repairs": "", "rule": exc.rule, "detail": exc.detail}
        return {**body, "repairs": " ".join(clean.repairs), "rule": None, "detail": None}

    return run


def _missing(raw: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(cell is missing, cell is a missing token such as "N/A") for plain cells and nulls."""
    flags = pl.DataFrame({"raw": raw}).select(_missing_exprs(pl.col("raw")))
    return flags["missing"], flags["token"]


def _missing_exprs(raw: pl.Expr) -> list[pl.Expr]:
    longest = max(len(t) for t in MISSING)
    token = (
        (raw.str.len_bytes() <= longest) & raw.str.to_lowercase().is_in(MISSING) & raw.str.contains(PLAIN)
    ).fill_null(False)
    return [(raw.is_null() | (raw == "") | token).alias("missing"), token.alias("token")]


# --- text and categories ---------------------------------------------------------------------
def text(raw: pl.Series) -> pl.DataFrame:
    """Plain text as it is, missing tokens as missing; the rest by ``_text_general``."""
    quick = _no_rejection(
        pl.DataFrame({"raw": raw})
        .with_columns(
            *_missing_exprs(pl.col("raw")), pl.col("raw").str.contains(PLAIN).fill_null(False).alias("plain")
        )
        .select(
            (pl.col("missing") | pl.col("plain")).alias("ok"),
            pl.when(pl.col("missing")).then(None).otherwise(pl.col("raw")).alias("value"),
            pl.when(pl.col("token")).then(pl.lit("missing.token")).otherwise(pl.lit("")).alias("repairs"),
        )
    )
    return _layered(raw, quick, _text_general)


def _text_general(raw: pl.Series) -> pl.DataFrame:
    """Printable ASCII with spaces or tabs around or between words (" C12 ") squeezed and
    trimmed (text.normalized), or a missing token once trimmed; the rest (other whitespace,
    non-ASCII: Unicode normalisation) by the row rule."""
    squeezed = pl.col("raw").str.replace_all(r"[ \t]+", " ").str.strip_chars(" ")
    fast = (
        pl.DataFrame({"raw": raw})
        .with_columns(pl.col("raw").str.contains(PADDED).fill_null(False).alias("padded"))
        .with_columns((pl.col("padded") & squeezed.str.to_lowercase().is_in(MISSING)).alias("token"))
        .select(
            pl.col("padded").alias("ok"),
            pl.when(pl.col("token")).then(None).otherwise(squeezed).alias("value"),
            pl.when(pl.col("token"))
            .then(pl.lit("missing.token"))
            .otherwise(pl.lit("text.normalized"))
            .alias("repairs"),
        )
    )
    return _merge(raw, fast, _python(v.clean_text, lambda x: {"value": x}), {"value": pl.String()})


def category(raw: pl.Series) -> pl.DataFrame:
    """Category names in one spelling; always by the row rule (categories repeat a lot)."""
    return _by_python(raw, v.clean_category, lambda x: {"value": x}, {"value": pl.String()})


def _by_python(
    raw: pl.Series,
    convert: Callable[[Any], v.Clean[Any]],
    unpack: Callable[[Any], dict[str, Any]],
    schema: Mapping[str, pl.DataType],
) -> pl.DataFrame:
    nothing = (
        pl.DataFrame({"ok": raw.is_null()})
        .with_columns(*(pl.lit(None, dtype=t).alias(n) for n, t in _result(schema).items()))
        .with_columns(pl.lit("").alias("repairs"))
    )
    return _merge(raw, nothing, _python(convert, unpack), schema)


# --- the dominant form first ----------------------------------------------------------------
CANONICAL_MONEY = r"^[0-9]{1,12}(?:\.[0-9]{1,6})?$"
# ISO 8601 in UTC, as a shop's API sends it ("Z" or "+00:00"), or with no zone (read as UTC)
CANONICAL_STAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:Z|\+00:00)?)?$"
UTC_SUFFIX = r"(?:Z|\+00:00)$"
EXPORT_STAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$"  # most exports' form


def _layered(
    raw: pl.Series, quick: pl.DataFrame, general: Callable[[pl.Series], pl.DataFrame]
) -> pl.DataFrame:
    """``quick`` answers the cells in the file's dominant, canonical form at a few ns each
    (``quick["ok"]``); ``general`` answers the rest, and only the rest."""
    ok = quick["ok"]
    columns = [c for c in quick.columns if c != "ok"]
    if ok.all():
        return quick.select(columns)
    rest = general(raw.filter(~ok))
    rows = (~ok).arg_true()
    return pl.DataFrame({name: quick[name].scatter(rows, rest[name]) for name in columns})


def _no_rejection(frame: pl.DataFrame) -> pl.DataFrame:
    """A quick path's answer (no repairs unless it says) with no rejection and no row rule."""
    return frame.with_columns(
        pl.col("repairs") if "repairs" in frame.columns else pl.lit("").alias("repairs"),
        pl.lit(None, dtype=pl.String).alias("rule"),
        pl.lit(None, dtype=pl.String).alias("detail"),
        pl.lit(False).alias(PYTHON),
    )


def money(raw: pl.Series, signed: bool = False) -> pl.DataFrame:
    """Amounts as (micros, currency); see ``_money_general`` for the forms taken."""
    quick = _no_rejection(
        pl.DataFrame({"raw": raw}).select(
            pl.col("raw").str.contains(CANONICAL_MONEY).fill_null(True).alias("ok"),  # null: no amount
            (pl.col("raw").cast(pl.Decimal(18, 6), strict=False) * MICROS)
            .cast(pl.Int64, strict=False)
            .alias("value"),
            pl.lit(None, dtype=pl.String).alias("currency"),
        )
    )
    return _layered(raw, quick, lambda rest: _money_general(rest, signed))


def timestamp(raw: pl.Series, dayfirst: bool = False, now: datetime | None = None) -> pl.DataFrame:
    """UTC datetimes. Three layers, each only on what the one before left: an export's own
    "2024-03-05 10:00:00"; then ISO in UTC as a shop's API sends it ("2024-03-05T10:00:00Z",
    "+00:00", a bare date); then ``_timestamp_general`` for every other form."""
    now = now or utcnow()
    latest = now + timedelta(days=1)

    def quick(form: pl.Expr, canonical: str) -> Callable[[pl.Series], pl.DataFrame]:
        value = form.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us").dt.replace_time_zone(
            "UTC"
        )
        ok = pl.col("raw").str.contains(canonical).fill_null(False) & value.is_between(
            v.EARLIEST, latest
        ).fill_null(False)
        # no date at all: the row's checks say whether one is needed
        return lambda cells: _no_rejection(
            pl.DataFrame({"raw": cells}).select(
                value.alias("value"), ok.or_(pl.col("raw").is_null()).alias("ok")
            )
        )

    text = pl.col("raw").str.replace("T", " ", literal=True).str.replace(UTC_SUFFIX, "")
    text = pl.when(text.str.len_bytes() == 10).then(text + " 00:00:00").otherwise(text)
    exported = quick(pl.col("raw"), EXPORT_STAMP)
    from_api = quick(text, CANONICAL_STAMP)
    general = lambda cells: _timestamp_general(cells, dayfirst, now)  # noqa: E731
    return _layered(raw, exported(raw), lambda rest: _layered(rest, from_api(rest), general))


# --- numbers and money -----------------------------------------------------------------------
def _micros(number: pl.Expr) -> pl.Expr:
    """Canonical "1234.5" -> 1234500000 (exact integer arithmetic)."""
    whole = number.str.extract(r"^([0-9]+)", 1).cast(pl.Int64, strict=False)
    fraction = (
        number.str.extract(r"\.([0-9]+)$", 1).fill_null("").str.pad_end(6, "0").cast(pl.Int64, strict=False)
    )
    return whole * MICROS + fraction


def _decimal_micros(value: Decimal) -> int:
    scaled = value * MICROS
    if abs(value) >= LIMIT:
        raise v.Rejected("invalid.number", f"{value} is out of range")
    return int(scaled.to_integral_value())


def _money_general(raw: pl.Series, signed: bool = False) -> pl.DataFrame:
    """Amounts as (micros, currency). ``signed``: a leading minus is kept (returns, refunds),
    as the importer's order amounts need; otherwise a negative amount is rejected."""
    frame = pl.DataFrame({"raw": raw})
    missing, token = _missing(raw)
    negative = raw.str.starts_with("-").fill_null(False) if signed else pl.Series([False] * len(raw))
    body = pl.when(pl.lit(negative)).then(pl.col("raw").str.slice(1)).otherwise(pl.col("raw"))
    pattern = "|".join(f"({form})" for form, _ in NUMBER_FORMS)
    parts = frame.select(
        body.str.extract(rf"^(\$?)(?:{pattern})(?: ([A-Z]{{3}}))?$", 1).alias("symbol"),
        *(body.str.extract(rf"^\$?(?:{pattern})(?: [A-Z]{{3}})?$", i + 1).alias(f"n{i}") for i in range(4)),
        body.str.extract(r" ([A-Z]{3})$", 1).alias("code"),
        body.str.contains(PLAIN).fill_null(False).alias("plain"),
    )
    form = pl.coalesce(*(pl.when(pl.col(f"n{i}").is_not_null()).then(pl.lit(i)) for i in range(4)))
    canonical = (
        pl.when(form == 0)
        .then(pl.col("n0"))
        .when(form == 1)
        .then(pl.col("n1").str.replace_all(",", "", literal=True))
        .when(form == 2)
        .then(pl.col("n2").str.replace(",", ".", literal=True))
        .otherwise(pl.col("n3").str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
    )
    rule = (
        pl.when(form == 1)
        .then(pl.lit("money.thousands"))
        .when(form >= 2)
        .then(pl.lit("money.decimal_comma"))
        .otherwise(pl.lit(""))
    )
    found = (pl.col("symbol") == "$") | pl.col("code").is_not_null()
    repairs = pl.concat_str(
        pl.when(found).then(pl.lit("money.currency_found")).otherwise(pl.lit("")), rule, separator=" "
    ).str.strip_chars()
    matched = parts.with_columns(form.alias("form")).select(
        (pl.col("form").is_not_null() & pl.col("plain")).alias("matched"),
        _micros(canonical).alias("value"),
        pl.coalesce(pl.col("code"), pl.when(pl.col("symbol") == "$").then(pl.lit("USD"))).alias("currency"),
        repairs.alias("repairs"),
    )
    sign = pl.when(pl.lit(negative)).then(-1).otherwise(1)
    fast = pl.DataFrame(
        {
            "ok": (missing & ~negative) | matched["matched"].fill_null(False),
            "value": matched.select(
                pl.when(pl.lit(missing & ~negative)).then(None).otherwise(pl.col("value") * sign)
            ).to_series(),
            "currency": matched["currency"],
            "repairs": pl.select(
                pl.when(pl.lit(token & ~negative)).then(pl.lit("missing.token")).otherwise(matched["repairs"])
            ).to_series(),
        }
    )
    convert = _signed_money if signed else v.clean_money
    schema = {"value": pl.Int64(), "currency": pl.String()}
    return _merge(raw, fast, _python(convert, _money_cells), schema)


def _money_cells(value: tuple[Decimal, str | None] | None) -> dict[str, Any]:
    if value is None:
        return {"value": None, "currency": None}
    return {"value": _decimal_micros(value[0]), "currency": value[1]}


def _signed_money(raw: Any) -> v.Clean[tuple[Decimal, str | None]]:
    """clean_money, but a leading minus is kept (returns and refunds are negative)."""
    negative = isinstance(raw, str) and raw.strip().startswith("-")
    result = v.clean_money(raw.strip().removeprefix("-") if isinstance(raw, str) else raw)
    if result.value is None or not negative:
        return result
    amount, currency = result.value
    return v.Clean((-amount, currency), result.repairs)


def quantity(raw: pl.Series) -> pl.DataFrame:
    """Quantities in micros (a whole 3 is 3_000_000); 0 is rejected, negatives kept."""
    missing, token = _missing(raw)
    simple = raw.str.contains(r"^-?[0-9]{1,9}$").fill_null(False)
    number = raw.str.to_integer(strict=False)
    zero = simple & (number == 0).fill_null(False)
    fast = pl.DataFrame(
        {
            "ok": missing | simple,
            "value": number * MICROS,
            "repairs": pl.select(
                pl.when(token).then(pl.lit("missing.token")).otherwise(pl.lit(""))
            ).to_series(),
            "rule": pl.select(pl.when(zero).then(pl.lit("invalid.zero_quantity"))).to_series(),
            "detail": pl.select(pl.when(zero).then(pl.lit("quantity 0"))).to_series(),
        }
    )
    fast = fast.with_columns(
        pl.when(pl.lit(missing) | pl.lit(zero)).then(None).otherwise(pl.col("value")).alias("value")
    )
    unpack = lambda x: {"value": None if x is None else _decimal_micros(x)}  # noqa: E731
    return _merge(raw, fast, _python(v.clean_quantity, unpack), {"value": pl.Int64()})


def boolean(raw: pl.Series) -> pl.DataFrame:
    missing, token = _missing(raw)
    lower = raw.str.to_lowercase()
    known = lower.is_in(_TRUE + _FALSE).fill_null(False) & raw.str.contains(PLAIN).fill_null(False)
    fast = pl.DataFrame(
        {
            "ok": missing | known,
            "value": pl.select(pl.when(missing).then(None).otherwise(lower.is_in(_TRUE))).to_series(),
            "repairs": pl.select(
                pl.when(token)
                .then(pl.lit("missing.token"))
                .when(known & ~lower.is_in(["true", "false"]))
                .then(pl.lit("bool.normalized"))
                .otherwise(pl.lit(""))
            ).to_series(),
        }
    )
    return _merge(raw, fast, _python(v.clean_bool, lambda x: {"value": x}), {"value": pl.Boolean()})


# --- timestamps ------------------------------------------------------------------------------
def _timestamp_general(raw: pl.Series, dayfirst: bool = False, now: datetime | None = None) -> pl.DataFrame:
    """UTC datetimes; ISO, "03/05/2024" (``dayfirst`` decides), "19970101", "5 Mar 2024" and epoch
    seconds or milliseconds vectorised, anything else through dateutil as the row rule does."""
    now = now or utcnow()
    missing, token = _missing(raw)
    frame = pl.DataFrame({"raw": raw})
    iso = pl.col("raw").str.extract_groups(ISO)
    slashed = pl.col("raw").str.extract_groups(SLASHED)
    compact = pl.col("raw").str.extract_groups(COMPACT)
    words = pl.col("raw").str.extract_groups(WORDS)
    first, second = ("2", "1") if dayfirst else ("1", "2")
    months = {name: f"{number:02d}" for number, name in enumerate(MONTHS, start=1)}
    parts = (
        frame.select(
            iso.alias("iso"),
            slashed.alias("slashed"),
            compact.alias("compact"),
            words.alias("words"),
            pl.col("raw").str.contains(EPOCH).fill_null(False).alias("epoch"),
            pl.col("raw").str.to_integer(strict=False).alias("number"),
        )
        .unnest("iso", "slashed", "compact", "words", separator=".")
        .with_columns(pl.col("words.2").replace_strict(months, default=None).alias("words.month"))
    )
    stamp = pl.coalesce(
        _stamp("iso", "1", "2", "3", "4", "5", "6", "7"),
        _stamp("slashed", "3", first, second, "4", "5", "6", None),
        _stamp("compact", "1", "2", "3", None, None, None, None),
        _stamp("words", "3", "month", "1", None, None, None, None),
    )
    offset = pl.col("iso.8")
    offset_minutes = (
        pl.when(offset.is_null() | (offset == "Z"))
        .then(0)
        .otherwise(
            (
                offset.str.slice(1, 2).cast(pl.Int64, strict=False) * 60
                + offset.str.slice(4, 2).cast(pl.Int64, strict=False)
            )
            * pl.when(offset.str.starts_with("-")).then(-1).otherwise(1)
        )
    )
    epoch_us = (
        pl.when(pl.col("number") > 100_000_000_000)
        .then(pl.col("number") * 1000)
        .otherwise(pl.col("number") * MICROS)
    )
    parsed = (
        pl.when(pl.col("epoch"))
        .then(epoch_us.cast(pl.Datetime("us", "UTC")))
        .otherwise(
            stamp.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", strict=False, time_unit="us").dt.replace_time_zone(
                "UTC"
            )
            - pl.duration(minutes=offset_minutes)
        )
    )
    repairs = (
        pl.when(pl.col("epoch"))
        .then(pl.lit("date.epoch"))
        .when(pl.col("iso.1").is_not_null())
        .then(pl.when(offset_minutes != 0).then(pl.lit("date.timezone")).otherwise(pl.lit("")))
        .otherwise(pl.lit("date.reformatted"))
    )
    early, late = v.EARLIEST, now + timedelta(days=1)
    fast_values = parts.select(parsed.alias("value"), repairs.alias("repairs"))
    in_range = fast_values["value"].is_between(early, late).fill_null(False)
    fast = pl.DataFrame(
        {
            "ok": missing | in_range,
            "value": pl.select(pl.when(missing).then(None).otherwise(fast_values["value"])).to_series(),
            "repairs": pl.select(
                pl.when(token)
                .then(pl.lit("missing.token"))
                .when(missing)
                .then(pl.lit(""))
                .otherwise(fast_values["repairs"])
            ).to_series(),
        }
    )
    convert = lambda cell: v.clean_timestamp(cell, dayfirst=dayfirst, now=now)  # noqa: E731
    schema = {"value": pl.Datetime("us", "UTC")}
    return _merge(raw, fast, _python(convert, lambda x: {"value": x}), schema)


def _stamp(
    group: str,
    year: str,
    month: str,
    day: str,
    hour: str | None,
    minute: str | None,
    second: str | None,
    fraction: str | None,
) -> pl.Expr:
    """ "YYYY-MM-DD HH:MM:SS.ffffff" from a regex's capture groups (null when it did not match)."""

    def part(name: str | None, width: int, default: str = "0") -> pl.Expr:
        if name is None:
            return pl.lit(default * width)
        return pl.col(f"{group}.{name}").fill_null(default * width).str.pad_start(width, "0")

    fraction_text = (
        part(fraction, 6)
        if fraction is None
        else pl.col(f"{group}.{fraction}").fill_null("").str.pad_end(6, "0")
    )
    text = pl.concat_str(
        part(year, 4),
        pl.lit("-"),
        part(month, 2),
        pl.lit("-"),
        part(day, 2),
        pl.lit(" "),
        part(hour, 2),
        pl.lit(":"),
        part(minute, 2),
        pl.lit(":"),
        part(second, 2),
        pl.lit("."),
        fraction_text,
    )
    return pl.when(pl.col(f"{group}.{year}").is_not_null()).then(text)
