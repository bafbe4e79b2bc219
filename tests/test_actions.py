"""Rasa SDK actions run directly: a tracker built from a dict, a collecting dispatcher, and the
real assistant (demo store copy + served recommender) behind them."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.actions as acts
from smartmkt.assistant import ShopAssistant
from smartmkt.recommend.preferences import Preferences


@pytest.fixture
def assistant(demo_engine, served_recommender, monkeypatch) -> ShopAssistant:  # type: ignore[no-untyped-def]
    shop = ShopAssistant(demo_engine, served_recommender)
    monkeypatch.setattr(acts, "get_assistant", lambda: shop)
    return shop


def tracker(
    sender: str,
    text: str,
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    slots: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    return Tracker(
        sender_id=sender,
        slots={"offer_pending": False, **(slots or {})},
        latest_message={
            "text": text,
            "intent": {"name": intent, "confidence": 0.99},
            "entities": entities or [],
            "metadata": {"customer": {"ref": sender, "verified": True}},  # as Rasa verified it
        },
        events=events or [],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name=None,
    )


def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = action.run(dispatcher, t, {})
    return dispatcher.messages, events


def slot(events: list[dict[str, Any]], name: str) -> Any:
    return next(e["value"] for e in events if e.get("event") == "slot" and e["name"] == name)


def test_recommend_respects_genre_price_and_history(assistant: ShopAssistant) -> None:
    t = tracker(
        "42",
        "a comedy for my kids under $10",
        "ask_recommendation",
        [
            {"entity": "category", "value": "comedy", "start": 2, "end": 8},
            {"entity": "recipient", "value": "my kids", "start": 13, "end": 20},
            {"entity": "price", "value": "$10", "start": 27, "end": 30},
        ],
        slots={"category": ["comedy"], "recipient": "my kids", "price": "$10"},
    )
    messages, events = run(acts.ActionRecommend(), t)
    payload = messages[0]["custom"]
    products = payload["products"]
    assert len(products) == 5
    bought = set(assistant.repo.history("42").product_ids)
    for p in products:
        assert "Comedy" in p["genres"] and "Horror" not in p["genres"]
        assert p["price"] <= 10.0
        assert p["id"] not in bought
    assert payload["offer"]["product_id"] == products[0]["id"]
    assert slot(events, "offer_pending") is True
    assert products[0]["title"] in messages[0]["text"]


def test_fresh_request_drops_stale_preferences(assistant: ShopAssistant) -> None:
    t = tracker(
        "42",
        "recommend a western",
        "ask_recommendation",
        [{"entity": "category", "value": "western", "start": 12, "end": 19}],
        slots={"category": ["western"], "price": "$3", "excluded_categories": ["drama"]},
    )
    messages, events = run(acts.ActionRecommend(), t)
    assert slot(events, "price") is None
    assert all("Western" in p["genres"] for p in messages[0]["custom"]["products"])


def test_yes_to_offer_buys_it_at_the_discount(assistant: ShopAssistant) -> None:
    messages, events = run(acts.ActionRecommend(), tracker("42", "recommend something", "ask_recommendation"))
    offer = messages[0]["custom"]["offer"]
    t = tracker(
        "42",
        "yes",
        "affirm",
        slots={
            "offer_pending": True,
            "offer_id": str(offer["id"]),
            "shown_products": [str(offer["product_id"])],
        },
    )
    messages, events = run(acts.ActionPurchase(), t)
    assert messages[0]["custom"]["product"]["id"] == offer["product_id"]
    assert messages[0]["custom"]["discount_pct"] == offer["percent_off"]
    assert slot(events, "offer_pending") is False
    assert assistant.repo.history("42").product_ids[-1] == offer["product_id"]


def test_more_like_a_title_leans_on_it_and_leaves_it_out(assistant: ShopAssistant) -> None:
    """The web chat's "show more like this" button: '/ask_recommendation{"product": ...}'."""
    payload = '/ask_recommendation{"product": "Toy Story"}'
    t = tracker("42", payload, "ask_recommendation", [{"entity": "product", "value": "Toy Story"}])
    messages, _ = run(acts.ActionRecommend(), t)
    products = messages[0]["custom"]["products"]
    assert "Toy Story" not in [p["title"] for p in products]
    # like Toy Story: mostly animation / children's titles (the payload's own words are no query)
    family = [p for p in products if {"Animation", "Children's"} & set(p["genres"])]
    assert len(family) >= 3, products


