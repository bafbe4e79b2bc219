"""Several genres in one request mean all of them (issue 20): the titles with every genre come
first, close matches fill in only when fewer than k have them all, and the reply says so.

The ranking rules on a synthetic catalog whose right answers are known; the assistant, the
actions and the NLU on the demo store and the served models."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as acts
from actions import replies
from smartmkt.assistant import RecommendationReply, ShopAssistant, recommending, slot_values, stated_request
from smartmkt.catalog import GENRES, CatalogItem
from smartmkt.recommend.collaborative import CollaborativeConfig
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.recommender import Recommender
from smartmkt.recommend.sequential import SequenceConfig


def _catalog() -> list[CatalogItem]:
    """20 westerns (1-20), 20 comedies (21-40), 2 western comedies (41, 42: $4, $45), a western
    musical comedy from 1955 (43), a horror western comedy (44) and 3 musicals (45-47)."""
    items = [CatalogItem(i, f"Dusty Trail {i}", 1950 + i, ("Western",), i * 100) for i in range(1, 21)]
    items += [CatalogItem(i, f"Laugh Riot {i}", 1970 + i, ("Comedy",), i * 100) for i in range(21, 41)]
    items += [
        CatalogItem(41, "Saddle Sores", 1990, ("Comedy", "Western"), 400),
        CatalogItem(42, "Blazing Spurs", 1974, ("Comedy", "Western"), 4500),
        CatalogItem(43, "Singing Sheriff", 1955, ("Comedy", "Musical", "Western"), 900),
        CatalogItem(44, "Ghost Town Giggles", 1980, ("Comedy", "Horror", "Western"), 300),
    ]
    items += [CatalogItem(i, f"Show Tune {i}", 1960, ("Musical",), 500) for i in range(45, 48)]
    return items


@pytest.fixture(scope="module")
def model() -> Recommender:
    rng = np.random.default_rng(0)
    histories = []
    for n in range(120):
        pool = np.arange(1, 21) if n % 2 == 0 else np.arange(21, 41)
        histories.append([int(x) for x in rng.choice(pool, size=8, replace=False)])
    return Recommender.fit(
        _catalog(),
        histories,
        CollaborativeConfig(dim=16, epochs=30),
        sequence_config=SequenceConfig(epochs=3),
    )


def ids(recs: list[Any]) -> list[int]:
    return [r.product_id for r in recs]


def test_titles_with_every_genre_come_first_then_close_ones(model: Recommender) -> None:
    western_fan = [1, 2, 3]
    recs = model.recommend(western_fan, Preferences(genres=("Western", "Comedy")), k=6)
    assert set(ids(recs[:4])) == {41, 42, 43, 44}  # every title with both, whatever the history
    assert all(r.matches_all for r in recs[:4])
    assert not any(r.matches_all for r in recs[4:]) and len(recs) == 6
    catalog = {it.id: it for it in _catalog()}
    assert all({"Western", "Comedy"} & set(catalog[r.product_id].genres) for r in recs[4:])


def test_no_close_matches_when_enough_titles_have_every_genre(model: Recommender) -> None:
    recs = model.recommend([21, 22], Preferences(genres=("Western", "Comedy")), k=3)
    assert len(recs) == 3 and all(r.matches_all for r in recs)
    assert set(ids(recs)) <= {41, 42, 43, 44}
    one_genre = model.recommend([], Preferences(genres=("Western",)), k=30)
    assert all(r.matches_all for r in one_genre) and len(one_genre) == 24  # nothing to relax


def test_close_matches_with_more_of_the_genres_come_first(model: Recommender) -> None:
    recs = model.recommend([], Preferences(genres=("Western", "Comedy", "Musical")), k=10)
    assert recs[0].product_id == 43 and recs[0].matches_all
    assert set(ids(recs[1:4])) == {41, 42, 44}  # two of the three genres
    assert not any(r.matches_all for r in recs[1:])


@pytest.mark.parametrize(
    ("prefs", "allowed"),
    [
        (Preferences(genres=("Western", "Comedy"), price_max=10.0), {41, 43, 44}),
        (Preferences(genres=("Western", "Comedy"), year_range=(1970, 1979)), {42}),
        (Preferences(genres=("Western", "Comedy"), excluded_genres=("Musical",)), {41, 42, 44}),
        (Preferences(genres=("Western", "Comedy"), recipient="my kids"), {41, 42, 43}),
        (
            Preferences(
                genres=("Western", "Comedy"),
                price_max=10.0,
                recipient="my kids",
                excluded_genres=("Musical",),
            ),
            {41},
        ),
    ],
)
def test_genres_combine_with_price_decade_audience_and_exclusions(
    model: Recommender, prefs: Preferences, allowed: set[int]
) -> None:
    recs = model.recommend([], prefs, k=40)
    exact = [r.product_id for r in recs if r.matches_all]
    assert set(exact) == allowed and ids(recs[: len(exact)]) == exact  # all of them, first
    catalog = {it.id: it for it in _catalog()}
    for r in recs[len(exact) :]:  # close ones keep every other constraint
        item = catalog[r.product_id]
        assert prefs.price_max is None or item.price <= prefs.price_max
        assert prefs.year_range is None or prefs.year_range[0] <= (item.year or 0) <= prefs.year_range[1]
        assert not set(prefs.effective_excluded) & set(item.genres)


def test_the_header_says_what_was_understood() -> None:
    assert Preferences(genres=("Romance", "Comedy")).describe() == "Romance and Comedy"
    assert (
        Preferences(genres=("Animation", "Musical", "Comedy")).describe() == "Animation, Musical and Comedy"
    )
    every = Preferences.from_values(["romantic comedy"], ["horror", "war"], "$10", "the 90s", "my kids")
    assert every.genres == ("Romance", "Comedy")
    assert every.describe() == "Romance and Comedy, 1990-1999, under $10.00, for my kids, no Horror or War"


def _reply(genres: tuple[str, ...], exact: int, close: int) -> RecommendationReply:
    products = [
        CatalogItem(i, f"Title {i}", 1990, genres[: 1 if i > exact else None], 500)
        for i in range(1, exact + close + 1)
    ]
    return RecommendationReply(products, None, Preferences(genres=genres), True, close_matches=close)


def test_the_reply_says_how_many_titles_had_everything_and_lists_close_ones_apart() -> None:
    text = replies.recommendations_text(_reply(("Romance", "Comedy"), 2, 3))
    intro, exact, close_intro, close = text.split("\n\n")
    assert intro == "I found 2 romantic comedies (Romance and Comedy); here are close ones too."
    assert exact.splitlines()[0].startswith("1. Title 1") and len(exact.splitlines()) == 2
    assert close_intro == "Close ones, with some of those genres:"
    assert [line[:2] for line in close.splitlines()] == ["3.", "4.", "5."]  # numbered on: "the third one"
    none = replies.recommendations_text(_reply(("Animation", "Musical"), 0, 5))
    assert none.startswith("I found no animated musicals (Animation and Musical); here are close ones too.")
    full = replies.recommendations_text(_reply(("Romance", "Comedy"), 5, 0))
    assert full.startswith("Here are my picks for you (Romance and Comedy):") and "Close ones" not in full


@pytest.mark.parametrize(
    ("genres", "count", "said"),
    [
        (("Romance", "Comedy"), 1, "1 romantic comedy"),
        (("Sci-Fi", "Thriller"), 3, "3 sci-fi thrillers"),
        (("Action", "Sci-Fi"), 2, "2 action sci-fi titles"),
        (("Animation", "Musical", "Comedy"), 0, "no animated musical comedies"),
    ],
)
def test_titles_of_names_genre_combinations(genres: tuple[str, ...], count: int, said: str) -> None:
    assert replies.titles_of(genres, count) == said


# --- the product: the demo store, the served recommender and NLU ----------------------------------
@pytest.fixture
def assistant(demo_engine, served_recommender, monkeypatch) -> ShopAssistant:  # type: ignore[no-untyped-def]
    shop = ShopAssistant(demo_engine, served_recommender)
    monkeypatch.setattr(acts, "get_assistant", lambda: shop)
    return shop


def recommend_said(entities: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """action_recommend's messages for a first message, its slots filled as Rasa fills them."""
    tracker = Tracker(
        sender_id="7",
        slots={"offer_pending": False, **slot_values(entities)},
        latest_message={
            "text": text,
            "intent": {"name": "ask_recommendation", "confidence": 0.99},
            "entities": entities,
            "metadata": {"customer": {"ref": "7", "verified": True}},
        },
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )
    dispatcher = CollectingDispatcher()
    acts.ActionRecommend().run(dispatcher, tracker, {})
    return dispatcher.messages


