"""Rasa SDK custom actions. Thin by design: read the tracker, call smartmkt, format, reply.

All business logic (which titles, which offer, what is stored) lives in smartmkt.assistant;
replies are built in actions.replies; the assistant comes from actions.services.
"""

from __future__ import annotations

import logging
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import AllSlotsReset, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import replies
from actions.services import get_assistant
from smartmkt.recommend.preferences import Preferences
from smartmkt.recommend.query_text import content_text
from smartmkt.recommend.text_encoder import product_text
from smartmkt.security.identity import guest_ref
from smartmkt.store.repository import ProductView

log = logging.getLogger(__name__)

PREFERENCE_SLOTS = ("category", "excluded_categories", "price", "year", "recipient")
ENTITY_SLOT: dict[tuple[Any, Any], str] = {
    ("category", None): "category",
    ("category", "exclude"): "excluded_categories",
    ("price", None): "price",
    ("year", None): "year",
    ("recipient", None): "recipient",
}


def customer_ref(tracker: Tracker) -> str:
    """The customer this message speaks for, as Rasa verified it (bot/customer_identity.py puts
    ``metadata.customer`` on every message: the customer token's subject, or ``guest:<sender
    id>``). Never the raw sender id: without that metadata the customer is a guest."""
    customer = (tracker.latest_message.get("metadata") or {}).get("customer")
    if isinstance(customer, dict) and isinstance(customer.get("ref"), str) and customer["ref"]:
        return str(customer["ref"])
    return guest_ref(str(tracker.sender_id))


def channel(tracker: Tracker) -> str:
    metadata = tracker.latest_message.get("metadata") or {}
    return "voice" if metadata.get("channel") == "voice" else "text"


def latest_entities(tracker: Tracker) -> list[dict[str, Any]]:
    return list(tracker.latest_message.get("entities") or [])


def preferences(tracker: Tracker) -> tuple[Preferences, list[EventType]]:
    """Preferences for this turn, and the slot events that keep the tracker in step.

    A fresh request ("recommend a comedy") starts from what this message says; a refinement
    ("nothing with horror", "under $10") adds to what was said before.
    """
    fresh = tracker.latest_message.get("intent", {}).get("name") == "ask_recommendation"
    values: dict[str, Any] = {slot: tracker.get_slot(slot) for slot in PREFERENCE_SLOTS}
    events: list[EventType] = []
    if fresh:
        said = {ENTITY_SLOT.get((e.get("entity"), e.get("role"))) for e in latest_entities(tracker)}
        for slot in PREFERENCE_SLOTS:
            if slot not in said and values[slot]:
                values[slot] = None
                events.append(SlotSet(slot, None))
    prefs = Preferences.from_values(
        values["category"],
        values["excluded_categories"],
        values["price"],
        values["year"],
        values["recipient"],
    )
    return prefs, events


def query_text(tracker: Tracker) -> str | None:
    text = tracker.latest_message.get("text") or ""
    spans = [(int(e.get("start", 0)), int(e.get("end", 0))) for e in latest_entities(tracker)]
    return content_text(text, spans) or None


def liked_product(tracker: Tracker) -> ProductView | None:
    """The title the customer wants more like: "something like Toy Story", or the web chat's
    "show more like this" button ('/ask_recommendation{"product": "Toy Story"}')."""
    title = next((e["value"] for e in latest_entities(tracker) if e.get("entity") == "product"), None)
    return get_assistant().find_product(str(title)) if title else None


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        greeting = get_assistant().greeting(customer_ref(tracker))
        if greeting.known:
            dispatcher.utter_message(
                text=f"Welcome back! Your last pick was {greeting.last_title}. "
                "Want a recommendation based on what you like?"
            )
        else:
            dispatcher.utter_message(
                text="Hi! I'm smartmkt, the shop assistant. Tell me what you're in the mood for "
                "(a genre, a budget, a decade, or who it's for) and I'll find a movie."
            )
        return []


