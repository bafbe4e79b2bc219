"""Reply texts and rich payloads: pure functions of smartmkt results, unit-testable alone.

Every reply degrades well in a standard Rasa client (rasa-webchat, Rasa's REST channel):
- its text is Markdown: a list is its own paragraph (a blank line before it), one item a line,
  so a client renders a list, not a run-on paragraph (Rasa's socket.io channel also sends each
  paragraph as its own message);
- a question with fixed answers carries them as Rasa ``buttons`` (yes/no, which title);
- products also come as Rasa's generic-template carousel (``attachment``), which standard
  clients render, besides smartmkt's own cards (``custom``), which only smartmkt's page and
  widget render: Rasa's socket.io channel sends each to the clients that render it
  (bot/run_rasa.py, ``CARDS_CAPABILITY``);
- no message is only a ``custom`` payload, so none renders empty."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from smartmkt.assistant import CatalogItem, Checkout, OfferView, OrderView, RecommendationReply, money


def product_line(product: CatalogItem) -> str:
    year = f" ({product.year})" if product.year else ""
    genres = ", ".join(product.genres) or "uncategorized"
    return f"{product.title}{year} · {genres} · {money(product.price_cents, product.currency)}"


def product_payload(product: CatalogItem) -> dict[str, Any]:
    return {
        "id": product.id,
        "title": product.title,
        "year": product.year,
        "genres": list(product.genres),
        "price": product.price,
        "currency": product.currency,
    }


def offer_payload(offer: OfferView) -> dict[str, Any]:
    return {
        "id": offer.id,
        "product_id": offer.product.id,
        "percent_off": offer.percent_off,
        "price": offer.product.price,
        "offer_price": offer.offer_price_cents / 100,
        "expires_at": offer.expires_at.isoformat(timespec="minutes"),
        "reason": offer.reason,
    }


def offer_terms(offer: OfferView) -> str:
    """ "20% off Fargo: $7.99 instead of $9.99, until Dec 09" """
    product = offer.product
    return (
        f"{offer.percent_off}% off {product.title}: "
        f"{money(offer.offer_price_cents, product.currency)} instead of "
        f"{money(product.price_cents, product.currency)}, until {offer.expires_at:%b %d}"
    )


def offer_line(offer: OfferView) -> str:
    """The offer and its question; its answers are ``YES_NO``."""
    return f"Special offer for you: {offer_terms(offer)}. Want it?"


# The answers to "Want it?" (an offer) and "Shall I go ahead?" (bot/domain.yml's erasure).
YES_NO = [{"title": "Yes, I want it", "payload": "/affirm"}, {"title": "No thanks", "payload": "/deny"}]


def numbered(lines: Sequence[str], start: int = 1) -> str:
    """A Markdown ordered list, one item a line, its first item numbered ``start``."""
    return "\n".join(f"{n}. {line}" for n, line in enumerate(lines, start=start))


# How a reply names titles of several genres: "romantic comedies", "animated musicals".
GENRE_ADJECTIVE = {"Romance": "romantic", "Animation": "animated", "Film-Noir": "noir"}
GENRE_NOUN = {  # the genres people name titles by, in the order they win the noun's place
    "Comedy": ("comedy", "comedies"),
    "Thriller": ("thriller", "thrillers"),
    "Musical": ("musical", "musicals"),
    "Drama": ("drama", "dramas"),
    "Western": ("western", "westerns"),
    "Romance": ("romance", "romances"),
    "Mystery": ("mystery", "mysteries"),
    "Documentary": ("documentary", "documentaries"),
    "Adventure": ("adventure", "adventures"),
}


def titles_of(genres: Sequence[str], count: int) -> str:
    """ "2 romantic comedies", "1 animated musical", "no sci-fi thrillers", "3 action sci-fi
    titles": ``count`` titles with every one of ``genres``."""
    head = next((g for g in GENRE_NOUN if g in genres), None)
    words = [GENRE_ADJECTIVE.get(g, g.lower()) for g in genres if g != head]
    singular, plural = GENRE_NOUN[head] if head else ("title", "titles")
    amount = "no" if count == 0 else str(count)
    return " ".join([amount, *words, singular if count == 1 else plural])


