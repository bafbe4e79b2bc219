"""Cell-level cleaning rules for retailers' exports: each rule has a name, and every repair or
rejection reports it, so an import can count exactly what it changed and why.

A converter returns ``Clean(value, repairs)`` (``repairs`` names the rules that had to change the
input) or raises ``Rejected(rule, detail)``. Missing values are ``None`` with no repair; whether
a missing field is fatal is the pipeline's decision, not the converter's.

Rules (the names are what reports and the quarantine table show):
  text.normalized        surrounding/inner whitespace squeezed, Unicode NFC
  missing.token          "", "N/A", "NA", "null", "none", "-", "?" read as missing
  money.thousands        "$1,234.50" -> 1234.50 (symbol and thousands separators dropped)
  money.decimal_comma    "1.234,50 EUR" / "12,5" -> 1234.50 / 12.50
  money.currency_found   a currency symbol or code in the cell sets the row's currency
  date.reformatted       any unambiguous non-ISO date ("5 Mar 2024", "03/05/2024", "19970101")
  date.epoch             epoch seconds or milliseconds
  date.timezone          an explicit offset converted to UTC (naive times are taken as UTC)
  bool.normalized        yes/no/y/n/1/0/true/false/t/f in any case
  category.normalized    "  SCI-FI " -> "Sci-Fi"; spacing and case of category names
  number.decimal_comma   "2,5" -> 2.5 for quantities
Rejections:
  invalid.number / invalid.money / invalid.date / invalid.bool
  invalid.negative_price   a price below zero
  invalid.date_range       a date before 1970 or more than a day in the future
  invalid.zero_quantity    a line quantity of 0
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

from smartmkt.store.clock import utcnow

T = TypeVar("T")

MISSING_TOKENS = frozenset({"", "n/a", "na", "null", "none", "nan", "-", "--", "?", "nil", "#n/a"})
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_CURRENCY_CODE = re.compile(r"\b([A-Z]{3})\b")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


class Rejected(ValueError):
    """A value no rule can repair; ``rule`` names why (stored with the quarantined row)."""

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


@dataclass(frozen=True)
class Clean(Generic[T]):
    value: T | None
    repairs: tuple[str, ...] = ()


def is_missing(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip().lower() in MISSING_TOKENS)


def clean_text(raw: object) -> Clean[str]:
    """Trimmed, whitespace-squeezed NFC text; missing tokens become None."""
    if raw is None:
        return Clean(None)
    text = str(raw)
    if is_missing(text):
        return Clean(None, ("missing.token",) if text.strip() else ())
    normalized = re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip()
    return Clean(normalized, ("text.normalized",) if normalized != text else ())


def clean_money(raw: object) -> Clean[tuple[Decimal, str | None]]:
    """(amount, currency or None) from "$1,234.50", "1.234,50 EUR", "12,5", 7, 7.5."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _non_negative(Clean((_finite(raw, "invalid.money"), None)))
    text = clean_text(raw)
    if text.value is None:
        return Clean(None, text.repairs)
    repairs = list(text.repairs)
    value = text.value
    currency = None
    for symbol, code in CURRENCY_SYMBOLS.items():
        if symbol in value:
            currency = code
            value = value.replace(symbol, "")
    if match := _CURRENCY_CODE.search(value.upper()):
        currency = match.group(1)
        value = _CURRENCY_CODE.sub("", value.upper())
    if currency:
        repairs.append("money.currency_found")
    value = value.replace(" ", "").replace("\u00a0", "")
    negative = value.startswith("(") and value.endswith(")")  # accounting notation
    value = value.strip("()")
    number, rule = _number_text(value)
    if rule:
        repairs.append(rule.replace("number.", "money."))
    amount = _decimal(number, "invalid.money", f"not an amount: {raw!r}")
    if negative:
        amount = -amount
    return _non_negative(Clean((amount, currency), tuple(dict.fromkeys(repairs))))


def _non_negative(clean: Clean[tuple[Decimal, str | None]]) -> Clean[tuple[Decimal, str | None]]:
    if clean.value is not None and clean.value[0] < 0:
        raise Rejected("invalid.negative_price", f"negative amount {clean.value[0]}")
    return clean


