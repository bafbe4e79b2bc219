"""What one parsed message asks of the recommender: the NLU's entities as the conversation's
preference slots, then ``Preferences`` and the words left to search by meaning.

The Rasa actions (actions/) and ``smartmkt bench preferences`` both read a message through
here, so the bench measures the path a conversation takes and not a copy of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.query_text import content_text

PREFERENCE_SLOTS = ("category", "excluded_categories", "price", "year", "recipient")
LIST_SLOTS = frozenset({"category", "excluded_categories"})
# (entity, role) -> the slot it fills (bot/domain.yml's from_entity mappings)
ENTITY_SLOT: dict[tuple[Any, Any], str] = {
    ("category", None): "category",
    ("category", "exclude"): "excluded_categories",
    ("price", None): "price",
    ("year", None): "year",
    ("recipient", None): "recipient",
}
# The intents whose turn ends in recommendations (bot/data/rules/recommendations.yml);
# search_product does too when it names no title (actions.ActionSearchProduct).
RECOMMENDING_INTENTS = frozenset({"ask_recommendation", "inform_preference", "search_product"})


def slot_values(entities: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The preference slots ``entities`` fill, as Rasa's from_entity mappings fill them: a list
    slot takes every value in order, a text slot the last one."""
    values: dict[str, Any] = {}
    for entity in entities:
        slot = ENTITY_SLOT.get((entity.get("entity"), entity.get("role")))
        value = entity.get("value")
        if slot is None or value is None:
            continue
        if slot in LIST_SLOTS:
            values.setdefault(slot, []).append(str(value))
        else:
            values[slot] = str(value)
    return values


def preferences_from_slots(values: Mapping[str, Any]) -> Preferences:
    """``Preferences`` from the preference slots' values (missing slots: nothing stated)."""
    return Preferences.from_values(
        values.get("category"),
        values.get("excluded_categories"),
        values.get("price"),
        values.get("year"),
        values.get("recipient"),
    )


def words_to_search(text: str, entities: Iterable[Mapping[str, Any]]) -> str | None:
    """What is left of ``text`` once its entities and filler words are gone (None: nothing)."""
    spans = [(int(e.get("start", 0)), int(e.get("end", 0))) for e in entities]
    return content_text(text, spans) or None


@dataclass(frozen=True)
class StatedRequest:
    """A fresh recommendation request read from one parsed message."""

    preferences: Preferences
    text: str | None
    product: str | None  # a title named ("something like Toy Story"): more like it


def recommending(parse: Mapping[str, Any]) -> bool:
    """Whether a conversation answers this parsed message with recommendations."""
    intent = str((parse.get("intent") or {}).get("name") or "")
    named = any(e.get("entity") == "product" for e in parse.get("entities") or [])
    if intent == "search_product":
        return not named
    return intent in RECOMMENDING_INTENTS


def stated_request(parse: Mapping[str, Any]) -> StatedRequest:
    """The request one parse result (``POST /model/parse``'s JSON) states, as the first message
    of a conversation: no earlier slots to refine."""
    entities = list(parse.get("entities") or [])
    product = next((str(e["value"]) for e in entities if e.get("entity") == "product"), None)
    return StatedRequest(
        preferences_from_slots(slot_values(entities)),
        words_to_search(str(parse.get("text") or ""), entities),
        product,
    )
