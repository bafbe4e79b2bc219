"""Issue 15, part 6, through the running product: a bare "yes" to a list of offers asks which one
(a button each, the choices numbered in the text) and orders nothing; "the second one", a title
and a button's payload each buy the item they name.

Its own stack: customer 42 needs several open offers, and offers are capped per customer and day,
which the other end-to-end modules spend on 42 in theirs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import start_stack
from sqlalchemy import Engine, func, select

from smartmkt.runtime.stack import RunningStack
from smartmkt.security.secrets import signed_in
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.models import Offer, Order, Product

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def choice_stack(
    tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path, base_settings: Settings
) -> Iterator[RunningStack]:
    yield from start_stack(tmp_path_factory, demo_db_template, base_settings, "choice")


@pytest.fixture(scope="module")
def choice_db(choice_stack: RunningStack) -> Iterator[Engine]:
    engine = make_engine(choice_stack.settings.resolved_database_url)
    yield engine
    engine.dispose()


class Customer:
    """A signed-in customer on one chat session, as the shop's site signs them in."""

    def __init__(self, stack: RunningStack, ref: str) -> None:
        self.stack = stack
        self.session, self.token = signed_in(stack.settings, ref)

    def say(self, message: str) -> list[dict[str, Any]]:
        r = httpx.post(
            self.stack.rest_url,
            json={"sender": self.session, "message": message, "metadata": {"customer_token": self.token}},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        replies: list[dict[str, Any]] = r.json()
        assert replies and not any("lost track" in m.get("text", "") for m in replies), (message, replies)
        return replies


def text_of(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def orders_of(db: Engine, customer_id: int) -> list[Order]:
    with session_scope(db) as s:
        return list(s.scalars(select(Order).where(Order.customer_id == customer_id).order_by(Order.id)))


def title_of(db: Engine, product_id: int) -> str:
    with session_scope(db) as s:
        product = s.get(Product, product_id)
        assert product is not None
        return product.title


def listed_offers(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payloads = [r["custom"] for r in replies if r.get("custom", {}).get("type") == "offers"]
    assert payloads, f"no offers listed in {replies}"
    return list(payloads[0]["offers"])


def test_yes_to_several_offers_asks_which_then_a_position_a_title_and_a_button_buy(
    choice_stack: RunningStack, choice_db: Engine
) -> None:
    customer = Customer(choice_stack, "42")
    # the path: a recommendation, then deals; two more recommendations make more offers
    for request in ("recommend me a thriller", "recommend me a comedy", "recommend me a western"):
        customer.say(request)
    deals = customer.say("any deals for me?")
    offers = listed_offers(deals)
    assert len(offers) >= 2, f"the demo store made {len(offers)} offer(s) for customer 42: {deals}"
    titles = [title_of(choice_db, o["product_id"]) for o in offers]
    listed = text_of(deals).split("\n\n")[1].split("\n")  # the offers: a Markdown list, one a line
    assert [line.split(". ", 1)[0] for line in listed] == [str(n) for n in range(1, len(offers) + 1)]
    assert all(title in line for title, line in zip(titles, listed, strict=True)), (titles, listed)
    deal_buttons = next(r["buttons"] for r in deals if r.get("buttons"))
    assert [b["title"] for b in deal_buttons] == [*(f"Buy {t}" for t in titles), "No thanks"]
    before = len(orders_of(choice_db, 42))

    # a bare yes: the question, numbered one a line, a button each, and no order
    question = customer.say("yes")
    asked = next(m for m in question if m.get("buttons"))
    assert asked["text"].startswith("Which one would you like to buy?")
    for n, title in enumerate(titles, start=1):
        assert f"\n{n}. {title}" in asked["text"]
    assert [b["title"] for b in asked["buttons"]] == titles
    assert len(orders_of(choice_db, 42)) == before
    with session_scope(choice_db) as s:
        statuses = set(s.scalars(select(Offer.status).where(Offer.id.in_([o["id"] for o in offers]))))
    assert statuses == {"shown"}  # nothing accepted, nothing declined

    # "the second one": the second title listed, at its offer's discount
    assert f"I've ordered {titles[1]}" in text_of(customer.say("the second one"))
    order = orders_of(choice_db, 42)[-1]
    assert (order.product_id, order.offer_id) == (offers[1]["product_id"], offers[1]["id"])
    assert order.discount_pct == offers[1]["percent_off"]

    # a title: "the <title> one"
    last = len(offers) - 1
    short = re.sub(r"^(The|A|An) ", "", titles[last])  # "the Crow one", not "the The Crow one"
    assert f"I've ordered {titles[last]}" in text_of(customer.say(f"the {short} one please"))
    assert orders_of(choice_db, 42)[-1].product_id == offers[last]["product_id"]

    # the first button's payload ('/purchase{"product": "<title>"}'), as the web chat sends it
    assert f"I've ordered {titles[0]}" in text_of(customer.say(asked["buttons"][0]["payload"]))
    bought = [o.product_id for o in orders_of(choice_db, 42)[before:]]
    assert bought == [offers[1]["product_id"], offers[last]["product_id"], offers[0]["product_id"]]
    with session_scope(choice_db) as s:
        accepted = s.scalar(
            select(func.count()).select_from(Offer).where(Offer.customer_id == 42, Offer.status == "accepted")
        )
    assert accepted == len(offers)


def test_one_offer_after_a_recommendation_is_still_bought_by_yes(
    choice_stack: RunningStack, choice_db: Engine
) -> None:
    """A new customer: one recommendation, its welcome offer pending, five titles shown."""
    customer = Customer(choice_stack, "choice-newcomer")
    recs = next(r["custom"] for r in customer.say("recommend me a comedy") if "custom" in r)
    offer = recs["offer"]
    assert offer and offer["percent_off"] == 15, recs  # the welcome offer
    assert len(recs["products"]) > 1
    assert "ordered" in text_of(customer.say("yes"))
    with session_scope(choice_db) as s:
        order = s.scalars(select(Order).where(Order.offer_id == offer["id"])).one()
        assert order.product_id == offer["product_id"]
