"""End to end over Rasa's REST channel: the real Rasa server, action server and app, started on
free ports against a private copy of the demo store. Conversations as demo customer 42 and as a
brand-new customer (each with a signed customer token on a session bound to it), then bad input."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import in_bot_env
from sqlalchemy import func, select
from sqlalchemy import text as sql_text

from smartmkt.runtime.stack import RunningStack
from smartmkt.security.secrets import signed_in
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, Offer, Order, Product

pytestmark = pytest.mark.e2e


LOST_TRACK = "lost track"  # utter_default: the dialogue policy found no rule or story


SESSIONS: dict[str, tuple[str, str]] = {}  # customer -> (session id, token), as the shop's site issues


def say(stack: RunningStack, customer: str, message: str) -> list[dict[str, Any]]:
    """``message`` from ``customer``: their signed token, on a chat session bound to them."""
    session, token = SESSIONS.setdefault(customer, signed_in(stack.settings, customer))
    r = httpx.post(
        stack.rest_url,
        json={"sender": session, "message": message, "metadata": {"customer_token": token}},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    replies: list[dict[str, Any]] = r.json()
    assert not any(LOST_TRACK in reply.get("text", "") for reply in replies), (message, replies)
    return replies


def text_of(replies: list[dict[str, Any]]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def recommendations(replies: list[dict[str, Any]]) -> dict[str, Any]:
    payloads = [r["custom"] for r in replies if r.get("custom", {}).get("type") == "recommendations"]
    assert payloads, f"no recommendations in {replies}"
    return payloads[0]


def catalog(db) -> dict[int, Product]:  # type: ignore[no-untyped-def]
    with session_scope(db) as s:
        return {p.id: p for p in s.scalars(select(Product))}


def bought(db, customer_id: int) -> set[int]:  # type: ignore[no-untyped-def]
    with session_scope(db) as s:
        return set(s.scalars(select(Order.product_id).where(Order.customer_id == customer_id)))


def test_customer_42_full_journey(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    products = catalog(db)
    history = bought(db, 42)
    assert "Welcome back" in text_of(say(stack, "42", "hi"))

    recs = recommendations(say(stack, "42", "a comedy for my kids under $10"))
    assert len(recs["products"]) >= 3
    for item in recs["products"]:
        product = products[item["id"]]  # exists in the catalog
        assert "Comedy" in product.genres.split("|")
        assert product.price_cents <= 1000
        assert item["id"] not in history
    offer = recs["offer"]
    assert offer and offer["product_id"] == recs["products"][0]["id"]
    with session_scope(db) as s:
        row = s.get(Offer, offer["id"])
        assert row is not None and row.customer_id == 42 and row.status == "shown"

    recs = recommendations(say(stack, "42", "nothing with horror please"))
    for item in recs["products"]:
        genres = products[item["id"]].genres.split("|")
        assert "Horror" not in genres and "Comedy" in genres  # refinement keeps the genre

    offer = recs["offer"]
    reply = say(stack, "42", "yes")
    assert "ordered" in text_of(reply)
    with session_scope(db) as s:
        order = s.scalars(select(Order).where(Order.customer_id == 42).order_by(Order.id.desc())).first()
        assert order is not None and order.product_id == offer["product_id"]
        assert order.offer_id == offer["id"] and order.discount_pct == offer["percent_off"]
        assert s.get(Offer, offer["id"]).status == "accepted"  # type: ignore[union-attr]

    assert products[offer["product_id"]].title in text_of(say(stack, "42", "what have I ordered?"))
    assert "$" in text_of(say(stack, "42", "how much is toy story?"))


def test_opt_out_stops_offers(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    assert "won't receive marketing" in text_of(say(stack, "77", "stop sending me offers"))
    recs = recommendations(say(stack, "77", "recommend me a drama"))
    assert recs["offer"] is None
    with session_scope(db) as s:
        assert (
            s.scalar(
                select(func.count())
                .select_from(Offer)
                .where(Offer.customer_id == 77, Offer.status == "shown")
            )
            == 0
        )


def test_new_customer_is_asked_then_served(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    sender = "new-visitor-e2e"
    question = text_of(say(stack, sender, "can you recommend me a movie?"))
    assert "what kind of movie" in question.lower()
    recs = recommendations(say(stack, sender, "westerns"))
    products = catalog(db)
    assert all("Western" in products[i["id"]].genres for i in recs["products"])
    assert recs["offer"]["percent_off"] == 15  # the welcome offer
    with session_scope(db) as s:
        assert s.scalar(select(Customer.id).where(Customer.external_ref == sender)) is not None


def test_handoff_out_of_scope_and_unsure(stack: RunningStack) -> None:
    handoff = text_of(say(stack, "5", "I want to talk to a real person"))
    # what is true until a live inbox exists: how to reach the shop, from the settings
    assert f"{stack.settings.shop_contact} ({stack.settings.shop_hours})" in handoff
    assert "will reply" not in handoff and "passing this conversation" not in handoff
    assert "keep helping" in handoff
    assert "outside what I can help" in text_of(say(stack, "5", "what's the weather in Paris tomorrow?"))
    # nothing the NLU can read: the low-confidence path asks to rephrase
    assert "say it another way" in text_of(say(stack, "5", "😀🎬🍿"))
    # gibberish gets a polite answer whichever way the model reads it
    polite = ("say it another way", "outside what I can help", "couldn't find")
    assert any(p in text_of(say(stack, "5", "flurb zongle wibble")) for p in polite)


def test_erasure_after_confirmation(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    assert "cannot be undone" in text_of(say(stack, "300", "please delete all my data"))
    assert "deleted" in text_of(say(stack, "300", "yes"))
    with session_scope(db) as s:
        assert s.scalar(select(Customer).where(Customer.external_ref == "300")) is None
        assert s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == 300)) == 0


@pytest.mark.parametrize(
    "message", ["", "   ", "😀🎬🍿", "recommend a comedy " * 526, "<script>alert(1)</script>"]
)
def test_odd_messages_get_a_reply(stack: RunningStack, message: str) -> None:
    replies = say(stack, "odd-input", message)
    assert text_of(replies).strip(), replies


@pytest.mark.parametrize(
    "payload",
    [
        {"message": "hi"},
        {"sender": "", "message": "hi"},
        {"sender": 42, "message": "hello"},
        {"sender": "x" * 500, "message": "hi"},
        {"sender": "7"},
        {"sender": "7", "message": None},
    ],
)
def test_odd_senders_and_fields_never_500(stack: RunningStack, payload: dict[str, Any]) -> None:
    r = httpx.post(stack.rest_url, json=payload, timeout=60)
    assert r.status_code < 500, (r.status_code, r.text)
    assert all(stack.alive().values())


@pytest.mark.parametrize(
    "body", [b"{not json", b"\xff\xfe\xfa\x00", b'{"sender": "1", "message": "\xc3\x28"}']
)
def test_malformed_bodies_never_500(stack: RunningStack, body: bytes) -> None:
    r = httpx.post(stack.rest_url, content=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code < 500, (r.status_code, r.text)
    assert all(stack.alive().values())


def test_rasa_locks_conversations_in_redis(stack: RunningStack) -> None:
    """The stack's Rasa takes each conversation's lock in Redis (RedisLockStore), as replicas
    must: every message is a SET of the lock, and no lock is left behind once it is answered."""
    url = urlsplit(stack.settings.redis_url)

    def redis(*command: str) -> str:
        request = f"*{len(command)}\r\n" + "".join(f"${len(c)}\r\n{c}\r\n" for c in command)
        with socket.create_connection((url.hostname, url.port), timeout=5) as conn:
            conn.sendall(request.encode())
            time.sleep(0.2)
            return conn.recv(65536).decode()

    def lock_writes() -> int:
        stats = dict(
            line.split(":", 1)
            for line in redis("INFO", "commandstats").splitlines()
            if line.startswith("cmdstat_")
        )
        calls = stats.get("cmdstat_set", "calls=0").split(",")[0]
        return int(calls.removeprefix("calls="))

    before = lock_writes()
    assert text_of(say(stack, "lock-store-check", "hi"))
    assert lock_writes() > before
    assert "smartmkt" not in redis("KEYS", "*lock*")  # released after the reply


def test_a_message_sent_again_under_its_id_is_answered_not_handled_twice(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    """bot/replicas.py: a client that lost an answer (a replica died) sends the message again
    under the same message_id. The second copy gets the first one's replies from the
    conversation, and the conversation holds the message once. An id that is not 1-64
    characters is a 400 with a JSON reason."""
    session, token = signed_in(stack.settings, "message-id-check")

    def send(message: str, message_id: object) -> httpx.Response:
        body = {"sender": session, "message": message, "message_id": message_id}
        return httpx.post(stack.rest_url, json=body | {"metadata": {"customer_token": token}}, timeout=60)

    first = send("recommend a comedy", "client-1")
    again = send("recommend a comedy", "client-1")
    assert first.status_code == again.status_code == 200
    assert text_of(first.json()) and text_of(again.json()) == text_of(first.json())
    with db.connect() as conn:
        ids = conn.scalars(
            sql_text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user'"), {"s": session}
        ).all()
    assert [json.loads(data)["message_id"] for data in ids] == ["client-1"]
    for bad in ("", "x" * 65, 7):
        refused = send("hi", bad)
        assert refused.status_code == 400 and "message_id" in refused.json()["error"], refused.text


def test_the_shops_api_reaches_the_next_chat_turn(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    """A product sent through the shop API is recommended in a following turn without a retrain
    (every action server follows the catalog's version); an order sent through it takes that
    title out of the customer's next recommendations (already bought). The demo catalog has no
    documentary under $2 (its cheapest title is $2.99), so the new one is the only answer."""
    from smartmkt.security.api_keys import create_key

    key = {"Authorization": f"Bearer {create_key(db, 'e2e shop', ('catalog:write', 'orders:write')).key}"}
    api = stack.settings.app_url + "/api/v1"
    asking = "recommend a documentary under $2"
    assert "products" not in json.dumps(say(stack, "e2e-docs-fan", asking))  # nothing fits yet
    product = {"title": "Harvest on the Salt Flats", "category": "Documentary", "price": 1.5, "year": 2026}
    put = httpx.put(f"{api}/products/shop-salt-flats", json=product, headers=key, timeout=30)
    assert put.status_code == 201, put.text
    with session_scope(db) as s:
        new_id = s.scalar(select(Product.id).where(Product.external_ref == "shop-salt-flats"))
    deadline = time.monotonic() + 30  # the action servers look for catalog changes every second
    while True:
        replies = say(stack, "e2e-docs-fan", asking)
        listed = (
            [item["id"] for item in recommendations(replies)["products"]]
            if "products" in json.dumps(replies)
            else []
        )
        if listed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert listed == [new_id], replies
    order = {
        "order_id": "e2e-salt-1",
        "customer_id": "42",
        "product_id": "shop-salt-flats",
        "ordered_at": "2026-12-05T12:00:00Z",
    }
    posted = httpx.post(f"{api}/orders", json=order, headers=key, timeout=30)
    assert posted.status_code == 200 and posted.json()["inserted"] == 1, posted.text
    after = say(stack, "42", asking)  # the very next turn: bought, so not listed again
    assert str(new_id) not in json.dumps([r.get("custom", {}) for r in after]), after


def test_the_running_app_sends_an_offers_webhook_to_the_shop(stack: RunningStack, db) -> None:  # type: ignore[no-untyped-def]
    """The app's own sender (started with it) posts offer.created, signed, to the shop's
    endpoint once an offer is made. The shop's server is outside the product: a small
    HTTP server on 127.0.0.1 stands in for it."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from smartmkt.notify.webhooks import verify
    from smartmkt.store.outbox import add_endpoint

    received: list[tuple[str, bytes]] = []

    class Shop(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(
                (self.headers["x-smartmkt-signature"], self.rfile.read(int(self.headers["content-length"])))
            )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _, secret = add_endpoint(db, f"http://127.0.0.1:{server.server_port}/hooks", ["offer.created"])
        # an offer written as the assistant writes one (the policy's budget may be spent by the
        # tests before): the outbox row is what the app's own sender must find and deliver
        from datetime import timedelta

        from smartmkt.store.repository import StoreRepository

        made = StoreRepository(db).create_offer(
            "e2e-hook-1", 60, 10, "e2e", "e2e", {}, "text", timedelta(days=1)
        )
        assert made is not None
        deadline = time.monotonic() + 30  # the app looks for due webhooks every 2 s
        while not received and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    assert received, "no webhook reached the shop"
    signature, body = received[0]
    event = json.loads(body)
    assert verify(secret, body, signature) and event["event"] == "offer.created"
    assert event["offer"]["customer_id"] == "e2e-hook-1" and event["offer"]["code"].startswith("SMK-")


SOCKET_CLIENTS = r"""
import asyncio, json, sys
import socketio

url = sys.argv[1]
sessions = {"stock": sys.argv[2:4], "smartmkt": sys.argv[4:6]}
got = {"stock": [], "smartmkt": []}

async def turn(name, metadata_extra):
    session, token = sessions[name]
    sio = socketio.AsyncClient(reconnection=False)
    sio.on("bot_uttered", lambda data: got[name].append(data))
    await sio.connect(url, socketio_path="/socket.io", transports=["polling"])  # aiohttp here: no ws
    await sio.emit("session_request", {"session_id": session, "customer_token": token})
    await asyncio.sleep(1.0)
    metadata = {"customer_token": token, **metadata_extra}
    message = {"message": "recommend me something", "session_id": session, "metadata": metadata}
    await sio.emit("user_uttered", message)
    for _ in range(120):
        await asyncio.sleep(0.25)
        if any(m.get("quick_replies") for m in got[name]):
            break
    await asyncio.sleep(1.0)  # anything after the question
    await sio.disconnect()

async def main():
    await turn("stock", {})
    await turn("smartmkt", {"capabilities": ["smartmkt-cards"]})
    print(json.dumps(got))

asyncio.run(main())
"""


def test_socketio_clients_get_what_they_render(stack: RunningStack) -> None:
    """A stock Rasa client (rasa-webchat, no capabilities declared) gets standard parts only:
    the reply's paragraphs as messages (the list one of them), Rasa's carousel before the offer's
    question and its yes/no as quick replies, and no ``custom`` payload it would render as an
    empty bubble. smartmkt's page (``capabilities: ["smartmkt-cards"]``) gets its cards and no
    carousel (bot/client_replies.py); each of its messages has its own id, so the tabs of one
    chat session keep a message once."""
    stock, ours = signed_in(stack.settings, "42"), signed_in(stack.settings, "42")
    got = in_bot_env(SOCKET_CLIENTS, stack.settings.rasa_url, *stock, *ours)
    stock, ours = got["stock"], got["smartmkt"]
    assert stock and all(set(m) & {"text", "attachment"} for m in stock), stock  # nothing renders empty
    assert not [m for m in stock if "custom" in m], stock
    kinds = [
        "question" if m.get("quick_replies") else "carousel" if "attachment" in m else "text" for m in stock
    ]
    assert kinds[-2:] == ["carousel", "question"], kinds  # the products, then the question that ends the turn
    assert stock[-1]["text"].endswith("Want it?")
    assert [q["payload"] for q in stock[-1]["quick_replies"]] == ["/affirm", "/deny"]
    listed = [m["text"] for m in stock if m.get("text", "").startswith("1. ")]
    assert listed and len(listed[0].split("\n")) == len(stock[-2]["attachment"]["payload"]["elements"])
    assert [m for m in ours if m.get("custom", {}).get("type") == "recommendations"], ours
    assert not [m for m in ours if "attachment" in m], ours
    ids = [m.get("id") for m in ours]
    assert all(isinstance(i, str) and len(i) == 32 for i in ids) and len(set(ids)) == len(ids), ours
    assert not [m for m in stock if "id" in m], stock


def test_the_socket_answers_only_the_allowed_origins(stack: RunningStack) -> None:
    """Rasa's socket.io checks a browser's Origin against SMARTMKT_ALLOWED_ORIGINS (here: only the
    product's own pages); a client that sends none (not a browser) is not refused."""
    handshake = f"{stack.settings.rasa_url}/socket.io/?EIO=4&transport=polling"
    refused = httpx.get(handshake, headers={"Origin": "https://elsewhere.example"}, timeout=10)
    assert refused.status_code == 400 and "not an accepted origin" in refused.text
    assert "access-control-allow-origin" not in refused.headers
    own = stack.settings.resolved_allowed_origins[0]
    assert own == stack.settings.app_url
    allowed = httpx.get(handshake, headers={"Origin": own}, timeout=10)
    assert allowed.status_code == 200 and '"sid"' in allowed.text
    assert allowed.headers.get_list("access-control-allow-origin") == [own]  # once: browsers refuse two
    assert httpx.get(handshake, timeout=10).status_code == 200
