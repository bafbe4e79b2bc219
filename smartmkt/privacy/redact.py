"""Find and mask personal data in a customer's message: e-mail addresses, phone numbers, payment
card numbers and street addresses become ``[EMAIL]``, ``[PHONE]``, ``[CARD]`` and ``[ADDRESS]``.

- **E-mail**: ``local@domain.tld`` (letters of any script, dots, ``+``, ``%``, ``-``).
- **Card**: 13 to 19 digits, in one run or in groups separated by single spaces or dashes, that
  pass the Luhn check (every card scheme's check digit). A number that fails it is not a card.
- **Phone**: Google's libphonenumber (the ``phonenumbers`` package) finds the numbers in the text:
  ``+``-prefixed numbers of every country, national numbers of the home region (the first region
  configured; "possible" numbers, so local 7-digit numbers count) and valid numbers of the other
  regions configured; and, whatever the regions, national numbers written with a trunk prefix
  ("020 7946 0958", "06 12 34 56 78": a 0 and 9 to 12 digits). Years, prices, dates with slashes
  or dashes, and quantities are not phone numbers.
- **Address**: a house number, one to four words of street name and a street type ("12 Baker
  Street", "221B Baker St.", "1600 Pennsylvania Ave NW, Washington, DC 20500", with an apartment or
  unit and a city + state/ZIP or UK postcode when they follow), "PO Box 12", and German
  "Hauptstraße 5". The first name word may not be a word that follows a quantity ("2 for the road",
  "3 kids ... way"), and titles such as "Miracle on 34th Street" have no house number, so they stay.

Masking keeps the rest of the text as it was; ``Redaction`` maps offsets in the original text to
the masked one, so entity spans can follow (``mask_entities``). Masking is idempotent: a masked
text has nothing left to find.

The standard library and phonenumbers only: Rasa's tracker store imports this module in the bot
environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

KINDS = ("email", "card", "phone", "address")  # also the order in which overlaps are decided
MASKS = {"email": "[EMAIL]", "card": "[CARD]", "phone": "[PHONE]", "address": "[ADDRESS]"}
DEFAULT_KINDS = ",".join(KINDS)
DEFAULT_PHONE_REGIONS = "US"

_EMAIL = re.compile(r"(?<![\w.+%-])[\w.+%-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}(?![\w-])")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d])")
# National numbers written with a trunk prefix ("020 7946 0958", "06 12 34 56 78", "0171/1234567"),
# which libphonenumber only knows for the regions configured. Years and prices never start with 0.
_NATIONAL = re.compile(r"(?<![\w+.,$€£/-])0\d{1,4}(?:[ ./-]?\d{2,4}){2,4}(?![\w]|[.,/-]?\d)")

_STREET_TYPES = (
    "street|st|avenue|ave|av|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|way|"
    "terrace|ter|circle|cir|parkway|pkwy|highway|hwy|square|sq|crescent|cres|close|grove|gardens|"
    "mews|row|alley|trail|trl|plaza|plz|loop"
)
# Words that follow a quantity rather than a house number ("2 for the road", "3 kids under ...").
_NOT_A_STREET_NAME = (
    "for|the|a|an|to|of|in|on|at|and|or|with|my|our|your|his|her|their|its|under|over|from|by|per|"
    "is|are|was|were|be|it|this|that|these|those|more|less|than|about|around|kids?|children|people|"
    "persons?|movies?|films?|titles?|dollars?|bucks|euros?|pounds?|cents?|usd|minutes?|mins?|hours?|"
    "hrs?|days?|weeks?|months?|years?|yrs?|times?|stars?|seasons?|episodes?|parts?|am|pm|x"
)
_HOUSE_NUMBER = r"\b\d{1,6}[A-Za-z]?(?:[-/]\d{1,6}[A-Za-z]?)?"
_NAME_WORD = r"(?:[^\W\d_][\w'’.-]*|\d{1,3}(?i:st|nd|rd|th))"
_UNIT = (
    r"(?:,?\s*(?i:apt|apartment|unit|suite|ste|flat|floor|fl|room|rm)\.?\s*#?\s*[A-Za-z0-9-]{1,6}\b"
    r"|,?\s*#\s*[A-Za-z0-9-]{1,6}\b)?"
)
_POSTAL = r"(?:\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}|[A-Z]\d[A-Z]\s?\d[A-Z]\d)"
_CITY = (
    rf"(?:,\s*[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){{0,3}}"
    rf"(?:,?\s+{_POSTAL}\b|,?\s+[A-Z]{{2}}\b(?:\s+{_POSTAL}\b)?))?"
)
_ADDRESS = re.compile(
    rf"{_HOUSE_NUMBER}\s+(?:(?i:north|south|east|west|[NSEW])\.?\s+)?"
    rf"(?!(?i:{_NOT_A_STREET_NAME})\b){_NAME_WORD}(?:\s+{_NAME_WORD}){{0,3}}?\s+"
    rf"(?i:{_STREET_TYPES})\b\.?(?:\s+(?:NE|NW|SE|SW|N|S|E|W)\b\.?)?{_UNIT}{_CITY}"
    r"|\b(?i:p\.?\s*o\.?\s*box)\s+\d{1,7}\b"
    r"|\b[^\W\d_][\w-]*(?i:straße|strasse|str\.|weg|gasse|platz|allee)\s+\d{1,4}[a-z]?\b"
)


def luhn_ok(digits: str) -> bool:
    """The Luhn check every payment card number passes."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Span:
    """Personal data at ``[start, end)`` of the original text."""

    start: int
    end: int
    kind: str

    @property
    def mask(self) -> str:
        return MASKS[self.kind]


