"""Rasa SDK custom actions. Thin by design: read the tracker, call smartmkt, format, reply.

All business logic (which titles, which offer, what is stored) lives in smartmkt.assistant;
replies are built in actions.replies; the assistant is this process's served one
(smartmkt.assistant.served_assistant).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import AllSlotsReset, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import replies
from smartmkt.assistant import (
    ENTITY_SLOT,
    PREFERENCE_SLOTS,
    CatalogItem,
    OfferView,
    Preferences,
    guest_ref,
    pick,
    preferences_from_slots,
    resolve_choice,
    words_to_search,
)
from smartmkt.assistant import served_assistant as get_assistant

log = logging.getLogger(__name__)


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
    return preferences_from_slots(values), events


def query_text(tracker: Tracker) -> str | None:
    return words_to_search(str(tracker.latest_message.get("text") or ""), latest_entities(tracker))


def liked_product(tracker: Tracker) -> CatalogItem | None:
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


class ActionHandoff(Action):
    """ "Talk to a human": how to reach the shop's team, from the settings. No one reads this chat
    yet (no live inbox), so the reply never says a person will answer here."""

    def name(self) -> str:
        return "action_handoff"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(text=replies.handoff_text(*get_assistant().contact()))
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
        if not get_assistant().is_new_customer(customer_ref(tracker)):
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
            text=None if liked else query_text(tracker),
            channel=channel(tracker),
            like=liked,
        )
        if not reply.products:
            dispatcher.utter_message(text=replies.nothing_found_text(reply))
            return [*events, SlotSet("offer_pending", False)]
        offers = [reply.offer] if reply.offer else []
        dispatcher.utter_message(
            text=replies.recommendations_text(reply),
            json_message=replies.recommendations_payload(reply),
            attachment=replies.carousel(reply.products, offers),
            buttons=replies.YES_NO if reply.offer else None,
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
        asked = answering_which(tracker)
        if asked and resolve_choice("", [p.title for p in table(tracker)], [str(title)]).index is not None:
            # "Home Alone" alone, in answer to "Which one would you like to buy?": that choice
            answer = ActionPurchase() if asked == "purchase" else ActionPrice()
            return answer.run(dispatcher, tracker, domain)
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
            attachment=replies.carousel([product]),
        )
        return focus_moves_to(tracker, product.id)


def answering_which(tracker: Tracker) -> str | None:
    """The intent ("purchase", "ask_price") of the "Which one?" question the bot's last message
    asked (its buttons' payloads say), when this message is the answer to it."""
    before_this_message = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if before_this_message:
                return None
            before_this_message = True
        elif event.get("event") == "bot" and before_this_message:
            payloads = [str(b.get("payload", "")) for b in (event.get("data") or {}).get("buttons") or []]
            intents = {p[1:].split("{", 1)[0] for p in payloads}
            return intents.pop() if len(intents) == 1 and intents <= {"purchase", "ask_price"} else None
    return None


def named_titles(tracker: Tracker) -> list[str]:
    return [
        str(e["value"]) for e in latest_entities(tracker) if e.get("entity") == "product" and e.get("value")
    ]


def table(tracker: Tracker) -> list[CatalogItem]:
    """The titles last shown to the customer, in the order they were numbered."""
    shown = [int(i) for i in tracker.get_slot("shown_products") or [] if str(i).isdigit()]
    return get_assistant().products(shown)


def pending_offer_index(tracker: Tracker, shown: list[CatalogItem]) -> int | None:
    """Where the single offer waiting for a yes/no is on the table, if one is."""
    offer_id = tracker.get_slot("offer_id")
    if not (tracker.get_slot("offer_pending") and offer_id):
        return None
    for offer in get_assistant().open_offers(customer_ref(tracker)):
        if str(offer.id) == str(offer_id):
            ids = [p.id for p in shown]
            return ids.index(offer.product.id) if offer.product.id in ids else None
    return None


@dataclass(frozen=True)
class Focus:
    """What a purchase or a price question is about: a product, a title the catalog does not
    have, or the choices to ask among (smartmkt.assistant.choice decides; an order never comes
    from a guess)."""

    product_id: int | None = None
    unknown: str | None = None
    choices: tuple[CatalogItem, ...] = ()


def product_in_focus(tracker: Tracker) -> Focus:
    """The item on the table the customer's words choose, else a title named from the catalog,
    else the single pending offer, else the only item shown; several: ask which."""
    shown = table(tracker)
    named = named_titles(tracker)
    text = str(tracker.latest_message.get("text") or "")
    words = "" if text.lstrip().startswith("/") else text  # a button's payload: only its entities
    chosen = pick(words, [p.title for p in shown], named, pending_offer_index(tracker, shown))
    if chosen.index is not None:
        return Focus(shown[chosen.index].id)
    if chosen.ask:
        return Focus(choices=tuple(shown))
    if named:
        product = get_assistant().find_product(named[0])
        return Focus(product.id) if product else Focus(unknown=named[0])
    return Focus()


def product_or_ask(
    dispatcher: CollectingDispatcher, tracker: Tracker, question: str, intent: str
) -> int | None:
    """The product in focus, or None after telling the customer what is missing: the title not
    found, which of the items shown (numbered, with a button each for ``intent``), or ``question``."""
    focus = product_in_focus(tracker)
    if focus.choices:
        offers = get_assistant().open_offers(customer_ref(tracker))
        dispatcher.utter_message(
            text=replies.which_text(focus.choices, offers, intent),
            buttons=replies.which_buttons(focus.choices, intent),
        )
    elif focus.product_id is None:
        dispatcher.utter_message(
            text=f'I couldn\'t find "{focus.unknown}" in our catalog.' if focus.unknown else question
        )
    return focus.product_id


class ActionPrice(Action):
    def name(self) -> str:
        return "action_price"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        product_id = product_or_ask(
            dispatcher, tracker, 'Which title? Tell me its name, e.g. "how much is Toy Story?"', "ask_price"
        )
        if product_id is None:
            return []
        assistant = get_assistant()
        product = assistant.product(product_id)
        if product is None:
            dispatcher.utter_message(text="Sorry, that title is no longer in the catalog.")
            return []
        offer = next(
            (o for o in assistant.open_offers(customer_ref(tracker)) if o.product.id == product_id), None
        )
        dispatcher.utter_message(
            text=replies.price_text(product, offer),
            json_message={"type": "product", "product": replies.product_payload(product)},
            attachment=replies.carousel([product], [offer] if offer else []),
        )
        return focus_moves_to(tracker, product_id)


class ActionShowOffers(Action):
    def name(self) -> str:
        return "action_show_offers"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        assistant = get_assistant()
        ref = customer_ref(tracker)
        if assistant.is_opted_out(ref):
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
            dispatcher.utter_message(text="No offers for you right now. Want a recommendation meanwhile?")
            return [SlotSet("offer_pending", False)]
        shown = offers[:3]
        dispatcher.utter_message(
            text=replies.offers_text(shown),
            buttons=replies.offers_buttons(shown),
            json_message={
                "type": "offers",
                "offers": [replies.offer_payload(o) for o in shown],
                "products": [replies.product_payload(o.product) for o in shown],
            },
            attachment=replies.carousel([o.product for o in shown], shown),
        )
        # One offer: a yes buys it. Several: no single one is pending, so a yes asks which.
        return [
            SlotSet("offer_id", str(offers[0].id) if len(shown) == 1 else None),
            SlotSet("offer_pending", True),
            SlotSet("shown_products", [str(o.product.id) for o in shown]),
        ]


class ActionPurchase(Action):
    def name(self) -> str:
        return "action_purchase"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        product_id = product_or_ask(dispatcher, tracker, "Which title would you like to buy?", "purchase")
        if product_id is None:
            # Nothing bought: the question asked stands, and no "yes" buys a guess meanwhile.
            return [SlotSet("offer_pending", False), SlotSet("offer_id", None)]
        assistant = get_assistant()
        checkout = assistant.checkout(customer_ref(tracker), product_id)
        if checkout is not None:  # a shop connected: the code and its page, bought over there
            dispatcher.utter_message(
                text=replies.checkout_text(checkout), json_message=replies.checkout_payload(checkout)
            )
            return [SlotSet("offer_pending", False), SlotSet("offer_id", None)]
        order = assistant.purchase(customer_ref(tracker), product_id, channel(tracker))
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


def pending_offers(tracker: Tracker) -> list[OfferView]:
    """The offers a yes/no answers: the single pending one, else every open offer listed."""
    if not tracker.get_slot("offer_pending"):
        return []
    offers = get_assistant().open_offers(customer_ref(tracker))
    if offer_id := tracker.get_slot("offer_id"):
        return [o for o in offers if str(o.id) == str(offer_id)]
    shown = {str(i) for i in tracker.get_slot("shown_products") or []}
    return [o for o in offers if str(o.product.id) in shown]


def focus_moves_to(tracker: Tracker, product_id: int) -> list[EventType]:
    """Slot events when one title is shown alone (its price, a search). A pending offer on it
    stays the one a "yes" buys; an offer on another title no longer is (a yes would be a guess)."""
    events: list[EventType] = [SlotSet("shown_products", [str(product_id)])]
    pending = pending_offers(tracker)
    if not pending:
        return events
    on_it = next((o for o in pending if o.product.id == product_id), None)
    if on_it:
        return [*events, SlotSet("offer_id", str(on_it.id))]
    return [*events, SlotSet("offer_pending", False), SlotSet("offer_id", None)]


def declined_offers(tracker: Tracker) -> list[int]:
    """The offers a "no" turns down: the one a card's "No thanks" names, else the single pending
    offer, else every offer listed (a "no" to a list of offers, each asking "Want it?")."""
    shown = table(tracker)
    shown_ids = {p.id for p in shown}
    offers = [o for o in get_assistant().open_offers(customer_ref(tracker)) if o.product.id in shown_ids]
    if named := named_titles(tracker):
        choice = resolve_choice("", [p.title for p in shown], named)
        meant = shown[choice.index].id if choice.index is not None else None
        return [o.id for o in offers if o.product.id == meant]
    if offer_id := tracker.get_slot("offer_id"):
        return [int(offer_id)]
    return [o.id for o in offers]


class ActionDeclineOffer(Action):
    def name(self) -> str:
        return "action_decline_offer"

    def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        for offer_id in declined_offers(tracker):
            get_assistant().decline_offer(customer_ref(tracker), offer_id)
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