def recommendations_text(reply: RecommendationReply) -> str:
    """The picks, the titles with everything asked for first; when fewer had it all, the reply
    says how many did and lists the close ones apart."""
    described = reply.preferences.describe()
    if reply.close_matches:
        found = titles_of(reply.preferences.genres, len(reply.exact))
        intro = f"I found {found} ({described}); here are close ones too."
    else:
        intro = "Here are my picks for you" if reply.personalized else "Here are some popular picks"
        intro += f" ({described}):" if described else ":"
    paragraphs = [intro]
    if reply.exact:
        paragraphs.append(numbered([product_line(p) for p in reply.exact]))
    if reply.close:
        paragraphs += [
            "Close ones, with some of those genres:",
            numbered([product_line(p) for p in reply.close], start=len(reply.exact) + 1),
        ]
    if reply.offer:
        paragraphs.append(offer_line(reply.offer))
    return "\n\n".join(paragraphs)


def offers_text(offers: Sequence[OfferView]) -> str:
    """One offer and its question (answers: ``YES_NO``), or the offers listed and which one."""
    if len(offers) == 1:
        return offer_line(offers[0])
    return "\n\n".join(
        ["Special offers for you:", numbered([offer_terms(o) for o in offers]), "Which one would you like?"]
    )


def offers_buttons(offers: Sequence[OfferView]) -> list[dict[str, str]]:
    """Yes/no for one offer; for several, one "Buy" per title and a "No thanks" for them all."""
    if len(offers) == 1:
        return YES_NO
    buys = [
        {"title": f"Buy {o.product.title}", "payload": shortcut("purchase", o.product.title)} for o in offers
    ]
    return [*buys, {"title": "No thanks", "payload": "/deny"}]


def shortcut(intent: str, title: str) -> str:
    """A button's payload: the intent with the title as its ``product`` entity (what the page's
    cards send too: chat/cards.js)."""
    return f"/{intent}{json.dumps({'product': title})}"


def carousel(products: Sequence[CatalogItem], offers: Sequence[OfferView] = ()) -> dict[str, Any]:
    """Rasa's generic template: a card per product, with the price the customer would pay, and
    "Buy" and "More like this" buttons (postbacks of the same payloads as the page's cards)."""
    elements = []
    for product in products:
        offer = next((o for o in offers if o.product.id == product.id), None)
        price = money(product.price_cents, product.currency)
        if offer:
            price = f"{money(offer.offer_price_cents, product.currency)} with your {offer.percent_off}% off"
        details = [str(product.year) if product.year else "", ", ".join(product.genres), price]
        elements.append(
            {
                "title": product.title,
                "subtitle": " · ".join(d for d in details if d),
                "buttons": [
                    {"type": "postback", "title": "Buy", "payload": shortcut("purchase", product.title)},
                    {
                        "type": "postback",
                        "title": "More like this",
                        "payload": shortcut("ask_recommendation", product.title),
                    },
                ],
            }
        )
    return {"type": "template", "payload": {"template_type": "generic", "elements": elements}}


def recommendations_payload(reply: RecommendationReply) -> dict[str, Any]:
    return {
        "type": "recommendations",
        "products": [product_payload(p) for p in reply.products],
        "offer": offer_payload(reply.offer) if reply.offer else None,
    }


def nothing_found_text(reply: RecommendationReply) -> str:
    described = reply.preferences.describe()
    what = f" matching {described}" if described else ""
    return (
        f"I couldn't find a title{what} that you don't already have. "
        "Try another genre, a higher budget or a different decade."
    )


