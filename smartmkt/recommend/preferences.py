"""What a customer asked for, in catalog terms. Framework-free: built by actions, CLI or API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from smartmkt.catalog import (
    is_kid_recipient,
    normalize_genres,
    parse_price,
    parse_year_range,
)


def join_and(words: Sequence[str], conjunction: str = "and") -> str:
    """ "Romance", "Romance and Comedy", "Animation, Musical and Comedy"."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


@dataclass(frozen=True)
class Preferences:
    """Hard filters (genres, excluded genres, price ceiling, years) and soft hints (recipient).

    ``genres`` are all wanted at once: "a romantic comedy" is Romance and Comedy, and the
    recommender ranks the titles with every one of them first."""

    genres: tuple[str, ...] = ()
    excluded_genres: tuple[str, ...] = ()
    price_max: float | None = None
    year_range: tuple[int, int] | None = None
    recipient: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def for_kids(self) -> bool:
        return bool(self.recipient and is_kid_recipient(self.recipient))

    @property
    def effective_excluded(self) -> tuple[str, ...]:
        """Excluded genres, plus Horror when the titles are meant for children."""
        excluded = list(self.excluded_genres)
        if self.for_kids and "Horror" not in excluded and "Horror" not in self.genres:
            excluded.append("Horror")
        return tuple(excluded)

    def describe(self) -> str:
        """A short human phrase for replies: "Romance and Comedy, under $10.00, no Horror".
        Several genres are joined with "and": a title must have every one of them
        (``Recommender.recommend``), so the reply says what the picks are."""
        parts: list[str] = []
        if self.genres:
            parts.append(join_and(self.genres))
        if self.year_range:
            first, last = self.year_range
            parts.append(str(first) if first == last else f"{first}-{last}")
        if self.price_max is not None:
            parts.append(f"under ${self.price_max:.2f}")
        if self.recipient:
            parts.append(f"for {self.recipient}")
        if self.excluded_genres:
            parts.append("no " + join_and(self.excluded_genres, "or"))
        return ", ".join(parts)

    @classmethod
    def from_values(
        cls,
        categories: list[str] | str | None = None,
        excluded: list[str] | str | None = None,
        price: str | float | None = None,
        year: str | None = None,
        recipient: str | None = None,
    ) -> Preferences:
        """From raw slot values as customers said them ("sci-fi", "$10", "the 90s").

        ``categories`` and ``excluded`` are genres asked for and refused (one value or a list,
        in any form ``catalog.normalize_genres`` knows); ``price`` a ceiling ("under $10", 10);
        ``year`` a year or range ("the 90s", "1995"); ``recipient`` who the title is for
        ("my kids" makes it a children's title)."""
        genre_values = [categories] if isinstance(categories, str) else list(categories or [])
        excluded_values = [excluded] if isinstance(excluded, str) else list(excluded or [])
        genres = normalize_genres(genre_values)
        excluded_genres = [g for g in normalize_genres(excluded_values) if g not in genres]
        price_max = price if isinstance(price, float | int) else (parse_price(price) if price else None)
        return cls(
            genres=tuple(genres),
            excluded_genres=tuple(excluded_genres),
            price_max=float(price_max) if price_max else None,
            year_range=parse_year_range(year) if year else None,
            recipient=recipient.strip() if recipient and recipient.strip() else None,
        )
