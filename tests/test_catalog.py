import pytest

from smartmkt.catalog import (
    display_title,
    genres_in,
    is_kid_recipient,
    normalize_genre,
    normalize_genres,
    parse_price,
    parse_year_range,
    title_key,
)


@pytest.mark.parametrize(
    ("said", "genre"),
    [
        ("sci-fi", "Sci-Fi"),
        ("science fiction", "Sci-Fi"),
        ("westerns", "Western"),
        ("Comedies", "Comedy"),
        ("comdy", "Comedy"),
        ("kids movies", "Children's"),
        ("film noir", "Film-Noir"),
        ("horror films", "Horror"),
        ("animated", "Animation"),
        ("documentaries", "Documentary"),
        ("thrillers", "Thriller"),
    ],
)
def test_genres_normalize_to_catalog_values(said: str, genre: str) -> None:
    assert normalize_genre(said) == genre


@pytest.mark.parametrize("said", ["pizza", "the", "", "quantum chromodynamics"])
def test_unknown_words_are_not_genres(said: str) -> None:
    assert normalize_genre(said) is None


@pytest.mark.parametrize(
    ("said", "amount"),
    [
        ("$10", 10.0),
        ("15 dollars", 15.0),
        ("7.50", 7.5),
        ("twenty bucks", 20.0),
        ("10,50 EUR", 10.5),
        ("nothing", None),
    ],
)
def test_prices(said: str, amount: float | None) -> None:
    assert parse_price(said) == amount


@pytest.mark.parametrize(
    ("said", "years"),
    [
        ("1997", (1997, 1997)),
        ("the 90s", (1990, 1999)),
        ("'80s", (1980, 1989)),
        ("1970s", (1970, 1979)),
        ("the eighties", (1980, 1989)),
        ("recently", None),
    ],
)
def test_year_ranges(said: str, years: tuple[int, int] | None) -> None:
    assert parse_year_range(said) == years


def test_titles_read_naturally_and_match_loosely() -> None:
    assert display_title("Usual Suspects, The") == "The Usual Suspects"
    assert display_title("Enfer, L'") == "L'Enfer"
    assert display_title("Toy Story") == "Toy Story"
    assert title_key("The Usual Suspects (1995)") == title_key("usual suspects")


def test_kid_recipients() -> None:
    assert is_kid_recipient("my kids")
    assert is_kid_recipient("my 8 year old")
    assert not is_kid_recipient("my dad")


@pytest.mark.parametrize(
    ("said", "genres"),
    [
        ("romantic comedy", ["Romance", "Comedy"]),
        ("romantic comedies", ["Romance", "Comedy"]),
        ("animated musical", ["Animation", "Musical"]),
        ("sci-fi thriller", ["Sci-Fi", "Thriller"]),
        ("science fiction war movies", ["Sci-Fi", "War"]),
        ("romcom", ["Romance", "Comedy"]),
        ("rom-com", ["Romance", "Comedy"]),
        ("comedy and romance", ["Comedy", "Romance"]),
        ("crime dramas", ["Crime", "Drama"]),
        ("romantic comdy", ["Romance", "Comedy"]),
        ("film noir", ["Film-Noir"]),  # one genre of two words stays one
        ("science fiction", ["Sci-Fi"]),
        ("love stories", ["Romance"]),
        ("great war movies", ["War"]),  # "great" is no genre, though close to none
        ("pizza", []),
    ],
)
def test_a_compound_genre_name_means_each_of_its_genres(said: str, genres: list[str]) -> None:
    assert genres_in(said) == genres


def test_normalize_genres_spreads_compound_names_without_repeats() -> None:
    assert normalize_genres(["romantic comedy", "comedy", "animated"]) == ["Romance", "Comedy", "Animation"]