def test_add_to_cart_buys_the_named_title(assistant: ShopAssistant) -> None:
    """The web chat's "Buy" button: '/purchase{"product": ...}' orders that title."""
    t = tracker("42", '/purchase{"product": "Fargo"}', "purchase", [{"entity": "product", "value": "Fargo"}])
    messages, _ = run(acts.ActionPurchase(), t)
    assert messages[0]["custom"]["product"]["title"] == "Fargo"
    assert "I've ordered Fargo" in messages[0]["text"]


def test_price_of_a_named_title(assistant: ShopAssistant) -> None:
    t = tracker(
        "42",
        "how much is toy story",
        "ask_price",
        [{"entity": "product", "value": "toy story", "start": 12, "end": 21}],
    )
    messages, _ = run(acts.ActionPrice(), t)
    assert messages[0]["custom"]["product"]["title"] == "Toy Story"
    assert "$" in messages[0]["text"]


def test_unknown_title_is_said_plainly(assistant: ShopAssistant) -> None:
    t = tracker(
        "42",
        "how much is zzqx vortex",
        "ask_price",
        [{"entity": "product", "value": "zzqx vortex", "start": 12, "end": 23}],
    )
    messages, _ = run(acts.ActionPrice(), t)
    assert "couldn't find" in messages[0]["text"]


def test_opted_out_customer_gets_no_offer(assistant: ShopAssistant) -> None:
    run(acts.ActionOptOut(), tracker("99", "unsubscribe", "opt_out_marketing"))
    messages, events = run(
        acts.ActionRecommend(),
        tracker(
            "99",
            "recommend a drama",
            "ask_recommendation",
            [{"entity": "category", "value": "drama", "start": 12, "end": 17}],
            slots={"category": ["drama"]},
        ),
    )
    assert messages[0]["custom"]["offer"] is None
    assert slot(events, "offer_pending") is False
    messages, _ = run(acts.ActionShowOffers(), tracker("99", "any deals?", "ask_offers"))
    assert "opted out" in messages[0]["text"]


def test_order_history_and_erasure(assistant: ShopAssistant) -> None:
    messages, _ = run(acts.ActionOrderHistory(), tracker("42", "my orders", "ask_order_history"))
    assert "orders with us" in messages[0]["text"]
    messages, events = run(
        acts.ActionEraseData(), tracker("42", "yes", "affirm", slots={"erasure_confirmed": True})
    )
    assert "deleted" in messages[0]["text"]
    assert events[0]["event"] == "reset_slots"
    messages, _ = run(acts.ActionOrderHistory(), tracker("42", "my orders", "ask_order_history"))
    assert "haven't ordered" in messages[0]["text"]


def test_cancelled_erasure_deletes_nothing(assistant: ShopAssistant) -> None:
    run(acts.ActionEraseData(), tracker("42", "no", "deny", slots={"erasure_confirmed": False}))
    assert assistant.repo.customer_exists("42")


def test_new_customer_cold_start(assistant: ShopAssistant) -> None:
    messages, _ = run(acts.ActionRecommend(), tracker("brand-new", "something funny", "ask_recommendation"))
    payload = messages[0]["custom"]
    assert len(payload["products"]) == 5
    assert payload["offer"]["percent_off"] == 15  # welcome offer
    assert "popular picks" in messages[0]["text"]