@dataclass(frozen=True)
class Redaction:
    """A text with its personal data masked, and where the masks are."""

    original: str
    text: str
    spans: tuple[Span, ...]  # in the original text, in order, not overlapping

    def position(self, offset: int, end: bool = False) -> int:
        """Where ``offset`` of the original text is in the masked text. An offset inside a masked
        span goes to the mask's start (or, with ``end``, its end), so a span that touches personal
        data covers the whole mask."""
        shift = 0
        for span in self.spans:
            if offset <= span.start:
                break
            if offset < span.end:
                return span.start + shift + (len(span.mask) if end else 0)
            shift += len(span.mask) - (span.end - span.start)
        return offset + shift

    def overlaps(self, start: int, end: int) -> bool:
        return any(s.start < end and start < s.end for s in self.spans)


def parse_kinds(spec: str) -> frozenset[str]:
    """``"email,phone"`` -> those kinds; ``"all"`` -> every kind; ``""`` or ``"none"`` -> nothing."""
    words = {w.strip().lower() for w in spec.replace(";", ",").split(",") if w.strip()}
    if words <= {"none", "off", "false"}:
        return frozenset()
    if words == {"all"}:
        return frozenset(KINDS)
    unknown = words - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds of personal data {sorted(unknown)}; known: {', '.join(KINDS)}")
    return frozenset(words)


def parse_regions(spec: str) -> tuple[str, ...]:
    """``"US,GB"`` -> ("US", "GB"): the home region first."""
    regions = tuple(r.strip().upper() for r in spec.split(",") if r.strip())
    for region in regions:
        if not re.fullmatch(r"[A-Z]{2}", region):
            raise ValueError(f"{region!r} is not a two-letter region code (US, GB, DE...)")
    return regions or (DEFAULT_PHONE_REGIONS,)


