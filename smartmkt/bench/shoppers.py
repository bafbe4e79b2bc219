"""Shopper requests for ``smartmkt bench preferences``, written as shoppers type them, each with
the constraints its words state.

Every request starts from a real catalog title (drawn with a fixed seed): one to three of its
genres, and sometimes a price cap above its price, its decade, a genre it does not have to
exclude, and who it is for. So every request has at least that title to satisfy it, and the
genre combinations, prices and years are the catalog's own. The words come from phrase tables
below: compound genre names ("romantic comedy", "animated musical", "sci-fi thriller"), genres
joined with "and", plural and singular forms, prices in digits and in words, decades four
ways, exclusions and audiences several ways.

``Constraints`` is the bench's own reading of a request, kept apart from the product's
(``smartmkt.recommend.preferences``): the bench grades the product against it, and never hands
it to the product.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from smartmkt.catalog import CatalogItem

# How a genre is said in front of another genre ("romantic comedy") and alone as a noun.
ADJECTIVE: dict[str, tuple[str, ...]] = {
    "Action": ("action",),
    "Adventure": ("adventure",),
    "Animation": ("animated",),
    "Children's": ("children's", "family"),
    "Comedy": ("comedy",),
    "Crime": ("crime",),
    "Documentary": ("documentary",),
    "Drama": ("drama",),
    "Fantasy": ("fantasy",),
    "Film-Noir": ("noir",),
    "Horror": ("horror",),
    "Musical": ("musical",),
    "Mystery": ("mystery",),
    "Romance": ("romantic", "romance"),
    "Sci-Fi": ("sci-fi", "science fiction"),
    "Thriller": ("thriller",),
    "War": ("war",),
    "Western": ("western",),
}
NOUN: dict[str, tuple[tuple[str, str], ...]] = {  # (singular, plural)
    "Action": (("action movie", "action movies"),),
    "Adventure": (("adventure", "adventures"),),
    "Animation": (("cartoon", "cartoons"), ("animated movie", "animated movies")),
    "Children's": (("children's movie", "children's movies"), ("family film", "family films")),
    "Comedy": (("comedy", "comedies"),),
    "Crime": (("crime movie", "crime movies"),),
    "Documentary": (("documentary", "documentaries"),),
    "Drama": (("drama", "dramas"),),
    "Fantasy": (("fantasy movie", "fantasy movies"),),
    "Film-Noir": (("film noir", "films noirs"),),
    "Horror": (("horror movie", "horror movies"),),
    "Musical": (("musical", "musicals"),),
    "Mystery": (("mystery", "mysteries"),),
    "Romance": (("romance", "romances"), ("love story", "love stories")),
    "Sci-Fi": (("sci-fi movie", "sci-fi movies"), ("sci-fi", "sci-fi")),
    "Thriller": (("thriller", "thrillers"),),
    "War": (("war movie", "war movies"),),
    "Western": (("western", "westerns"),),
}
# Which genre a compound name ends on: the one people use as the noun ("sci-fi thriller").
HEAD_ORDER = (
    "Comedy",
    "Thriller",
    "Musical",
    "Drama",
    "Western",
    "Romance",
    "Mystery",
    "Documentary",
    "Adventure",
    "Horror",
    "Action",
    "Crime",
    "War",
    "Fantasy",
    "Sci-Fi",
    "Film-Noir",
    "Children's",
    "Animation",
)
# (opener, what it needs: "a" an article, "s" a plural, "" a singular without an article)
OPENERS = (
    ("recommend", "a"),
    ("recommend me", "a"),
    ("can you recommend", "a"),
    ("i'm looking for", "a"),
    ("suggest", "a"),
    ("i want", "a"),
    ("find me", "a"),
    ("", "a"),
    ("any good", "s"),
    ("got any", "s"),
    ("show me", "s"),
    ("what's a good", ""),
)
# Genre pairs shoppers name as one kind of film.
NAMED_PAIRS: tuple[tuple[str, str], ...] = (
    ("Romance", "Comedy"),
    ("Animation", "Musical"),
    ("Sci-Fi", "Thriller"),
    ("Crime", "Drama"),
    ("War", "Drama"),
    ("Action", "Comedy"),
    ("Horror", "Comedy"),
    ("Musical", "Comedy"),
    ("Action", "Adventure"),
    ("Crime", "Thriller"),
    ("Mystery", "Thriller"),
    ("Romance", "Drama"),
    ("Western", "Comedy"),
    ("Sci-Fi", "Action"),
    ("Animation", "Children's"),
)
KID_AUDIENCES = ("my kids", "my 8 year old", "my daughter", "my son", "my niece", "the kids")
ADULT_AUDIENCES = ("my dad", "my wife", "my boyfriend", "my mom", "my husband", "a friend")
NUMBER_WORDS = {5: "five", 8: "eight", 10: "ten", 12: "twelve", 15: "fifteen", 20: "twenty"}
DECADE_WORDS = {1950: "fifties", 1960: "sixties", 1970: "seventies", 1980: "eighties", 1990: "nineties"}
EXCLUDED_WORDS = {  # how a refused genre is named
    "Horror": ("horror", "horror movies", "scary movies"),
    "Romance": ("romance", "romantic stuff"),
    "Musical": ("musicals",),
    "War": ("war movies", "war"),
    "Drama": ("drama", "dramas"),
    "Animation": ("cartoons", "animation"),
    "Documentary": ("documentaries",),
    "Western": ("westerns",),
}


@dataclass(frozen=True)
class Constraints:
    """What a request's words ask for: every genre in ``genres``, none in ``excluded``, at most
    ``price_max``, released within ``years``; ``for_kids``: no horror (what the product
    promises for a child's title, docs/models.md)."""

    genres: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    price_max: float | None = None
    years: tuple[int, int] | None = None
    for_kids: bool = False

    def satisfied_by(self, item: CatalogItem) -> bool:
        if not set(self.genres) <= set(item.genres) or set(self.excluded) & set(item.genres):
            return False
        if self.price_max is not None and item.price_cents > round(self.price_max * 100):
            return False
        if self.years and not (item.year and self.years[0] <= item.year <= self.years[1]):
            return False
        return not (self.for_kids and "Horror" in item.genres)


@dataclass(frozen=True)
class ShopperRequest:
    text: str
    constraints: Constraints


def generate_requests(catalog: Sequence[CatalogItem], n: int = 360, seed: int = 20) -> list[ShopperRequest]:
    """``n`` requests over ``catalog``; the same catalog and ``seed`` give the same requests.
    A third start from a pair people name as one kind of film ("romantic comedy"), drawn among
    the pairs the catalog has; the rest from any title, its genres drawn from its own."""
    rng = random.Random(seed)
    titles = sorted(
        (it for it in catalog if it.genres and set(it.genres) <= set(ADJECTIVE)), key=lambda i: i.id
    )
    pairs = [p for p in NAMED_PAIRS if any(set(p) <= set(it.genres) for it in titles)]
    requests = []
    for _ in range(n):
        pair = rng.choice(pairs) if pairs and rng.random() < 1 / 3 else ()
        item = rng.choice([it for it in titles if set(pair) <= set(it.genres)])
        requests.append(_request(item, pair, rng))
    return requests


def _request(item: CatalogItem, pair: tuple[str, ...], rng: random.Random) -> ShopperRequest:
    """One request that ``item`` satisfies, naming every genre of ``pair`` and maybe more."""
    count = min(len(item.genres), max(len(pair), rng.choices((1, 2, 3), weights=(3, 5, 2))[0]))
    others = [g for g in item.genres if g not in pair]
    genres = (*pair, *rng.sample(others, count - len(pair)))
    excluded = _exclusion(item, rng) if rng.random() < 0.3 else ()
    price_max = _price_cap(item, rng) if rng.random() < 0.35 else None
    years = _decade(item) if rng.random() < 0.3 else None
    kids = "Horror" not in genres and rng.random() < 0.4
    audience = (
        (rng.choice(KID_AUDIENCES) if kids else rng.choice(ADULT_AUDIENCES)) if rng.random() < 0.3 else None
    )
    for_kids = audience in KID_AUDIENCES
    constraints = Constraints(genres, excluded, price_max, years, for_kids)
    return ShopperRequest(_words(constraints, audience, rng), constraints)


def _exclusion(item: CatalogItem, rng: random.Random) -> tuple[str, ...]:
    choices = [g for g in EXCLUDED_WORDS if g not in item.genres]
    return (rng.choice(choices),) if choices else ()


def _price_cap(item: CatalogItem, rng: random.Random) -> float | None:
    """A round amount at or above the title's price, as shoppers name a budget."""
    caps = [c for c in (5, 8, 10, 12, 15, 20, 25) if c >= item.price]
    return float(rng.choice(caps[:3])) if caps else None


def _decade(item: CatalogItem) -> tuple[int, int] | None:
    if not item.year or item.year < 1930:
        return None
    start = item.year // 10 * 10
    return (start, start + 9)


def _words(c: Constraints, audience: str | None, rng: random.Random) -> str:
    """The request in a shopper's words: opener, decade, genres, audience, budget, exclusion."""
    opener, needs = rng.choice(OPENERS)
    plural = needs == "s" or (needs == "a" and rng.random() < 0.3)
    before, after = _decade_words(c.years, rng) if c.years else ("", "")
    phrase = f"{before}{_genre_words(c.genres, plural, rng)}"
    article = ("an " if phrase[0] in "aeiou" else "a ") if needs == "a" and not plural else ""
    parts = [opener, f"{article}{phrase}{after}"]
    if audience:
        parts.append(f"for {audience}")
    if c.price_max is not None:
        parts.append(_price_words(c.price_max, rng))
    if c.excluded:
        parts.append(_exclusion_words(c.excluded[0], rng))
    return " ".join(p for p in parts if p).replace(" , ", ", ").strip()


def _genre_words(genres: Sequence[str], plural: bool, rng: random.Random) -> str:
    """ "romantic comedy", "animated musical comedies", or "comedy and romance"."""
    ordered = sorted(genres, key=HEAD_ORDER.index)
    head, rest = ordered[0], ordered[1:]
    if len(genres) > 1 and rng.random() < 0.25:  # "movie that's comedy and romance"
        words = [rng.choice(ADJECTIVE[g]) for g in ordered]
        return f"{'movies that are' if plural else 'movie that is'} {', '.join(words[:-1])} and {words[-1]}"
    singular, many = rng.choice(NOUN[head])
    modifiers = [rng.choice(ADJECTIVE[g]) for g in reversed(rest)]
    return " ".join([*modifiers, many if plural else singular])


def _decade_words(years: tuple[int, int], rng: random.Random) -> tuple[str, str]:
    """The decade before the genres ("90s ") or after them (" from the 1990s")."""
    start = years[0]
    forms = [f"the {str(start)[2:]}s", f"the {start}s", f"{str(start)[2:]}s"]
    if start in DECADE_WORDS:
        forms.append(f"the {DECADE_WORDS[start]}")
    if rng.random() < 0.3:
        return f"{str(start)[2:]}s ", ""
    return "", f" from {rng.choice(forms)}"


def _price_words(cap: float, rng: random.Random) -> str:
    amount = int(cap)
    forms = [f"${amount}", f"{amount} dollars", f"{amount} bucks"]
    if amount in NUMBER_WORDS:
        forms.append(f"{NUMBER_WORDS[amount]} dollars")
    return f"{rng.choice(('under', 'below', 'less than', 'for at most'))} {rng.choice(forms)}"


def _exclusion_words(genre: str, rng: random.Random) -> str:
    word = rng.choice(EXCLUDED_WORDS[genre])
    said = rng.choice((f"but no {word}", f"nothing with {word}", f"no {word} please", f"without {word}"))
    return f", {said}" if rng.random() < 0.5 else said