def test_customer_7_asking_for_a_romantic_comedy_gets_romantic_comedies(assistant: ShopAssistant) -> None:
    entities = [
        {"entity": "category", "value": "romantic", "start": 12, "end": 20},
        {"entity": "category", "value": "comedy", "start": 21, "end": 27},
    ]
    messages = recommend_said(entities, "recommend a romantic comedy")
    assert messages[0]["text"].startswith("Here are my picks for you (Romance and Comedy):")
    products = messages[0]["custom"]["products"]
    assert len(products) == 5
    assert all({"Romance", "Comedy"} <= set(p["genres"]) for p in products)


def test_a_rare_combination_fills_with_close_matches_and_says_so(assistant: ShopAssistant) -> None:
    catalog = assistant.recommender.catalog()
    bought = set(assistant.repo.history("7").product_ids)
    prefs = Preferences(genres=("Animation", "Musical"), price_max=10.0)
    every = [it.id for it in catalog if {"Animation", "Musical"} <= set(it.genres) and it.price <= 10.0]
    every = [i for i in every if i not in bought]
    assert 0 < len(every) < 5  # a combination the catalog has too few of
    reply = assistant.recommend("7", prefs, with_offer=False)
    assert [p.id for p in reply.exact] and {p.id for p in reply.exact} == set(every)
    assert reply.close_matches == 5 - len(every) and len(reply.products) == 5
    for p in reply.close:
        assert {"Animation", "Musical"} & set(p.genres) and p.price <= 10.0
    text = replies.recommendations_text(reply)
    assert text.startswith(f"I found {replies.titles_of(prefs.genres, len(every))} (Animation and Musical")


@pytest.mark.parametrize(
    ("said", "genres"),
    [
        ("recommend a romantic comedy", ("Romance", "Comedy")),
        ("an animated musical", ("Animation", "Musical")),
        ("any sci-fi thrillers from the 80s under $10", ("Sci-Fi", "Thriller")),
    ],
)
def test_the_nlu_reads_a_compound_genre_name_as_each_genre(
    served_parser: Any, said: str, genres: tuple[str, ...]
) -> None:
    assert stated_request(served_parser.parse(said)).preferences.genres == genres


def test_a_romantic_comedy_request_is_answered_with_titles(served_parser: Any) -> None:
    parse = served_parser.parse("recommend a romantic comedy")
    assert recommending(parse), parse["intent"]  # the conversation answers with titles
    assert stated_request(parse).text is None  # the genres say it all: the history ranks them


def test_every_genre_the_nlu_names_is_a_catalog_genre(served_parser: Any) -> None:
    prefs = stated_request(served_parser.parse("a crime drama for my dad, nothing with horror")).preferences
    assert prefs.genres == ("Crime", "Drama") and prefs.excluded_genres == ("Horror",)
    assert set(prefs.genres) <= set(GENRES) and prefs.recipient == "my dad"
