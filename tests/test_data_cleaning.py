"""An order line's money through the whole columnar cleaning (smartmkt.data.cleaning), held to the
row rules of smartmkt.data.values: every line is either stored with the amounts the row rules
read, or changed only by a named rule (order.return, imputed.amount), or set aside by one.

The cell tests (test_data_columnar.py) compare each conversion alone; this one covers what the
cleaning does with them together: signs, currency symbols and thousands separators on the unit
price and the amount of one line, with the line's quantity. A negative unit price was once
stored as a positive one here, with no rule named."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from smartmkt.data import columnar as c
from smartmkt.data import values as v
from smartmkt.data.cleaning import IMPUTED, MAX_CENTS, REPAIRS, RULE, Context, clean_orders
from smartmkt.data.mapping import FIELDS, KindMapping

NOW = datetime(2026, 1, 1, tzinfo=UTC)
MONEY = st.one_of(
    st.from_regex(r"-?\$?-?\d{1,4}([.,]\d{3})?([.,]\d{1,2})?( ?(EUR|USD|€|£))?", fullmatch=True),
    st.sampled_from(["-3.45", "$-3.45", "-$1,234.50", "1.234,50 EUR", "£12", "N/A", "", "-0.00"]),
    st.none(),
)
QUANTITY = st.sampled_from(["1", "2", "-1", "-3", "0", "1.5", "", None, "x"])


def read(rule: Any, raw: Any) -> tuple[str, int | None]:
    """("ok", micros) / ("ok", None) for an empty cell / ("rejected", None), as the row rules
    read the cell."""
    try:
        clean = rule(raw)
        if clean.value is None:
            return "ok", None
        return "ok", c._decimal_micros(clean.value[0] if isinstance(clean.value, tuple) else clean.value)
    except v.Rejected:
        return "rejected", None


def cents(micros: int) -> int:
    """Rounding half to even, as the pipeline does."""
    return int((Decimal(micros) / 10_000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def quantity_of(raw: Any) -> tuple[str, int | None]:
    try:
        clean = v.clean_quantity(raw)
    except v.Rejected:
        return "rejected", None
    if clean.value is None:
        return "ok", None
    if clean.value != clean.value.to_integral_value():
        return "rejected", None  # invalid.number: not a whole number
    return "ok", int(clean.value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(QUANTITY, MONEY, MONEY), min_size=1, max_size=25))
def test_an_order_lines_money_is_the_row_rules_or_a_named_rule(lines: list[tuple[Any, Any, Any]]) -> None:
    given = {
        "customer_id": ["C1"] * len(lines),
        "product_id": ["P1"] * len(lines),
        "quantity": [q for q, _, _ in lines],
        "unit_price": [u for _, u, _ in lines],
        "amount": [a for _, _, a in lines],
        "ordered_at": ["2024-03-05"] * len(lines),
    }
    fields = pl.DataFrame(
        {name: given.get(name, [None] * len(lines)) for name in FIELDS["orders"]},
        schema={name: pl.String for name in FIELDS["orders"]},
    )
    mapping = KindMapping.from_options("orders", {n: n for n in FIELDS["orders"]}, {})
    got = clean_orders(fields, Context(mapping, NOW, NOW)).to_dicts()
    for (q_raw, u_raw, a_raw), row in zip(lines, got, strict=True):
        q_state, quantity = quantity_of(q_raw)
        u_state, unit = read(v.clean_money, u_raw)  # a unit price is never negative
        a_state, amount = read(c._signed_money, a_raw)  # an amount may be (a refund)
        case = (q_raw, u_raw, a_raw, row)
        if "rejected" in (q_state, u_state, a_state):
            assert row[RULE], case  # the row rules set it aside, so does the pipeline
            continue
        quantity = 1 if quantity is None else quantity
        line = amount if amount is not None else None if unit is None else unit * abs(quantity)
        if any(abs(cents(m)) > MAX_CENTS for m in (unit, line) if m is not None):
            assert row[RULE] == "invalid.money", case  # beyond what the store holds
            continue
        if amount is not None and amount < 0 and quantity > 0:
            assert row[RULE] == "invalid.negative_amount", case
            continue
        assert row[RULE] is None, case
        assert row["quantity"] == quantity, case
        assert row["unit_cents"] == (None if unit is None else cents(unit)), case
        want = None if line is None else cents(line)
        if want is not None and quantity < 0:
            assert "order.return" in row[REPAIRS].split(), case
            want = -abs(want)
        if amount is None and unit is not None:
            assert "imputed.amount" in row[IMPUTED].split(), case
        assert row["amount_cents"] == want, case


def test_a_column_a_file_lacks_is_cleaned_as_its_empty_cells_would_be(monkeypatch: Any) -> None:
    """A field with no value in any row is answered by repeating the conversion's own answer for
    an empty cell (cleaning._convert); the frame is the same as converting every cell."""
    from polars.testing import assert_frame_equal

    from smartmkt.data import cleaning

    given = {
        "customers": {"customer_id": ["C1", "C2", " C3 "]},
        "products": {"product_id": ["P1", "P2", "P3"], "title": ["A", "b ", "C"], "price": ["1", "2", "x"]},
        "orders": {
            "customer_id": ["C1", None, "C3"],
            "product_id": ["P1", "P2", "P3"],
            "ordered_at": ["2024-03-05"] * 3,
        },
    }
    for kind, columns in given.items():
        fields = pl.DataFrame(
            {name: columns.get(name, [None] * 3) for name in FIELDS[kind]},
            schema={name: pl.String for name in FIELDS[kind]},
        )
        ctx = Context(KindMapping.from_options(kind, {n: n for n in FIELDS[kind]}, {}), NOW, NOW)
        quick = cleaning.CLEANERS[kind](fields, ctx, None)
        with monkeypatch.context() as patch:
            patch.setattr(cleaning, "_convert", lambda _name, convert, raw: convert(raw))
            every_cell = cleaning.CLEANERS[kind](fields, ctx, None)
        assert_frame_equal(quick, every_cell)
