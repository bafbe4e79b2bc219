"""The catalog item (and a change to one), how a price reads (``money``), and the catalog
vocabulary: turn what customers say into catalog values.

"sci-fi" -> Sci-Fi, "westerns" -> Western, "the 90s" -> (1990, 1999), "$10" -> 10.0,
"toy story" -> the product. Pure functions, no framework, so the NLU, the actions and the
CLI all normalize the same way.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


def money(cents: int, currency: str = "USD") -> str:
    """A price as a customer reads it: ``$14.99``, ``€1,250.00``, ``CHF 9.00``."""
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{symbol}{cents / 100:,.2f}"


@dataclass(frozen=True)
class CatalogItem:
    """A title of the catalog as every layer above the store sees it: the recommender's index,
    the assistant's replies and offers, the benches. One type, so nothing converts between
    look-alikes."""

    id: int
    title: str
    year: int | None
    genres: tuple[str, ...]
    price_cents: int
    currency: str = "USD"

    @property
    def price(self) -> float:
        return self.price_cents / 100


@dataclass(frozen=True)
class CatalogChange:
    """A product as a write left it (the shop API, an import): ``active`` False means it left
    the catalog. Serving recommenders follow these (smartmkt.recommend.live_catalog)."""

    item: CatalogItem
    active: bool = True


# Catalog genres (MovieLens names) and the ways people say them.
GENRE_ALIASES: dict[str, tuple[str, ...]] = {
    "Action": ("action", "action movie", "actions", "action flick", "shoot em up", "martial arts"),
    "Adventure": ("adventure", "adventures", "adventurous"),
    "Animation": ("animation", "animated", "cartoon", "cartoons", "anime", "animations"),
    "Children's": (
        "children's",
        "childrens",
        "children",
        "kids",
        "kid",
        "kids movie",
        "kids movies",
        "family",
        "family movie",
        "family film",
        "for kids",
        "kid friendly",
        "kid-friendly",
    ),
    "Comedy": (
        "comedy",
        "comedies",
        "funny",
        "comdy",
        "comedie",
        "comedys",
        "humor",
        "humour",
        "laugh",
        "comic",
        "comedic",
    ),
    "Crime": ("crime", "crimes", "gangster", "gangsters", "heist", "mafia"),
    "Documentary": ("documentary", "documentaries", "docs", "doc", "docu", "documentry"),
    "Drama": ("drama", "dramas", "dramatic", "drame"),
    "Fantasy": ("fantasy", "fantasies", "fairy tale", "fairy tales", "magic"),
    "Film-Noir": ("film-noir", "film noir", "noir", "films noirs", "film noirs"),
    "Horror": ("horror", "horrors", "scary", "horor", "horror movie", "slasher", "spooky"),
    "Musical": ("musical", "musicals", "music", "singing"),
    "Mystery": ("mystery", "mysteries", "whodunit", "whodunnit", "detective"),
    "Romance": ("romance", "romances", "romantic", "love story", "love stories"),
    "Sci-Fi": (
        "sci-fi",
        "scifi",
        "sci fi",
        "science fiction",
        "science-fiction",
        "sf",
        "space",
        "syfy",
        "sci-fy",
        "scifi movies",
    ),
    "Thriller": ("thriller", "thrillers", "suspense", "thriler", "suspenseful"),
    "War": ("war", "war movie", "war movies", "war films", "military"),
    "Western": ("western", "westerns", "cowboy", "cowboys", "wild west", "westren"),
}
GENRES: tuple[str, ...] = tuple(GENRE_ALIASES)

# Recipients whose viewing suits family titles; the recommender uses it as a soft preference.
KID_RECIPIENTS = re.compile(
    r"\b(kid|kids|child|children|son|daughter|niece|nephew|grandkid|grandkids|toddler|"
    r"little one|boy|girl|family|\d{1,2}[- ]?(year|yr)[- ]?old)s?\b",
    re.IGNORECASE,
)

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}
_DECADE_WORDS = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
}


def fold(text: str) -> str:
    """Lower-case, NFC, straightened quotes and squeezed spaces: the key for lookups."""
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", text).strip().lower()


def _genre_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for genre, aliases in GENRE_ALIASES.items():
        index[fold(genre)] = genre
        for alias in aliases:
            index[fold(alias)] = genre
    return index


_GENRE_INDEX = _genre_index()
_GENRE_FILLER = re.compile(r"\b(movies?|films?|flicks?|titles?|ones?|stuff|genre|please)\b")


def normalize_genre(text: str) -> str | None:
    """The catalog genre a phrase names, or None. Tolerates plurals, fillers and typos."""
    key = fold(text).strip(" .!?,'\"")
    if key in _GENRE_INDEX:
        return _GENRE_INDEX[key]
    stripped = _GENRE_FILLER.sub(" ", key)
    stripped = re.sub(r"\s+", " ", stripped).strip()
    if stripped in _GENRE_INDEX:
        return _GENRE_INDEX[stripped]
    if stripped.endswith("s") and stripped[:-1] in _GENRE_INDEX:
        return _GENRE_INDEX[stripped[:-1]]
    from rapidfuzz import fuzz, process

    match = process.extractOne(stripped, list(_GENRE_INDEX), scorer=fuzz.ratio, score_cutoff=80)
    return _GENRE_INDEX[match[0]] if match else None


# Names that mean two genres at once: a romcom is a romance and a comedy.
COMPOUND_GENRES: dict[str, tuple[str, ...]] = {
    "romcom": ("Romance", "Comedy"),
    "romcoms": ("Romance", "Comedy"),
    "rom-com": ("Romance", "Comedy"),
    "rom-coms": ("Romance", "Comedy"),
    "rom com": ("Romance", "Comedy"),
    "dramedy": ("Comedy", "Drama"),
    "dramedies": ("Comedy", "Drama"),
}
_LONGEST_ALIAS = max(len(key.split()) for key in _GENRE_INDEX)
_JOINERS = re.compile(r"\s*(?:,|&|/|\+|\band\b|\bor\b|\bwith\b)\s*")


def genres_in(text: str) -> list[str]:
    """Every catalog genre a phrase names: one ("sci-fi movies") or several ("romantic comedy",
    "animated musical", "sci-fi thriller", "comedy and romance"). A name is read whole first,
    so "science fiction" or "film noir" stays one genre; else word by word, longest alias first,
    each word forgiving plurals and typos."""
    key = fold(text).strip(" .!?,'\"")
    if key in COMPOUND_GENRES:
        return list(COMPOUND_GENRES[key])
    if key in _GENRE_INDEX:
        return [_GENRE_INDEX[key]]
    words = _GENRE_FILLER.sub(" ", _JOINERS.sub(" ", key)).split()
    found: list[str] = []
    start = 0
    while start < len(words):
        genres, used = _genres_at(words, start)
        found += [g for g in genres if g not in found]
        start += used
    if found:
        return found
    whole = normalize_genre(text)
    return [whole] if whole else []


def _genres_at(words: list[str], start: int) -> tuple[tuple[str, ...], int]:
    """The genres named by the longest alias starting at ``words[start]`` and how many words it
    took; an unknown word names none and takes one."""
    for size in range(min(_LONGEST_ALIAS, len(words) - start), 0, -1):
        phrase = " ".join(words[start : start + size])
        if phrase in COMPOUND_GENRES:
            return COMPOUND_GENRES[phrase], size
        if phrase in _GENRE_INDEX:
            return (_GENRE_INDEX[phrase],), size
    word = words[start]
    if len(word) >= 4 and (genre := normalize_genre(word)):
        return (genre,), 1
    return (), 1


def normalize_genres(values: Iterable[str]) -> list[str]:
    """Catalog genres for several phrases (each may name several: "romantic comedy"), unknown
    ones dropped, order kept, no repeats."""
    seen: list[str] = []
    for value in values:
        for genre in genres_in(value):
            if genre not in seen:
                seen.append(genre)
    return seen


def parse_price(text: str) -> float | None:
    """An amount from "$10", "15 dollars", "7.50", "twenty bucks", "10,50 EUR"."""
    key = fold(text)
    match = re.search(r"(\d+(?:[.,]\d{1,2})?)", key)
    if match:
        return float(match.group(1).replace(",", "."))
    total = 0
    for word in re.findall(r"[a-z]+", key):
        if word in _NUMBER_WORDS:
            total += _NUMBER_WORDS[word]
    return float(total) if total else None


def parse_year_range(text: str) -> tuple[int, int] | None:
    """(first, last) year for "1997", "the 90s", "'80s", "1970s", "the eighties"."""
    key = fold(text)
    if match := re.search(r"\b(1[89]\d\d|20\d\d)s\b", key):
        start = int(match.group(1))
        return (start, start + 9)
    if match := re.search(r"\b(1[89]\d\d|20\d\d)\b", key):
        year = int(match.group(1))
        return (year, year)
    if match := re.search(r"(?:^|[\s'`])(\d0)'?s\b", key):
        decade = int(match.group(1))
        start = 2000 + decade if decade <= 20 else 1900 + decade
        return (start, start + 9)
    for word, start in _DECADE_WORDS.items():
        if word in key:
            return (start, start + 9)
    return None


def is_kid_recipient(text: str) -> bool:
    return bool(KID_RECIPIENTS.search(text))


_ARTICLE_SUFFIX = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An|Il|La|Le|Les|L'|Das|Der|Die|El|Los|Las)$")


def display_title(raw_title: str) -> str:
    """MovieLens writes "Usual Suspects, The"; customers read "The Usual Suspects"."""
    title = unicodedata.normalize("NFC", raw_title).strip()
    if match := _ARTICLE_SUFFIX.match(title):
        article = match.group("article")
        sep = "" if article.endswith("'") else " "
        return f"{article}{sep}{match.group('rest')}"
    return title


def title_key(title: str) -> str:
    """A loose key for matching what a customer typed to a title."""
    key = fold(title)
    key = re.sub(r"\(.*?\)", " ", key)
    key = re.sub(r"^(the|a|an) ", "", key)
    key = re.sub(r"[^\w\s]", " ", key)
    return re.sub(r"\s+", " ", key).strip()