class Redactor:
    """Masks the configured kinds of personal data; one per process is enough (``redactor``)."""

    def __init__(self, kinds: Iterable[str] = KINDS, phone_regions: Sequence[str] = ("US",)) -> None:
        self.kinds = frozenset(kinds)
        unknown = self.kinds - set(KINDS)
        if unknown:
            raise ValueError(f"unknown kinds of personal data {sorted(unknown)}")
        self.phone_regions = tuple(phone_regions) or (DEFAULT_PHONE_REGIONS,)

    @classmethod
    def from_spec(cls, kinds: str = DEFAULT_KINDS, phone_regions: str = DEFAULT_PHONE_REGIONS) -> Redactor:
        """From settings strings: ``SMARTMKT_REDACT`` and ``SMARTMKT_REDACT_PHONE_REGIONS``."""
        return cls(parse_kinds(kinds), parse_regions(phone_regions))

    @property
    def enabled(self) -> bool:
        return bool(self.kinds)

    # --- finding ----------------------------------------------------------------------------
    def find(self, text: str) -> list[Span]:
        """The personal data in ``text``: overlapping finds merge into one span of the kind that
        comes first in ``KINDS``."""
        if not self.kinds or not text:
            return []
        found: list[Span] = []
        digits = sum(ch.isdigit() for ch in text)
        if "email" in self.kinds and "@" in text:
            found += [Span(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
        if "card" in self.kinds and digits >= 13:
            found += [Span(m.start(), m.end(), "card") for m in _CARD.finditer(text) if _is_card(m.group())]
        if "phone" in self.kinds and digits >= 7:
            found += self._phones(text)
            found += [
                Span(m.start(), m.end(), "phone")
                for m in _NATIONAL.finditer(text)
                if 9 <= sum(ch.isdigit() for ch in m.group()) <= 12
            ]
        if "address" in self.kinds and digits:
            found += [Span(m.start(), m.end(), "address") for m in _ADDRESS.finditer(text)]
        return _merge(found)

    def _phones(self, text: str) -> list[Span]:
        from phonenumbers import Leniency, PhoneNumberMatcher

        spans = []
        for i, region in enumerate(self.phone_regions):
            leniency = Leniency.POSSIBLE if i == 0 else Leniency.VALID
            for match in PhoneNumberMatcher(text, region, leniency=leniency):
                spans.append(Span(match.start, match.end, "phone"))
        return spans

    # --- masking ----------------------------------------------------------------------------
    def redaction(self, text: str) -> Redaction:
        spans = self.find(text)
        if not spans:
            return Redaction(text, text, ())
        parts, cursor = [], 0
        for span in spans:
            parts += [text[cursor : span.start], span.mask]
            cursor = span.end
        parts.append(text[cursor:])
        return Redaction(text, "".join(parts), tuple(spans))

    def redact(self, text: str) -> str:
        """``text`` with its personal data masked."""
        return self.redaction(text).text

    def mask_entities(self, redaction: Redaction, entities: Sequence[Any]) -> list[Any]:
        """Entities found in ``redaction.original`` (Rasa's shape: ``start``, ``end``, ``value``)
        moved onto the masked text. An entity touching personal data takes the masked text of its
        new span as its value; any other value is masked on its own (a synonym's value may differ
        from the words it was found in)."""
        moved: list[Any] = []
        for entity in entities:
            if not isinstance(entity, dict):
                moved.append(entity)
                continue
            entity = dict(entity)
            start, end = entity.get("start"), entity.get("end")
            if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end:
                entity["start"] = redaction.position(start)
                entity["end"] = redaction.position(end, end=True)
                if redaction.overlaps(start, end):
                    entity["value"] = redaction.text[entity["start"] : entity["end"]]
                    moved.append(entity)
                    continue
            entity["value"] = self.value(entity.get("value"))
            moved.append(entity)
        return moved

    def value(self, value: Any) -> Any:
        """Every string inside ``value`` (a string, a list, a dict's values) masked."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        return value


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans as one, of the kind that comes first in ``KINDS``."""
    rank = {kind: i for i, kind in enumerate(KINDS)}
    merged: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if merged and span.start < merged[-1].end:
            last = merged[-1]
            kind = min(last.kind, span.kind, key=rank.__getitem__)
            merged[-1] = Span(last.start, max(last.end, span.end), kind)
        else:
            merged.append(span)
    return merged


@lru_cache(maxsize=8)
def redactor(kinds: str = DEFAULT_KINDS, phone_regions: str = DEFAULT_PHONE_REGIONS) -> Redactor:
    """One shared redactor per configuration."""
    return Redactor.from_spec(kinds, phone_regions)


__all__ = [
    "DEFAULT_KINDS",
    "DEFAULT_PHONE_REGIONS",
    "KINDS",
    "MASKS",
    "Redaction",
    "Redactor",
    "Span",
    "luhn_ok",
    "parse_kinds",
    "parse_regions",
    "redactor",
]