def order_history_text(total: int, recent: list[OrderView]) -> str:
    if not total:
        return "You haven't ordered anything yet. Want a recommendation to start?"
    lines = []
    for order in recent:
        discount = f", {order.discount_pct}% off" if order.discount_pct else ""
        lines.append(
            f"- {order.ordered_at:%Y-%m-%d}: {order.product.title} "
            f"({money(order.amount_cents, order.product.currency)}{discount})"
        )
    intro = f"You have {total} order{'s' if total != 1 else ''} with us. The most recent:"
    return "\n\n".join([intro, "\n".join(lines)])


def purchase_text(order: OrderView) -> str:
    discount = f" with {order.discount_pct}% off" if order.discount_pct else ""
    return (
        f"Done! I've ordered {order.product.title} for "
        f"{money(order.amount_cents, order.product.currency)}{discount}. "
        f"Order #{order.id}. Enjoy the movie!"
    )


def checkout_text(checkout: Checkout) -> str:
    """Where to buy on the shop's site, with the discount code when an offer applies."""
    product, offer = checkout.product, checkout.offer
    if offer is None or not offer.code:
        price = money(product.price_cents, product.currency)
        return f"You can buy {product.title} ({price}) on our shop: {checkout.url}"
    return (
        f"Here's your code for {offer.percent_off}% off {product.title}: {offer.code}. "
        f"Enter it at checkout to pay {money(offer.offer_price_cents, product.currency)} instead of "
        f"{money(product.price_cents, product.currency)}, until {offer.expires_at:%b %d}: {checkout.url}"
    )


def checkout_payload(checkout: Checkout) -> dict[str, Any]:
    offer = checkout.offer
    return {
        "type": "checkout",
        "product": product_payload(checkout.product),
        "url": checkout.url,
        "offer": {**offer_payload(offer), "code": offer.code} if offer else None,
    }


def price_text(product: CatalogItem, offer: OfferView | None) -> str:
    text = f"{product_line(product)}."
    if offer:
        text += (
            f" With your offer it's {money(offer.offer_price_cents, product.currency)} "
            f"({offer.percent_off}% off) until {offer.expires_at:%b %d}."
        )
    return text


def handoff_text(contact: str, hours: str) -> str:
    """What is true until a live inbox exists: no person reads this chat, so say how to reach
    the shop's team (SMARTMKT_SHOP_CONTACT, SMARTMKT_SHOP_HOURS) and keep helping here."""
    when = f" ({hours})" if hours.strip() else ""
    return (
        "No one from the shop reads this chat, so I can't pass you to a person here. "
        f"You can reach the shop's team at {contact}{when}. "
        "Meanwhile I can keep helping: recommendations, prices, your offers and your orders."
    )


WHICH_QUESTION = {
    "purchase": "Which one would you like to buy?",
    "ask_price": "Which one do you mean?",
}


def choice_line(n: int, product: CatalogItem, offers: Sequence[OfferView]) -> str:
    """ "2. Home Alone (1990) · $5.59 with your offer": the price the customer would pay."""
    offer = next((o for o in offers if o.product.id == product.id), None)
    year = f" ({product.year})" if product.year else ""
    if offer:
        price = f"{money(offer.offer_price_cents, product.currency)} with your {offer.percent_off}% off"
    else:
        price = money(product.price_cents, product.currency)
    return f"{n}. {product.title}{year} · {price}"


def which_text(products: Sequence[CatalogItem], offers: Sequence[OfferView], intent: str) -> str:
    """The question, with its choices numbered one a line, so a client without buttons (a plain
    REST client, voice) still shows and reads them."""
    choices = "\n".join(choice_line(n, p, offers) for n, p in enumerate(products, start=1))
    question = WHICH_QUESTION.get(intent, "Which one do you mean?")
    return "\n\n".join([question, choices, 'Say which, e.g. "the second one", or its title.'])


def which_buttons(products: Sequence[CatalogItem], intent: str) -> list[dict[str, str]]:
    """A button a choice: its payload names the title as the product entity, which resolves
    against the same titles (smartmkt.assistant.choice)."""
    return [{"title": p.title, "payload": shortcut(intent, p.title)} for p in products]
