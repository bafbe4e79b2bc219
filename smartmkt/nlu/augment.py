"""Training-data augmentation: swap entity values for other real values of the same kind.

Product titles come from the catalog and genre words from the catalog's vocabulary, so the
model learns the slot, not the handful of titles the hand-written examples happen to use.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from smartmkt.catalog import GENRE_ALIASES
from smartmkt.nlu.data import EntitySpan, Example

_PRICES = (
    "$5",
    "$7.99",
    "10 dollars",
    "$12",
    "15 bucks",
    "$20",
    "twenty dollars",
    "8 dollars",
    "$3",
    "25 bucks",
    "$9.50",
    "12 dollars",
    "ten bucks",
    "$30",
    "6 dollars",
)
_YEARS = (
    "1995",
    "the 90s",
    "80s",
    "1970s",
    "the eighties",
    "1997",
    "sixties",
    "'90s",
    "1988",
    "the 1950s",
    "1993",
    "nineties",
    "the 70s",
    "1960",
)
_RECIPIENTS = (
    "my dad",
    "my mom",
    "my kids",
    "my wife",
    "my husband",
    "my son",
    "my daughter",
    "my girlfriend",
    "my boyfriend",
    "grandma",
    "my grandpa",
    "the whole family",
    "my 8 year old",
    "my brother",
    "my sister",
    "a friend",
    "my boss",
    "my niece",
    "my students",
    "my partner",
)


_FILLER = re.compile(r"\b(movies?|films?|flicks?|for)\b")


def _casing(value: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.45:
        return value.lower()
    if roll < 0.55:
        return value.upper() if len(value) < 12 else value
    return value


def _replacement(span: EntitySpan, titles: Sequence[str], rng: random.Random) -> str:
    if span.entity == "product" and titles:
        return _casing(rng.choice(titles), rng)
    if span.entity == "category":
        genre = rng.choice(list(GENRE_ALIASES))
        # Only bare genre words: the annotation convention leaves "movies"/"films" outside.
        words = [a for a in (genre.lower(), *GENRE_ALIASES[genre][:4]) if not _FILLER.search(a)]
        return rng.choice(words)
    if span.entity == "price":
        return rng.choice(_PRICES)
    if span.entity == "year":
        return rng.choice(_YEARS)
    if span.entity == "recipient":
        return rng.choice(_RECIPIENTS)
    return span.value


def substitute(example: Example, titles: Sequence[str], rng: random.Random) -> Example:
    """A copy of ``example`` with every entity value replaced, spans recomputed."""
    parts: list[str] = []
    spans: list[EntitySpan] = []
    cursor = 0
    length = 0
    for span in sorted(example.entities, key=lambda s: s.start):
        before = example.text[cursor : span.start]
        parts.append(before)
        length += len(before)
        value = _replacement(span, titles, rng)
        spans.append(EntitySpan(length, length + len(value), span.entity, value, span.role))
        parts.append(value)
        length += len(value)
        cursor = span.end
    parts.append(example.text[cursor:])
    return Example("".join(parts), example.intent, tuple(spans))


def augment(
    examples: Sequence[Example], titles: Sequence[str], copies: int = 2, seed: int = 11
) -> list[Example]:
    """The originals plus ``copies`` substituted variants of every example that has entities."""
    rng = random.Random(seed)
    out = list(examples)
    for example in examples:
        if example.entities:
            out.extend(substitute(example, titles, rng) for _ in range(copies))
    return out
