"""Reply texts and rich payloads: pure functions of smartmkt results, unit-testable alone."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from smartmkt.assistant import CatalogItem, Checkout, OfferView, OrderView, RecommendationReply


def money(cents: int, currency: str = "USD") -> str:
    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{symbol}{cents / 100:,.2f}"


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


def offer_line(offer: OfferView) -> str:
    product = offer.product
    return (
        f"Special offer for you: {offer.percent_off}% off {product.title}: "
        f"{money(offer.offer_price_cents, product.currency)} instead of "
        f"{money(product.price_cents, product.currency)}, until "
        f"{offer.expires_at:%b %d}. Want it? (yes/no)"
    )


def recommendations_text(reply: RecommendationReply) -> str:
    described = reply.preferences.describe()
    intro = "Here are my picks for you" if reply.personalized else "Here are some popular picks"
    if described:
        intro += f" ({described})"
    lines = [f"{intro}:"]
    lines += [f"{n}. {product_line(p)}" for n, p in enumerate(reply.products, start=1)]
    if reply.offer:
        lines.append(offer_line(reply.offer))
    return "\n".join(lines)


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
    lines = [f"You have {total} order{'s' if total != 1 else ''} with us. The most recent:"]
    for order in recent:
        discount = f", {order.discount_pct}% off" if order.discount_pct else ""
        lines.append(
            f"- {order.ordered_at:%Y-%m-%d}: {order.product.title} "
            f"({money(order.amount_cents, order.product.currency)}{discount})"
        )
    return "\n".join(lines)


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
    lines = [WHICH_QUESTION.get(intent, "Which one do you mean?")]
    lines += [choice_line(n, p, offers) for n, p in enumerate(products, start=1)]
    lines.append('Say which, e.g. "the second one", or its title.')
    return "\n".join(lines)


def which_buttons(products: Sequence[CatalogItem], intent: str) -> list[dict[str, str]]:
    """A button a choice: its payload names the title as the product entity, which resolves
    against the same titles (smartmkt.assistant.choice)."""
    return [{"title": p.title, "payload": f"/{intent}{json.dumps({'product': p.title})}"} for p in products]