class ValidateRecommendationForm(FormValidationAction):
    """Ask a new customer with nothing stated for a genre; never make a regular wait.

    The form holds all five preference slots (bot/domain.yml); they fill from entities in any
    message, so the only question ever asked is the genre, and only when nothing is known.
    """

    def name(self) -> str:
        return "validate_recommendation_form"

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[str]:
        stated = any(
            ENTITY_SLOT.get((e.get("entity"), e.get("role"))) or e.get("entity") == "product"
            for e in latest_entities(tracker)
        )
        if stated or tracker.get_slot("category") or query_text(tracker):
            return []
        if not get_assistant().repo.history(customer_ref(tracker)).is_new:
            return []
        return ["category"]

    async def extract_category(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """Whatever the customer answers to the genre question ends the question."""
        if tracker.get_slot("requested_slot") != "category" or tracker.get_slot("category"):
            return {}
        if any(e.get("entity") == "category" and not e.get("role") for e in latest_entities(tracker)):
            return {}
        return {"category": ["any"]}


class ActionRecommend(Action):
    def name(self) -> str:
        return "action_recommend"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        prefs, events = preferences(tracker)
        liked = liked_product(tracker)  # more like this title: it is the query, and not a pick
        reply = get_assistant().recommend(
            customer_ref(tracker),
            prefs,
            text=product_text(liked.title, liked.year, liked.genres) if liked else query_text(tracker),
            channel=channel(tracker),
            exclude_ids=(liked.id,) if liked else (),
        )
        if not reply.products:
            dispatcher.utter_message(text=replies.nothing_found_text(reply))
            return [*events, SlotSet("offer_pending", False)]
        dispatcher.utter_message(
            text=replies.recommendations_text(reply), json_message=replies.recommendations_payload(reply)
        )
        return [
            *events,
            SlotSet("shown_products", [str(p.id) for p in reply.products]),
            SlotSet("offer_id", str(reply.offer.id) if reply.offer else None),
            SlotSet("offer_pending", reply.offer is not None),
        ]


class ActionSearchProduct(Action):
    def name(self) -> str:
        return "action_search_product"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        title = next((e["value"] for e in latest_entities(tracker) if e.get("entity") == "product"), None)
        if title is None:
            return ActionRecommend().run(dispatcher, tracker, domain)
        product = get_assistant().find_product(str(title))
        if product is None:
            dispatcher.utter_message(
                text=f'I couldn\'t find a title called "{title}" in our catalog. '
                "Check the spelling, or tell me a genre and I'll suggest something."
            )
            return []
        dispatcher.utter_message(
            text=f"Yes, we have it: {replies.product_line(product)}.",
            json_message={"type": "product", "product": replies.product_payload(product)},
        )
        return [SlotSet("shown_products", [str(product.id)])]


def product_in_focus(tracker: Tracker) -> tuple[int | None, str | None]:
    """(product id, unmatched title): the title named now, else the offer, else the last shown."""
    title = next((e["value"] for e in latest_entities(tracker) if e.get("entity") == "product"), None)
    assistant = get_assistant()
    if title:
        product = assistant.find_product(str(title))
        return (product.id, None) if product else (None, str(title))
    if tracker.get_slot("offer_pending") and tracker.get_slot("offer_id"):
        for offer in assistant.open_offers(customer_ref(tracker)):
            if str(offer.id) == str(tracker.get_slot("offer_id")):
                return offer.product.id, None
    shown = tracker.get_slot("shown_products") or []
    return (int(shown[0]), None) if shown else (None, None)


def product_or_ask(dispatcher: CollectingDispatcher, tracker: Tracker, question: str) -> int | None:
    """The product in focus, or None after telling the customer what is missing."""
    product_id, unknown = product_in_focus(tracker)
    if product_id is None:
        dispatcher.utter_message(
            text=f'I couldn\'t find "{unknown}" in our catalog.' if unknown else question
        )
    return product_id


class ActionPrice(Action):
    def name(self) -> str:
        return "action_price"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        product_id = product_or_ask(
            dispatcher, tracker, 'Which title? Tell me its name, e.g. "how much is Toy Story?"'
        )
        if product_id is None:
            return []
        assistant = get_assistant()
        product = assistant.repo.product(product_id)
        if product is None:
            dispatcher.utter_message(text="Sorry, that title is no longer in the catalog.")
            return []
        offer = next(
            (o for o in assistant.open_offers(customer_ref(tracker)) if o.product.id == product_id), None
        )
        dispatcher.utter_message(
            text=replies.price_text(product, offer),
            json_message={"type": "product", "product": replies.product_payload(product)},
        )
        return [SlotSet("shown_products", [str(product_id)])]


class ActionShowOffers(Action):
    def name(self) -> str:
        return "action_show_offers"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        assistant = get_assistant()
        ref = customer_ref(tracker)
        if assistant.repo.is_opted_out(ref):
            dispatcher.utter_message(
                text="You've opted out of marketing, so I don't make you offers. "
                "I can still recommend titles at their regular prices."
            )
            return [SlotSet("offer_pending", False)]
        offers = assistant.open_offers(ref)
        if not offers:
            reply = assistant.recommend(ref, k=1, channel=channel(tracker))
            offers = [reply.offer] if reply.offer else []
        if not offers:
            dispatcher.utter_message(
                text="No offers for you right now, but new ones come often. Want a recommendation meanwhile?"
            )
            return [SlotSet("offer_pending", False)]
        lines = [replies.offer_line(o) for o in offers[:3]]
        dispatcher.utter_message(
            text="\n".join(lines),
            json_message={
                "type": "offers",
                "offers": [replies.offer_payload(o) for o in offers[:3]],
                "products": [replies.product_payload(o.product) for o in offers[:3]],
            },
        )
        return [
            SlotSet("offer_id", str(offers[0].id)),
            SlotSet("offer_pending", True),
            SlotSet("shown_products", [str(o.product.id) for o in offers[:3]]),
        ]


class ActionPurchase(Action):
    def name(self) -> str:
        return "action_purchase"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        product_id = product_or_ask(dispatcher, tracker, "Which title would you like to buy?")
        if product_id is None:
            return []
        order = get_assistant().purchase(customer_ref(tracker), product_id, channel(tracker))
        dispatcher.utter_message(
            text=replies.purchase_text(order),
            json_message={
                "type": "order",
                "order_id": order.id,
                "product": replies.product_payload(order.product),
                "amount": order.amount_cents / 100,
                "discount_pct": order.discount_pct,
            },
        )
        return [SlotSet("offer_pending", False), SlotSet("offer_id", None)]


class ActionDeclineOffer(Action):
    def name(self) -> str:
        return "action_decline_offer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        offer_id = tracker.get_slot("offer_id")
        if offer_id:
            get_assistant().decline_offer(customer_ref(tracker), int(offer_id))
        dispatcher.utter_message(
            text="No problem. Want something else? Tell me a genre, a budget or a decade."
        )
        return [SlotSet("offer_pending", False), SlotSet("offer_id", None)]


class ActionOrderHistory(Action):
    def name(self) -> str:
        return "action_order_history"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        total, recent = get_assistant().order_history(customer_ref(tracker))
        dispatcher.utter_message(text=replies.order_history_text(total, recent))
        return []


class ActionOptOut(Action):
    def name(self) -> str:
        return "action_opt_out"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        get_assistant().opt_out(customer_ref(tracker), channel(tracker))
        dispatcher.utter_message(
            text="Done: you won't receive marketing offers from us any more. "
            "You can still ask me for recommendations."
        )
        return [SlotSet("offer_pending", False), SlotSet("offer_id", None)]


class ActionEraseData(Action):
    def name(self) -> str:
        return "action_erase_data"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if tracker.get_slot("erasure_confirmed") is not True:
            dispatcher.utter_message(response="utter_erasure_cancelled")
            return [SlotSet("erasure_confirmed", None)]
        get_assistant().erase(
            customer_ref(tracker), requested_by=f"customer:{channel(tracker)}", senders=[tracker.sender_id]
        )
        dispatcher.utter_message(
            text="Your personal data has been deleted: profile, offers, consents and our "
            "conversations, and your orders are no longer linked to you. If you chat again you "
            "start as a new customer."
        )
        # AllSlotsReset right after action_erase_data also tells Rasa's tracker store to write
        # nothing of this turn (bot/redacting_store.py; smartmkt.privacy.rasa_events).
        return [AllSlotsReset()]