def _decimal(text: str, rule: str, detail: str) -> Decimal:
    """A finite Decimal from canonical number text, or the named rejection."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise Rejected(rule, detail) from exc
    if not value.is_finite():
        raise Rejected(rule, detail)
    return value


def _finite(number: float, rule: str) -> Decimal:
    value = Decimal(str(number))
    if not value.is_finite():
        raise Rejected(rule, f"not a number: {number!r}")
    return value


def _number_text(value: str) -> tuple[str, str | None]:
    """Canonical decimal text for "1,234.50", "1.234,50", "12,5", "1 234"; and the rule used."""
    if "," in value and "." in value:
        if value.rfind(",") > value.rfind("."):  # 1.234,50
            return value.replace(".", "").replace(",", "."), "number.decimal_comma"
        return value.replace(",", ""), "number.thousands"  # 1,234.50
    if "," in value:
        head, _, tail = value.rpartition(",")
        if len(tail) == 3 and head and head.replace(",", "").lstrip("-").isdigit():
            return value.replace(",", ""), "number.thousands"  # 1,234
        return value.replace(",", "."), "number.decimal_comma"  # 12,5
    if value.count(".") > 1:
        return value.replace(".", ""), "number.thousands"  # 1.234.567
    return value, None


def clean_quantity(raw: object) -> Clean[Decimal]:
    """A line quantity; 0 is rejected, a negative quantity (a return) is kept as is."""
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        quantity = _finite(raw, "invalid.number")
        repairs: tuple[str, ...] = ()
    else:
        text = clean_text(raw)
        if text.value is None:
            return Clean(None, text.repairs)
        number, rule = _number_text(text.value.replace(" ", ""))
        quantity = _decimal(number, "invalid.number", f"not a quantity: {raw!r}")
        repairs = tuple(r for r in (*text.repairs, rule) if r)
    if quantity == 0:
        raise Rejected("invalid.zero_quantity", "quantity 0")
    return Clean(quantity, repairs)


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


def clean_bool(raw: object) -> Clean[bool]:
    if isinstance(raw, bool):
        return Clean(raw)
    text = clean_text(raw)
    if text.value is None:
        return Clean(None, text.repairs)
    key = text.value.lower()
    if key in _TRUE or key in _FALSE:
        canonical = key in ("true", "false")
        return Clean(key in _TRUE, () if canonical else ("bool.normalized",))
    raise Rejected("invalid.bool", f"not a yes/no value: {raw!r}")


def clean_category(raw: object) -> Clean[str]:
    """Category names in one spelling: trimmed, title-cased words, hyphens kept ("Sci-Fi")."""
    text = clean_text(raw)
    if text.value is None:
        return text
    words = re.split(r"(\s+|-|/)", text.value)
    titled = "".join(w if re.fullmatch(r"\s+|-|/", w) else _title_word(w) for w in words)
    repairs = text.repairs + (("category.normalized",) if titled != text.value else ())
    return Clean(titled, repairs)


def _title_word(word: str) -> str:
    if word.upper() in {"TV", "DVD", "UK", "US", "CD"}:
        return word.upper()
    return word[:1].upper() + word[1:].lower()


def clean_timestamp(raw: object, dayfirst: bool = False, now: datetime | None = None) -> Clean[datetime]:
    """A UTC datetime from ISO 8601, "19970101", "03/05/2024", "5 Mar 2024 10:00 +0200", epoch
    seconds or milliseconds. ``dayfirst`` settles "03/05/2024" (a mapping option)."""
    from dateutil import parser as date_parser

    now = now or utcnow()
    if isinstance(raw, datetime):
        return _in_range(_as_utc(raw, []), now)
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        return _in_range(_from_epoch(float(raw)), now)
    text = clean_text(raw)
    if text.value is None:
        return Clean(None, text.repairs)
    value = text.value
    repairs = list(text.repairs)
    if re.fullmatch(r"\d{9,13}(\.\d+)?", value):
        epoch = _from_epoch(float(value))
        return _in_range(Clean(epoch.value, (*repairs, *epoch.repairs)), now)
    iso = _iso(value)
    try:
        with warnings.catch_warnings():
            # "10:00 XYZ": a zone name dateutil does not know would silently become UTC
            warnings.simplefilter("error", date_parser.UnknownTimezoneWarning)
            parsed = iso or date_parser.parse(value, dayfirst=dayfirst, yearfirst=not dayfirst)
    except date_parser.UnknownTimezoneWarning as exc:
        raise Rejected("invalid.date", f"unknown time zone in {raw!r}") from exc
    except (ValueError, OverflowError) as exc:
        raise Rejected("invalid.date", f"not a date: {raw!r}") from exc
    if iso is None:
        repairs.append("date.reformatted")
    try:
        moment = _as_utc(parsed, repairs)
    except (OverflowError, ValueError) as exc:  # an offset of a day or more, a year beyond 9999
        raise Rejected("invalid.date", f"not a date: {raw!r}") from exc
    return _in_range(moment, now)


def _iso(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if re.match(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def _from_epoch(seconds: float) -> Clean[datetime]:
    if seconds > 1e11:  # milliseconds
        seconds /= 1000
    try:
        return Clean(datetime.fromtimestamp(seconds, tz=UTC), ("date.epoch",))
    except (OverflowError, OSError, ValueError) as exc:  # NaN, infinities, beyond year 9999
        raise Rejected("invalid.date", f"not a timestamp: {seconds!r}") from exc


def _as_utc(moment: datetime, repairs: list[str]) -> Clean[datetime]:
    if moment.tzinfo is None:
        return Clean(moment.replace(tzinfo=UTC), tuple(repairs))
    if moment.utcoffset() != timedelta(0):
        repairs.append("date.timezone")
    return Clean(moment.astimezone(UTC), tuple(repairs))


def _in_range(clean: Clean[datetime], now: datetime) -> Clean[datetime]:
    if clean.value is not None and not (EARLIEST <= clean.value <= now + timedelta(days=1)):
        raise Rejected("invalid.date_range", f"{clean.value.isoformat()} is outside 1970..now")
    return clean
