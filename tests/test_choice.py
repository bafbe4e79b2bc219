"""smartmkt.assistant.choice: which item on the table a customer means, and when the bot must ask instead.

An order must never come from a guess: these tests pin what resolves (ordinals, marked numbers,
a title or a distinctive part of one, a button's payload) and what is left to a question."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smartmkt.assistant.choice import Choice, Pick, pick, position, resolve_choice

OFFERS = ["The Crow", "Home Alone", "Star Trek: First Contact"]


@pytest.mark.parametrize(
    ("text", "index"),
    [
        ("the second one", 1),
        ("I'll take the first one", 0),
        ("the 2nd", 1),
        ("3rd one please", 2),
        ("the last one", 2),
        ("#2", 1),
        ("# 3", 2),
        ("number two", 1),
        ("number 1", 0),
        ("option 3", 2),
        ("no. 2", 1),
        ("2", 1),
        ("two please", 1),
        ("the third", 2),
        ("yes, the second one", 1),
        ("the Home Alone one", 1),
        ("home alone", 1),
        ("I'll take home alone please", 1),
        ("the crow", 0),
        ("the crow one", 0),
        ("give me the trek one", 2),
        ("First Contact", 2),  # a title's own "first" is no position
        ("I'll take First Contact", 2),
        ("the second one, Home Alone", 1),  # title and position agree
    ],
)
def test_resolves(text: str, index: int) -> None:
    assert resolve_choice(text, OFFERS) == Choice(index, True)


@pytest.mark.parametrize(
    "text",
    [
        "the fourth one",  # one past the end
        "the fifth one",
        "number 7",
        "the first and the second",  # two positions
        "second to last",
        "the first one, Home Alone",  # title and position disagree
        "the cheaper one",  # a pointer this module cannot follow
        "the one from 1995",
    ],
)
def test_points_at_the_table_but_not_at_one_item(text: str) -> None:
    assert resolve_choice(text, OFFERS) == Choice(None, True)


@pytest.mark.parametrize(
    "text",
    ["yes", "yes please", "buy it", "i'll take it", "order it", "sure", "buy 2 copies", "that one"],
)
def test_words_that_choose_nothing(text: str) -> None:
    assert resolve_choice(text, OFFERS) == Choice()


def test_a_word_shared_by_two_titles_chooses_neither() -> None:
    titles = ["Star Wars", "Star Trek: Generations", "Babe"]
    assert resolve_choice("the star one", titles) == Choice(None, True)
    assert resolve_choice("star wars", titles) == Choice(0, True)
    assert resolve_choice("the generations one", titles) == Choice(1, True)
    # all of a title's words, though each is in another title too
    assert resolve_choice("star wars", ["Star Wars", "Star Trek", "Wars of the Roses"]) == Choice(0, True)


def test_a_title_made_of_numbers_or_positions_still_resolves() -> None:
    titles = ["Seven (Se7en)", "Babe", "The Crow"]
    assert resolve_choice("the seven one", titles) == Choice(0, True)
    assert resolve_choice("the top one", titles) == Choice(0, True)
    # a title named elsewhere lends no position: "buy The Last Emperor" is not "the last one"
    assert pick("buy the last emperor", titles, ["the last emperor"], pending=0) == Pick()
    assert pick("buy top gun", titles, ["top gun"]) == Pick()


def test_named_values_from_entities_and_buttons() -> None:
    payload = '/purchase{"product": "Home Alone"}'
    assert resolve_choice(payload, OFFERS, ["Home Alone"]) == Choice(1, True)
    assert resolve_choice("the home alon one", OFFERS, ["home alon"]) == Choice(1, True)  # a typo
    assert resolve_choice("buy the crow", OFFERS, ["crow"]) == Choice(0, True)
    assert resolve_choice("buy fargo", OFFERS, ["fargo"]) == Choice()  # not on the table


def test_empty_table_resolves_nothing() -> None:
    assert resolve_choice("the second one", []) == Choice()
    assert pick("the second one", []) == Pick()


@pytest.mark.parametrize(
    ("text", "titles", "named", "pending", "expected"),
    [
        ("yes", OFFERS, (), None, Pick(ask=True)),  # three offers, a bare yes: ask which
        ("buy it", OFFERS, (), None, Pick(ask=True)),
        ("yes", OFFERS, (), 0, Pick(0)),  # one pending offer: yes buys it
        ("yes", ["Fargo"], (), None, Pick(0)),  # the only item on the table
        ("the second one", OFFERS, (), 0, Pick(1)),  # the words beat the pending offer
        ("the fourth one", OFFERS, (), 0, Pick(ask=True)),  # pointing past the end: ask
        ("buy fargo", OFFERS, ("fargo",), 0, Pick()),  # named elsewhere: the catalog decides
        ("yes", [], (), None, Pick()),  # nothing on the table: the caller asks for a title
    ],
)
def test_pick(
    text: str, titles: list[str], named: tuple[str, ...], pending: int | None, expected: Pick
) -> None:
    assert pick(text, titles, named, pending) == expected


TITLES = st.lists(
    st.sampled_from(
        [
            "Toy Story",
            "GoldenEye",
            "Four Rooms",
            "Get Shorty",
            "Copycat",
            "Twelve Monkeys",
            "Babe",
            "Dead Man Walking",
            "Richard III",
            "Seven (Se7en)",
            "The Usual Suspects",
            "Mighty Aphrodite",
            "The Postman",
            "Mr. Holland's Opus",
            "French Twist",
            "From Dusk Till Dawn",
            "The White Balloon",
            "Antonia's Line",
            "Angels and Insects",
            "Muppet Treasure Island",
        ]
    ),
    min_size=1,
    max_size=5,
    unique=True,
)
ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth"]


@given(titles=TITLES, data=st.data())
def test_any_ordinal_within_the_table_resolves(titles: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(titles) - 1))
    phrasing = data.draw(st.sampled_from(["the {} one", "I'll take the {} one", "{} please", "the {}"]))
    assert resolve_choice(phrasing.format(ORDINAL_WORDS[index]), titles) == Choice(index, True)
    assert position(f"#{index + 1}", len(titles)) == Choice(index, True)
    assert (
        position(f"the {ORDINAL_WORDS[len(titles)] if len(titles) < 5 else 'sixth'} one", len(titles)).index
        is None
    )


@given(titles=TITLES, data=st.data())
def test_a_buttons_title_always_resolves_to_itself(titles: list[str], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(titles) - 1))
    payload = f'/purchase{{"product": "{titles[index]}"}}'
    assert resolve_choice(payload, titles, [titles[index]]) == Choice(index, True)
    assert resolve_choice(f"the {titles[index]} one", titles) == Choice(index, True)


@given(
    titles=TITLES.filter(lambda t: len(t) > 1),
    text=st.sampled_from(["yes", "yes please", "buy it", "i'll take it", "ok", "order it", "sure, get it"]),
)
def test_a_bare_yes_never_picks_among_several(titles: list[str], text: str) -> None:
    assert pick(text, titles) == Pick(ask=True)