# --- "talk to a human" and choosing among several items (issue 15, parts 5 and 6) ----------------
def slots_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_handoff_names_the_configured_contact_and_promises_no_person(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from smartmkt.settings import get_settings

    monkeypatch.setenv("SMARTMKT_SHOP_CONTACT", "care@films.example or +1 555 0100")
    monkeypatch.setenv("SMARTMKT_SHOP_HOURS", "every day 10:00-16:00")
    get_settings.cache_clear()
    try:
        messages, _ = run(acts.ActionHandoff(), tracker("5", "talk to a human", "human_handoff"))
    finally:
        get_settings.cache_clear()
    text = messages[0]["text"]
    assert "care@films.example or +1 555 0100 (every day 10:00-16:00)" in text
    assert "keep helping" in text
    assert "will reply" not in text and "passing this conversation" not in text


def several_offers(assistant: ShopAssistant, customer: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Three recommendations make up to three offers; "any deals?" lists them (newest first).
    Returns the offers listed and the slots the listing set."""
    for genre in ("thriller", "comedy", "western"):
        assistant.recommend(customer, Preferences.from_values([genre], None, None, None, None))
    messages, events = run(acts.ActionShowOffers(), tracker(customer, "any deals for me?", "ask_offers"))
    offers = messages[0]["custom"]["offers"]
    assert len(offers) >= 2, f"the demo store made {len(offers)} offer(s) for {customer}"
    slots = slots_of(events)
    assert slots == {
        "offer_id": None,  # several: none of them is the one a yes would buy
        "offer_pending": True,
        "shown_products": [str(o["product_id"]) for o in offers],
    }
    return offers, slots


def test_yes_to_several_offers_asks_which_and_orders_nothing(assistant: ShopAssistant) -> None:
    offers, shown = several_offers(assistant, "42")
    titles = [assistant.repo.product(o["product_id"]).title for o in offers]  # type: ignore[union-attr]
    before = assistant.order_history("42")[0]
    for said, intent in (("yes", "affirm"), ("buy it", "purchase"), ("the fifth one", "purchase")):
        messages, events = run(acts.ActionPurchase(), tracker("42", said, intent, slots=shown))
        assert assistant.order_history("42")[0] == before, said  # no order from a guess
        question = messages[0]
        assert question["text"].startswith("Which one would you like to buy?")
        for n, title in enumerate(titles, start=1):  # numbered, one a line, for clients without buttons
            assert f"\n{n}. {title}" in question["text"]
        assert [b["title"] for b in question["buttons"]] == titles
        assert question["buttons"][1]["payload"] == f'/purchase{{"product": "{titles[1]}"}}'
        assert slots_of(events)["offer_pending"] is False

    # "the second one" buys the second listed, at its offer's discount
    messages, _ = run(acts.ActionPurchase(), tracker("42", "the second one", "purchase", slots=shown))
    order = messages[0]["custom"]
    assert order["product"]["id"] == offers[1]["product_id"]
    assert order["discount_pct"] == offers[1]["percent_off"]

    # a button: its payload names the title as the product entity
    payload = question["buttons"][0]["payload"]
    t = tracker("42", payload, "purchase", [{"entity": "product", "value": titles[0]}], slots=shown)
    messages, _ = run(acts.ActionPurchase(), t)
    assert messages[0]["custom"]["product"]["id"] == offers[0]["product_id"]
    assert assistant.order_history("42")[0] == before + 2


def test_a_bare_title_answering_which_buys_it_and_otherwise_only_finds_it(assistant: ShopAssistant) -> None:
    """The NLU reads "Home Alone" alone as a search; in answer to "Which one would you like to
    buy?" (the bot's last message, its buttons say) it is that choice."""
    offers, shown = several_offers(assistant, "42")
    messages, _ = run(acts.ActionPurchase(), tracker("42", "yes", "affirm", slots=shown))
    question = {"event": "bot", "text": messages[0]["text"], "data": {"buttons": messages[0]["buttons"]}}
    title = assistant.repo.product(offers[-1]["product_id"]).title  # type: ignore[union-attr]
    said = [{"entity": "product", "value": title}]
    answer = [question, {"event": "user", "text": title}]
    messages, _ = run(acts.ActionSearchProduct(), tracker("42", title, "search_product", said, shown, answer))
    assert messages[0]["custom"]["type"] == "order"
    assert messages[0]["custom"]["product"]["id"] == offers[-1]["product_id"]
    # the same words with the question one turn further back: a search, no order
    later = [question, {"event": "user", "text": "hmm"}, {"event": "bot", "text": "?"}, answer[1]]
    before = assistant.order_history("42")[0]
    messages, _ = run(acts.ActionSearchProduct(), tracker("42", title, "search_product", said, shown, later))
    assert messages[0]["text"].startswith("Yes, we have it")
    assert assistant.order_history("42")[0] == before


def test_one_pending_offer_still_bought_by_yes_among_several_titles(assistant: ShopAssistant) -> None:
    messages, events = run(acts.ActionRecommend(), tracker("42", "recommend something", "ask_recommendation"))
    offer = messages[0]["custom"]["offer"]
    products = messages[0]["custom"]["products"]
    assert offer and len(products) > 1
    slots = slots_of(events)
    messages, _ = run(acts.ActionPurchase(), tracker("42", "yes", "affirm", slots=slots))
    assert messages[0]["custom"]["product"]["id"] == offer["product_id"]
    # and a position still chooses another of the titles shown, at its own price
    messages, _ = run(
        acts.ActionPurchase(), tracker("42", "I'll take the third one", "purchase", slots=slots)
    )
    assert messages[0]["custom"]["product"]["id"] == products[2]["id"]


def test_price_of_one_of_several_asks_which(assistant: ShopAssistant) -> None:
    offers, shown = several_offers(assistant, "42")
    messages, _ = run(acts.ActionPrice(), tracker("42", "how much is it?", "ask_price", slots=shown))
    assert messages[0]["text"].startswith("Which one do you mean?")
    assert messages[0]["buttons"][0]["payload"].startswith('/ask_price{"product": ')
    messages, events = run(
        acts.ActionPrice(), tracker("42", "how much is the last one?", "ask_price", slots=shown)
    )
    assert messages[0]["custom"]["product"]["id"] == offers[-1]["product_id"]
    # now the one offer a yes answers is that title's
    assert slots_of(events) == {
        "shown_products": [str(offers[-1]["product_id"])],
        "offer_id": str(offers[-1]["id"]),
    }


def test_a_price_of_another_title_ends_the_pending_offer(assistant: ShopAssistant) -> None:
    """After "Want it? (yes/no)" on the first title, the price of the third: a yes is no longer
    an answer to that offer (Rasa then asks what the customer would like)."""
    messages, events = run(acts.ActionRecommend(), tracker("42", "recommend something", "ask_recommendation"))
    products = messages[0]["custom"]["products"]
    assert messages[0]["custom"]["offer"]
    t = tracker("42", "how much is the third one", "ask_price", slots=slots_of(events))
    messages, events = run(acts.ActionPrice(), t)
    assert messages[0]["custom"]["product"]["id"] == products[2]["id"]
    assert slots_of(events) == {
        "shown_products": [str(products[2]["id"])],
        "offer_pending": False,
        "offer_id": None,
    }


def test_no_to_several_offers_declines_them_and_no_thanks_on_a_card_only_its_own(
    assistant: ShopAssistant,
) -> None:
    offers, shown = several_offers(assistant, "42")
    first = assistant.repo.product(offers[0]["product_id"]).title  # type: ignore[union-attr]
    card = tracker("42", "/deny", "deny", [{"entity": "product", "value": first}], slots=shown)
    run(acts.ActionDeclineOffer(), card)
    open_ids = {o.id for o in assistant.open_offers("42")}
    assert offers[0]["id"] not in open_ids and {o["id"] for o in offers[1:]} <= open_ids
    run(acts.ActionDeclineOffer(), tracker("42", "no thanks", "deny", slots=shown))
    assert not open_ids & {o.id for o in assistant.open_offers("42")}


def test_with_a_shop_connected_yes_gives_the_code_and_the_shops_page(
    assistant: ShopAssistant, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """SMARTMKT_SHOP_PRODUCT_URL set: a yes to an offer answers with its discount code and the
    product's page on the shop's site, and records no purchase in smartmkt's own store (the
    shop's checkout redeems the code through the API); a title with no offer gets its page."""
    from smartmkt.settings import get_settings

    messages, _ = run(acts.ActionRecommend(), tracker("42", "recommend something", "ask_recommendation"))
    offer = messages[0]["custom"]["offer"]
    bought_before = assistant.repo.history("42").product_ids
    monkeypatch.setenv("SMARTMKT_SHOP_PRODUCT_URL", "https://shop.example/p/{product_id}?ref=chat")
    get_settings.cache_clear()
    try:
        slots = {
            "offer_pending": True,
            "offer_id": str(offer["id"]),
            "shown_products": [str(offer["product_id"])],
        }
        messages, events = run(acts.ActionPurchase(), tracker("42", "yes", "affirm", slots=slots))
        plain = run(
            acts.ActionPurchase(),
            tracker(
                "42", '/purchase{"product": "Fargo"}', "purchase", [{"entity": "product", "value": "Fargo"}]
            ),
        )[0]
    finally:
        get_settings.cache_clear()
    payload = messages[0]["custom"]
    code = payload["offer"]["code"]
    stored = next(o for o in assistant.open_offers("42") if o.id == offer["id"])
    assert payload["type"] == "checkout" and code == stored.code and code in messages[0]["text"]
    ref = assistant.repo.shop_ref(offer["product_id"])
    assert (
        payload["url"] == f"https://shop.example/p/{ref}?ref=chat" and payload["url"] in messages[0]["text"]
    )
    assert slot(events, "offer_pending") is False
    assert assistant.repo.history("42").product_ids == bought_before  # bought on the shop, not here
    assert plain[0]["custom"]["offer"] is None and "on our shop: https://shop.example/p/" in plain[0]["text"]


def test_an_order_from_the_shop_counts_in_the_customers_next_turn(assistant: ShopAssistant) -> None:
    """An order line the shop sends (the shop API's path: Importer.import_rows) changes the
    customer's very next recommendation and offer: the title bought is not listed again, and a
    customer with a purchase now is past the welcome discount (the policy reads the history
    at each decision)."""
    from smartmkt.data.importer import Importer

    policy = assistant.offer_policy
    comedy = Preferences(genres=("Comedy",))
    first = assistant.recommend("api-new-shopper", prefs=comedy)
    assert first.offer is not None and first.offer.percent_off == policy.welcome_pct
    bought = first.products[1]
    line = {
        "order_id": "shop-9001",
        "customer_id": "api-new-shopper",
        "product_id": assistant.repo.shop_ref(bought.id),
        "ordered_at": "2026-12-01T10:00:00Z",
    }
    done = Importer(assistant.repo.engine).import_rows("orders", [line], source="api:test")
    assert [r.status for r in done.rows] == ["accepted"] and done.report.inserted == 1
    second = assistant.recommend("api-new-shopper", prefs=comedy)
    assert bought.id not in [p.id for p in second.products]
    assert second.offer is not None and second.offer.percent_off == policy.nudge_pct  # no model score yet


# --- replies that degrade well in standard Rasa clients (issue 18) ---------------------------------
def paragraphs(text: str) -> list[str]:
    """A reply's paragraphs, as Rasa's socket.io channel sends them (one message each)."""
    return text.strip().split("\n\n")


def carousel_titles(message: dict[str, Any]) -> list[str]:
    attachment = message["attachment"]
    assert attachment["type"] == "template" and attachment["payload"]["template_type"] == "generic"
    elements = attachment["payload"]["elements"]
    for element in elements:
        assert element["subtitle"] and element["subtitle"].count("$") == 1
        assert [b["title"] for b in element["buttons"]] == ["Buy", "More like this"]
        assert all(b["type"] == "postback" for b in element["buttons"])
        quoted = f'{{"product": "{element["title"]}"}}'
        assert [b["payload"] for b in element["buttons"]] == [
            f"/purchase{quoted}",
            f"/ask_recommendation{quoted}",
        ]
    return [e["title"] for e in elements]


def test_recommendations_come_as_a_markdown_list_a_carousel_and_yes_no_buttons(
    assistant: ShopAssistant,
) -> None:
    messages, _ = run(acts.ActionRecommend(), tracker("42", "recommend something", "ask_recommendation"))
    [message] = messages
    products, offer = message["custom"]["products"], message["custom"]["offer"]
    assert offer, "the demo store makes customer 42 an offer"
    intro, listed, question = paragraphs(message["text"])
    assert intro.startswith("Here are my picks for you")
    lines = listed.split("\n")  # a Markdown ordered list: one item a line, its own paragraph
    assert [line.split(". ", 1)[0] for line in lines] == [str(n) for n in range(1, len(products) + 1)]
    assert [line.split(". ", 1)[1].split(" (")[0].split(" · ")[0] for line in lines] == [
        p["title"] for p in products
    ]
    assert question.startswith("Special offer for you:") and question.endswith("Want it?")
    assert "(yes/no)" not in message["text"]
    assert [b["payload"] for b in message["buttons"]] == ["/affirm", "/deny"]
    assert carousel_titles(message) == [p["title"] for p in products]
    offered = next(
        e for e in message["attachment"]["payload"]["elements"] if e["title"] == products[0]["title"]
    )
    assert f"with your {offer['percent_off']}% off" in offered["subtitle"]


def test_offers_and_found_titles_come_with_buttons_and_a_carousel(assistant: ShopAssistant) -> None:
    for genre in ("thriller", "comedy", "western"):
        assistant.recommend("42", Preferences.from_values([genre], None, None, None, None))
    messages, _ = run(acts.ActionShowOffers(), tracker("42", "any deals for me?", "ask_offers"))
    [message] = messages
    titles = [p["title"] for p in message["custom"]["products"]]
    assert len(titles) >= 2
    intro, listed, question = paragraphs(message["text"])
    assert intro == "Special offers for you:" and question == "Which one would you like?"
    assert len(listed.split("\n")) == len(titles) and listed.startswith("1. ")
    assert [b["title"] for b in message["buttons"]] == [*(f"Buy {t}" for t in titles), "No thanks"]
    assert carousel_titles(message) == titles

    messages, _ = run(
        acts.ActionSearchProduct(),
        tracker("42", "do you have fargo", "search_product", [{"entity": "product", "value": "Fargo"}]),
    )
    assert carousel_titles(messages[0]) == ["Fargo"]


def test_lists_are_markdown_paragraphs_and_no_reply_is_only_a_custom_payload(
    assistant: ShopAssistant,
) -> None:
    run(acts.ActionRecommend(), tracker("42", "recommend something", "ask_recommendation"))
    said = [
        (
            acts.ActionRecommend(),
            tracker("42", "a western", "ask_recommendation", slots={"category": ["western"]}),
        ),
        (acts.ActionShowOffers(), tracker("42", "any deals?", "ask_offers")),
        (acts.ActionOrderHistory(), tracker("42", "my orders", "ask_order_history")),
        (
            acts.ActionPrice(),
            tracker("42", "price of fargo", "ask_price", [{"entity": "product", "value": "Fargo"}]),
        ),
        (
            acts.ActionPurchase(),
            tracker("42", "buy fargo", "purchase", [{"entity": "product", "value": "Fargo"}]),
        ),
        (
            acts.ActionRecommend(),
            tracker("cold", "a horror film", "ask_recommendation", slots={"category": ["horror"]}),
        ),
    ]
    for action, t in said:
        messages, _ = run(action, t)
        for message in messages:
            assert str(message.get("text") or "").strip(), (action.name(), message)  # never only custom
            for paragraph in paragraphs(message["text"]):
                lines = paragraph.split("\n")
                listed = [line for line in lines if line[:1].isdigit() or line.startswith("- ")]
                assert not listed or listed == lines, (action.name(), paragraph)  # a list is a paragraph
    messages, _ = run(acts.ActionOrderHistory(), tracker("42", "my orders", "ask_order_history"))
    intro, listed = paragraphs(messages[0]["text"])
    assert intro.endswith("The most recent:") and all(line.startswith("- ") for line in listed.split("\n"))
