"""The vectorised cell rules against the row-by-row rules they stand in for: on generated cells
both must give the same value, the same repairs and the same rejection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from smartmkt.data import columnar as c
from smartmkt.data import values as v

NOW = datetime(2026, 11, 27, tzinfo=UTC)

MONEY = st.from_regex(r"-?\$?\s?\d{1,13}([.,]\d{1,4}){0,4}( ?(EUR|USD|usd|€))?", fullmatch=True)
DATES = st.one_of(
    st.from_regex(
        r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})?)?", fullmatch=True
    ),
    st.from_regex(r"\d{1,2}/\d{1,2}/\d{4}( \d{2}:\d{2}(:\d{2})?)?", fullmatch=True),
    st.from_regex(r"\d{8,13}(\.\d{1,3})?", fullmatch=True),
    st.sampled_from(["5 Mar 2024", "2024-03-05 10:00 +0200", "1969-12-31", "2100-01-01", "Mar 5, 2024"]),
    # the shop API's form (JSON datetimes in UTC): the fast path reads these itself
    st.sampled_from(["2024-03-05T10:00:00Z", "2024-03-05T10:00:00+00:00", "2024-03-05 10:00:00Z"]),
    st.sampled_from(["2100-03-05T10:00:00Z", "2024-03-05T10:00:00+01:00", "2024-03-05Z"]),
    st.sampled_from(["2024-03-05T25:00:00Z", "2024-03-05T10:00:00-00:00"]),
    # "5 Mar 2024" (the fast path reads English month abbreviations; the rest is dateutil's)
    st.from_regex(
        r"\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec|mar|March) \d{4}", fullmatch=True
    ),
)
ANY = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", " ", "N/A", "null", "-", "  x  ", "a  b", "Ünïcode", "\t1"]),
    # ids and text with spaces and tabs around and between words, missing tokens among them
    st.from_regex(r"[ \t]{0,3}([!-~]{1,4}|n/a|NULL|-)([ \t]{1,3}[!-~]{1,4}){0,2}[ \t]{0,3}", fullmatch=True),
    st.sampled_from([" C12 ", "\tNULL ", " n/a", "0", "-0", "000", " 7 ", "x\x1f", "\x1c C1"]),
    st.none(),
)


def expected(
    rule: Callable[[Any], v.Clean[Any]], cell: Any, unpack: Callable[[Any], dict[str, Any]]
) -> dict[str, Any]:
    try:
        clean = rule(cell)
    except v.Rejected as exc:
        return {"rule": exc.rule}
    try:
        body = unpack(clean.value)
    except v.Rejected as exc:
        return {"rule": exc.rule}
    return {**body, "repairs": sorted(clean.repairs), "rule": None}


def actual(frame: pl.DataFrame, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for row in frame.iter_rows(named=True):
        if row["rule"]:
            out.append({"rule": row["rule"]})
        else:
            out.append({**{k: row[k] for k in keys}, "repairs": sorted(row["repairs"].split()), "rule": None})
    return out


def micros(x: Decimal | None) -> int | None:
    return None if x is None else c._decimal_micros(x)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(MONEY, ANY), min_size=1, max_size=30), st.booleans())
def test_money_matches_the_row_rule(cells: list[str | None], signed: bool) -> None:
    rule = c._signed_money if signed else v.clean_money

    def unpack(x: tuple[Decimal, str | None] | None) -> dict[str, Any]:
        return {"value": None, "currency": None} if x is None else {"value": micros(x[0]), "currency": x[1]}

    want = [expected(rule, cell, unpack) for cell in cells]
    assert actual(c.money(pl.Series(cells, dtype=pl.String), signed=signed), ("value", "currency")) == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(DATES, ANY), min_size=1, max_size=30), st.booleans())
def test_timestamps_match_the_row_rule(cells: list[str | None], dayfirst: bool) -> None:
    rule = lambda x: v.clean_timestamp(x, dayfirst=dayfirst, now=NOW)  # noqa: E731
    want = [expected(rule, cell, lambda x: {"value": x}) for cell in cells]
    got = c.timestamp(pl.Series(cells, dtype=pl.String), dayfirst=dayfirst, now=NOW)
    assert actual(got, ("value",)) == want


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.from_regex(r"-?\d{1,10}([.,]\d{1,3})?", fullmatch=True),
            st.sampled_from(["yes", "NO", "T", "true", "x"]),
            ANY,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_text_quantity_and_bool_match_the_row_rules(cells: list[str | None]) -> None:
    series = pl.Series(cells, dtype=pl.String)
    assert actual(c.text(series), ("value",)) == [
        expected(v.clean_text, x, lambda y: {"value": y}) for x in cells
    ]
    assert actual(c.quantity(series), ("value",)) == [
        expected(v.clean_quantity, x, lambda y: {"value": micros(y)}) for x in cells
    ]
    assert actual(c.boolean(series), ("value",)) == [
        expected(v.clean_bool, x, lambda y: {"value": y}) for x in cells
    ]
    assert actual(c.category(series), ("value",)) == [
        expected(v.clean_category, x, lambda y: {"value": y}) for x in cells
    ]


def test_common_forms_take_the_fast_path() -> None:
    """The forms a large export is made of never reach the row rule (that is the speed)."""
    cells = pl.Series(["$1,234.50", "12,5", "1.234,50 EUR", "7", "N/A", None])
    fast = c.money(cells)
    assert fast["value"].to_list() == [1_234_500_000, 12_500_000, 1_234_500_000, 7_000_000, None, None]
    assert fast["currency"].to_list() == ["USD", None, "EUR", None, None, None]
    stamps = pl.Series(["2024-03-05T10:00:00+02:00", "03/05/2024", "19970101", "1709900000"])
    got = c.timestamp(stamps, now=NOW)["value"].to_list()
    assert got == [
        datetime(2024, 3, 5, 8, tzinfo=UTC),
        datetime(2024, 3, 5, tzinfo=UTC),
        datetime(1997, 1, 1, tzinfo=UTC),
        datetime.fromtimestamp(1709900000, tz=UTC),
    ]


def test_cells_only_the_row_rule_reads_are_marked() -> None:
    """The ``python`` column says which cells took the row-by-row rule (the import counts the
    rows that had one): none of the forms the expressions read, each of the others."""
    stamps = ["2024-03-05 10:00:00", "03/05/2024", "5 Mar 2024", "Mar 5, 2024", None]
    assert c.timestamp(pl.Series(stamps), now=NOW)[c.PYTHON].to_list() == [False, False, False, True, False]
    money = c.money(pl.Series(["12.50", "$1,234.50", "9,99 €", None]))
    assert money[c.PYTHON].to_list() == [False, False, True, False]
    ids = c.text(pl.Series(["C1", " C2 ", " N/A ", "Ünï"]))
    assert ids[c.PYTHON].to_list() == [False, False, False, True]
    assert c.quantity(pl.Series(["0", "2", "2,5"]))[c.PYTHON].to_list() == [False, False, True]
