"""Privacy through the running product (the real Rasa, action server and app on the e2e stack):
personal data a customer types reaches the bot in the turn but is stored and shown masked; an
opted-out customer meets no offer on any path; "delete my data", confirmed, leaves nothing of
the customer in any table.

Each test talks as its own new visitor (a guest: no customer token), so the tests do not depend
on each other or on the demo customers other e2e tests talk as."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from privacy_support import assert_nothing_of_the_customer_left, without_chance_digits
from sqlalchemy import Engine, select, text

from smartmkt.console.users import create_user
from smartmkt.runtime.stack import RunningStack
from smartmkt.security.secrets import signed_in
from smartmkt.speech.tts import wav_bytes
from smartmkt.store.db import session_scope
from smartmkt.store.models import Consent, Customer, ErasureAudit, Offer, Order

pytestmark = pytest.mark.e2e

PASSWORD = "privacy e2e password"


def visitor(kind: str) -> str:
    return f"privacy-{kind}-{uuid.uuid4().hex[:8]}"


def say(stack: RunningStack, sender: str, message: str, token: str | None = None) -> list[dict[str, Any]]:
    """``message`` on chat session ``sender``: a guest's, or with ``token`` a signed-in customer's."""
    metadata = {"customer_token": token} if token else {}
    r = httpx.post(
        stack.rest_url, json={"sender": sender, "message": message, "metadata": metadata}, timeout=60
    )
    assert r.status_code == 200, r.text
    replies: list[dict[str, Any]] = r.json()
    assert replies, f"no reply to {message!r}"
    return replies


def text_of(replies: list[dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text", "")) for r in replies)


def custom(replies: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((r["custom"] for r in replies if (r.get("custom") or {}).get("type") == kind), None)


def customer_id(db: Engine, sender: str) -> int | None:
    """The store's customer a visitor's conversation speaks for (the sender id names them, or
    ``guest:<sender id>`` where customer tokens bind customers)."""
    with session_scope(db) as s:
        return s.scalar(select(Customer.id).where(Customer.external_ref.in_([sender, f"guest:{sender}"])))


def stored_events(db: Engine, sender: str) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT * FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender})
        return [dict(r._mapping) for r in rows]


@contextmanager
def console(stack: RunningStack, db: Engine) -> Iterator[httpx.Client]:
    """The console API, logged in as a new admin."""
    email = f"{uuid.uuid4().hex[:8]}@privacy.example"
    create_user(db, email, PASSWORD, "admin")
    with httpx.Client(base_url=stack.settings.app_url, timeout=60) as client:
        login = client.post("/console/api/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield client


# --- masking ---------------------------------------------------------------------------------------
def test_personal_data_reaches_the_bot_but_is_stored_and_shown_masked(
    stack: RunningStack, db: Engine
) -> None:
    sender = visitor("pii")
    asked = say(stack, sender, "recommend a comedy and email me at jane.doe@example.com")
    recs = custom(asked, "recommendations")
    assert recs and recs["products"]  # the bot understood the request around the e-mail address
    kids = say(stack, sender, "a comedy for my kids under $10, call me on 415-555-0132")
    assert custom(kids, "recommendations")
    # replies made in the turn quote what the customer wrote: the actions saw it unmasked
    assert "4111 1111 1111 1111" in text_of(say(stack, sender, "how much is 4111 1111 1111 1111?"))
    assert "221B Baker Street" in text_of(say(stack, sender, "ship it to 221B Baker Street, London NW1 6XE"))

    rows = stored_events(db, sender)
    stored = without_chance_digits(json.dumps(rows))  # every column, but ids and timestamps
    for secret in ("jane", "example.com", "doe", "415-555", "0132", "4111", "Baker", "NW1"):
        assert secret not in stored, secret  # in no column of any event: texts, entities, slots, replies
    said = [json.loads(r["data"])["text"] for r in rows if r["type_name"] == "user"]
    assert said == [
        "recommend a comedy and email me at [EMAIL]",
        "a comedy for my kids under $10, call me on [PHONE]",
        "how much is [CARD]?",
        "ship it to [ADDRESS]",
    ]
    assert [r["intent_name"] for r in rows if r["type_name"] == "user"][:2] == ["ask_recommendation"] * 2

    with console(stack, db) as api:
        for secret in ("jane", "Baker", "4111"):
            assert api.get("/console/api/conversations", params={"q": secret}).json()["items"] == []
        found = api.get("/console/api/conversations", params={"q": "email comedy"}).json()["items"]
        assert sender in [i["sender_id"] for i in found]
        item = next(i for i in found if i["sender_id"] == sender)
        assert item["first_message"] == "recommend a comedy and email me at [EMAIL]"
        transcript = api.get(f"/console/api/conversations/{sender}").json()
    shown = json.dumps(transcript)
    assert "jane" not in shown and "4111" not in shown and "Baker" not in shown
    customer_turns = [t for t in transcript["turns"] if t["speaker"] == "customer"]
    assert [t["text"] for t in customer_turns] == said
    replies = " ".join(t["text"] for t in transcript["turns"] if t["speaker"] == "bot")
    assert '"[CARD]"' in replies and '"[ADDRESS]"' in replies  # what the bot quoted, masked too


# --- consent ---------------------------------------------------------------------------------------
def test_an_opted_out_customer_meets_no_offer_on_any_path(stack: RunningStack, db: Engine) -> None:
    sender = visitor("consent")
    before = custom(say(stack, sender, "recommend me a western"), "recommendations")
    assert before and before["offer"] and before["offer"]["percent_off"] == 15  # the welcome offer
    offer = before["offer"]
    title = next(p["title"] for p in before["products"] if p["id"] == offer["product_id"])
    assert "With your offer" in text_of(say(stack, sender, f"how much is {title}?"))
    deals = custom(say(stack, sender, "any deals for me?"), "offers")
    assert deals and [o["id"] for o in deals["offers"]] == [offer["id"]]

    assert "won't receive marketing" in text_of(say(stack, sender, "stop sending me offers"))
    cid = customer_id(db, sender)
    with session_scope(db) as s:
        consent = s.scalars(select(Consent).where(Consent.customer_id == cid)).one()
        assert (consent.purpose, consent.granted, consent.channel) == ("marketing", False, "text")
        recorded = consent.recorded_at.replace(tzinfo=UTC)
        assert datetime.now(UTC) - recorded < timedelta(minutes=5)
        assert s.get(Offer, offer["id"]).status == "withdrawn"  # type: ignore[union-attr]

    # every offer path: the deals question, the price, a new recommendation, a purchase
    assert "opted out" in text_of(say(stack, sender, "any deals for me?"))
    price = text_of(say(stack, sender, f"how much is {title}?"))
    assert title.split(",")[0] in price and "offer" not in price
    after = custom(say(stack, sender, "recommend me a comedy"), "recommendations")
    assert after and after["products"] and after["offer"] is None
    assert custom(say(stack, sender, "something from the 90s"), "recommendations")["offer"] is None  # type: ignore[index]
    bought = custom(say(stack, sender, f"buy {title}"), "order")
    assert bought and bought["discount_pct"] == 0
    with session_scope(db) as s:
        assert [o.id for o in s.scalars(select(Offer).where(Offer.customer_id == cid))] == [offer["id"]]
        order = s.scalars(select(Order).where(Order.customer_id == cid)).one()
        assert order.offer_id is None and order.discount_pct == 0
        assert order.amount_cents == order.unit_price_cents  # full price


def test_opting_out_by_voice_records_the_voice_channel(stack: RunningStack, db: Engine) -> None:
    sender = visitor("voice")
    spoken = httpx.post(
        f"{stack.settings.app_url}/voice",
        files={"audio": ("optout.wav", wav_bytes("please stop sending me offers"), "audio/wav")},
        data={"sender": sender},
        timeout=120,
    )
    assert spoken.status_code == 200, spoken.text
    assert "won't receive marketing" in " ".join(str(r.get("text", "")) for r in spoken.json()["responses"])
    with session_scope(db) as s:
        consent = s.scalars(select(Consent).where(Consent.customer_id == customer_id(db, sender))).one()
        assert (consent.granted, consent.channel) == (False, "voice")


# --- erasure ---------------------------------------------------------------------------------------
def test_delete_my_data_after_confirmation_leaves_nothing_of_the_customer(
    stack: RunningStack, db: Engine, tmp_path: Path
) -> None:
    sender, marker = visitor("erase"), "glimmerquux"
    recs = custom(say(stack, sender, "recommend me a western"), "recommendations")
    assert recs and recs["offer"]
    assert "with 15% off" in text_of(say(stack, sender, "yes"))  # bought at the offer's price
    assert "won't receive marketing" in text_of(say(stack, sender, "stop sending me offers"))
    assert custom(say(stack, sender, f"recommend a comedy like {marker} movies"), "recommendations")
    cid = customer_id(db, sender)
    assert cid is not None
    with console(stack, db) as api:  # the console indexes the conversation; a marketer reviews a message
        transcript = api.get(f"/console/api/conversations/{sender}").json()
        event_id = next(t["event_id"] for t in transcript["turns"] if marker in t["text"])
        review = api.post(
            "/console/api/nlu-reviews",
            json={"event_id": event_id, "text": f"comedy like {marker}", "intent": "ask_recommendation"},
        )
        assert review.status_code == 201, review.text
        with session_scope(db) as s:
            orders = s.scalars(select(Order.id).where(Order.customer_id == cid)).all()
        assert len(orders) == 1

        assert "cannot be undone" in text_of(say(stack, sender, "please delete all my data"))
        assert "deleted" in text_of(say(stack, sender, "yes"))
        time.sleep(1)  # Rasa has saved the turn by the time it answers; nothing may come back
        assert stored_events(db, sender) == []
        assert_nothing_of_the_customer_left(db, (cid,), (sender,), (marker,))
        assert api.get(f"/console/api/conversations/{sender}").status_code == 404
        assert api.get("/console/api/conversations", params={"q": marker}).json()["items"] == []
    with session_scope(db) as s:
        order = s.get(Order, orders[0])
        assert order is not None and order.customer_id is None and order.offer_id is None  # kept, unlinked
        audit = s.scalars(select(ErasureAudit).order_by(ErasureAudit.id.desc())).first()
        assert audit is not None and audit.requested_by == "customer:text"
        assert audit.rows_deleted["customers"] == 1 and audit.rows_deleted["events"] > 0
        assert audit.rows_deleted["nlu_reviews"] == 1 and audit.rows_deleted["conversations"] == 1

    # the same visitor coming back is a new customer in a new conversation
    again = text_of(say(stack, sender, "hi"))
    assert "Welcome back" not in again
    assert all(marker not in json.dumps(e) for e in stored_events(db, sender))


def test_erasure_in_one_session_erases_the_customers_other_sessions(stack: RunningStack, db: Engine) -> None:
    """A signed-in customer chats in two sessions (two devices); "delete my data" in one of them
    erases both: the index knows both sessions under the customer's reference."""
    ref, marker = f"privacy-token-{uuid.uuid4().hex[:8]}", "vorpalquince"
    phone, laptop = signed_in(stack.settings, ref), signed_in(stack.settings, ref)
    assert custom(say(stack, phone[0], f"recommend a {marker} comedy", phone[1]), "recommendations")
    assert custom(say(stack, laptop[0], "recommend me a western", laptop[1]), "recommendations")
    cid = customer_id(db, ref)
    assert cid is not None and stored_events(db, phone[0]) and stored_events(db, laptop[0])
    assert "cannot be undone" in text_of(say(stack, laptop[0], "delete my data", laptop[1]))
    assert "deleted" in text_of(say(stack, laptop[0], "yes", laptop[1]))
    assert stored_events(db, phone[0]) == [] and stored_events(db, laptop[0]) == []
    assert_nothing_of_the_customer_left(db, (cid,), (ref, phone[0], laptop[0]), (marker,))


def test_cancelled_erasure_keeps_everything(stack: RunningStack, db: Engine) -> None:
    sender = visitor("keep")
    assert custom(say(stack, sender, "recommend me a western"), "recommendations")
    assert "cannot be undone" in text_of(say(stack, sender, "delete my data"))
    assert "haven't deleted anything" in text_of(say(stack, sender, "no"))
    assert customer_id(db, sender) is not None
    assert len([e for e in stored_events(db, sender) if e["type_name"] == "user"]) == 3
