"""Cell cleaning rules: each repair is named, each rejection says why."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from smartmkt.data.values import (
    Rejected,
    clean_bool,
    clean_category,
    clean_money,
    clean_quantity,
    clean_text,
    clean_timestamp,
)

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "amount", "currency", "rules"),
    [
        ("$1,234.50", "1234.50", "USD", {"money.currency_found", "money.thousands"}),
        ("1.234,50 EUR", "1234.50", "EUR", {"money.currency_found", "money.decimal_comma"}),
        ("12,5", "12.5", None, {"money.decimal_comma"}),
        ("1,234", "1234", None, {"money.thousands"}),
        (" 7.99 ", "7.99", None, {"text.normalized"}),
        ("£9.99", "9.99", "GBP", {"money.currency_found"}),
        (15, "15", None, set()),
    ],
)
def test_money(raw: object, amount: str, currency: str | None, rules: set[str]) -> None:
    result = clean_money(raw)
    assert result.value == (Decimal(amount), currency)
    assert set(result.repairs) == rules


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("-5", "invalid.negative_price"),
        ("(3.00)", "invalid.negative_price"),
        ("abc", "invalid.money"),
        ("12..5x", "invalid.money"),
    ],
)
def test_money_rejections(raw: str, rule: str) -> None:
    with pytest.raises(Rejected) as info:
        clean_money(raw)
    assert info.value.rule == rule


@pytest.mark.parametrize("raw", ["", "  ", "N/A", "null", "None", "-", "?"])
def test_missing_tokens(raw: str) -> None:
    assert clean_text(raw).value is None
    assert clean_money(raw).value is None
    assert clean_timestamp(raw, now=NOW).value is None


@pytest.mark.parametrize(
    ("raw", "expected", "rules"),
    [
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC), set()),
        ("2024-03-05T10:00:00+02:00", datetime(2024, 3, 5, 8, tzinfo=UTC), {"date.timezone"}),
        ("03/05/2024", datetime(2024, 3, 5, tzinfo=UTC), {"date.reformatted"}),
        (
            "5 Mar 2024 10:00 +0200",
            datetime(2024, 3, 5, 8, tzinfo=UTC),
            {"date.reformatted", "date.timezone"},
        ),
        ("19970101", datetime(1997, 1, 1, tzinfo=UTC), {"date.reformatted"}),
        ("1700000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), {"date.epoch"}),
        ("1700000000000", datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), {"date.epoch"}),
        (1700000000, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), {"date.epoch"}),
    ],
)
def test_timestamps(raw: object, expected: datetime, rules: set[str]) -> None:
    result = clean_timestamp(raw, now=NOW)
    assert result.value == expected
    assert set(result.repairs) == rules


def test_day_first_is_a_choice() -> None:
    assert clean_timestamp("03/05/2024", dayfirst=True, now=NOW).value == datetime(2024, 5, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ("2021-02-30", "invalid.date"),
        ("yesterday-ish", "invalid.date"),
        ("1890-01-01", "invalid.date_range"),
        ("2031-01-01", "invalid.date_range"),
        ("2024-01-01 10:00 XYZ", "invalid.date"),
        ("99999999999999", "invalid.date"),
    ],
)
def test_impossible_dates(raw: str, rule: str) -> None:
    with pytest.raises(Rejected) as info:
        clean_timestamp(raw, now=NOW)
    assert info.value.rule == rule


def test_quantities_booleans_categories_text() -> None:
    assert clean_quantity("2,5").value == Decimal("2.5")
    assert clean_quantity(-1).value == Decimal(-1)  # a return, kept
    with pytest.raises(Rejected, match=r"invalid\.zero_quantity"):
        clean_quantity("0")
    assert clean_bool("Y").value is True and clean_bool("no").value is False
    assert clean_bool("true").repairs == ()
    with pytest.raises(Rejected, match=r"invalid\.bool"):
        clean_bool("maybe")
    assert clean_category("  SCI-FI ").value == "Sci-Fi"
    assert clean_category("film noir").value == "Film Noir"
    assert clean_text("Cafe\u0301  au   lait").value == "Caf\u00e9 au lait"


def test_numbers_that_are_not_numbers() -> None:
    assert clean_money("nan").value is None  # pandas' missing value, a missing token
    for raw in (float("nan"), float("inf"), "Infinity"):
        with pytest.raises(Rejected):
            clean_money(raw)
        with pytest.raises(Rejected):
            clean_quantity(raw)
