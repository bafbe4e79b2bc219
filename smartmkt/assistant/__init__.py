"""The assistant's public API: all that the Rasa actions (actions/) may use of smartmkt.

`ShopAssistant` (shop.py) answers everything a conversation can ask; `choice.py` decides which
item on the table a customer means. The value types and helpers a conversation needs are
re-exported here, so actions import nothing else (checked by tests/test_layers.py).
"""

from smartmkt.assistant.choice import pick, resolve_choice
from smartmkt.assistant.request import (
    ENTITY_SLOT,
    PREFERENCE_SLOTS,
    StatedRequest,
    preferences_from_slots,
    recommending,
    slot_values,
    stated_request,
    words_to_search,
)
from smartmkt.assistant.shop import (
    Checkout,
    Greeting,
    RecommendationReply,
    ShopAssistant,
    WarmUpError,
    served_assistant,
    served_versions,
)
from smartmkt.catalog import CatalogItem, money
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.query_text import content_text
from smartmkt.security.identity import guest_ref
from smartmkt.store.repository import OfferView, OrderView

__all__ = [
    "ENTITY_SLOT",
    "PREFERENCE_SLOTS",
    "CatalogItem",
    "Checkout",
    "Greeting",
    "OfferView",
    "OrderView",
    "Preferences",
    "RecommendationReply",
    "ShopAssistant",
    "StatedRequest",
    "WarmUpError",
    "content_text",
    "guest_ref",
    "money",
    "pick",
    "preferences_from_slots",
    "recommending",
    "resolve_choice",
    "served_assistant",
    "served_versions",
    "slot_values",
    "stated_request",
    "words_to_search",
]
