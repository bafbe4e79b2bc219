"""Masking personal data: what is found and what is not (every NLU example and every catalog
title stays as it is), entity spans follow the mask, Rasa's event JSON is masked where customer
words live, and Rasa's own SQL tracker store (in the bot environment) writes only masked rows."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest
import yaml
from privacy_support import without_chance_digits

from smartmkt.lifecycle.kinds import bot_python
from smartmkt.privacy.rasa_events import erasure_confirmed, mask_event, mask_events
from smartmkt.privacy.redact import Redactor, luhn_ok, parse_kinds, parse_regions
from smartmkt.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
R = Redactor()

FOUND = [
    ("mail me at jane.doe+films@example.co.uk please", "mail me at [EMAIL] please"),
    ("my email is JÖRG@müller.de", "my email is [EMAIL]"),
    ("call me on 415-555-0132", "call me on [PHONE]"),
    ("my number is +44 20 7946 0958", "my number is [PHONE]"),
    ("(212) 555-0199 anytime", "[PHONE] anytime"),
    ("call 555-0132 tonight", "call [PHONE] tonight"),
    ("ring 020 7946 0958", "ring [PHONE]"),
    ("06 12 34 56 78", "[PHONE]"),
    ("my card is 4111 1111 1111 1111 thanks", "my card is [CARD] thanks"),
    ("card 4111-1111-1111-1111", "card [CARD]"),
    ("amex 3782 822463 10005", "amex [CARD]"),
    ("5500005555555559", "[CARD]"),
    ("send it to 221B Baker Street, London NW1 6XE", "send it to [ADDRESS]"),
    ("I live at 1600 Pennsylvania Ave NW, Washington, DC 20500, thanks", "I live at [ADDRESS], thanks"),
    ("ship to 12 main st apt 4b", "ship to [ADDRESS]"),
    ("deliver to 350 Fifth Avenue, New York, NY 10118 asap", "deliver to [ADDRESS] asap"),
    ("12 Main St, Springfield, IL 62704", "[ADDRESS]"),
    ("PO Box 1234", "[ADDRESS]"),
    ("Hauptstraße 5, Berlin", "[ADDRESS], Berlin"),
    ("the flat is 5 north elm road", "the flat is [ADDRESS]"),
    ("1 Infinite Loop", "[ADDRESS]"),
    ("mail a@b.co or call +1 650 253 0000", "mail [EMAIL] or call [PHONE]"),
]

KEPT = [
    "a comedy for my kids under $10",
    "Miracle on 34th Street",
    "buy 42nd Street",
    "2 for the road",
    "3 kids under 12",
    "from 1990 to 1999",
    "in 1997 1998 or 1999 please",
    "1. Miracle on 34th Street (1994) — $7.99",
    "order 4111 1111 1111 1112",  # fails the Luhn check: not a card
    "I have 2 kids who love the way you talk",
    "at 10:30 on 3/10/2024",
    "4 stars way too long",
    "price 0.99",
    "my budget is 20 bucks",
]


@pytest.mark.parametrize(("text", "masked"), FOUND)
def test_each_kind_is_masked(text: str, masked: str) -> None:
    assert R.redact(text) == masked
    assert R.redact(masked) == masked  # idempotent


@pytest.mark.parametrize("text", KEPT)
def test_look_alikes_are_kept(text: str) -> None:
    assert R.redact(text) == text


def nlu_examples() -> list[str]:
    texts = []
    for path in [
        *sorted((ROOT / "bot" / "data" / "nlu").glob("*.yml")),
        ROOT / "bot" / "tests" / "nlu_test.yml",
    ]:
        for item in yaml.safe_load(path.read_text()).get("nlu", []):
            for line in str(item.get("examples", "")).splitlines():
                if line.strip().startswith("- "):
                    texts.append(re.sub(r"\[([^\]]*)\](\([^)]*\)|\{[^}]*\})", r"\1", line.strip()[2:]))
    return texts


def test_no_training_example_is_masked() -> None:
    texts = nlu_examples()
    assert len(texts) > 1000
    assert [(t, R.redact(t)) for t in texts if R.redact(t) != t] == []


def test_no_catalog_title_is_masked_in_what_customers_and_the_bot_say(demo_db_template: Path) -> None:
    with sqlite3.connect(demo_db_template) as conn:
        titles = list(conn.execute("SELECT title, year, price_cents FROM products"))
    assert len(titles) == 1682
    changed = [
        said
        for title, year, cents in titles
        for said in (f"how much is {title}?", f"buy {title}", f"1. {title} ({year}) ${cents / 100:.2f}")
        if R.redact(said) != said
    ]
    assert changed == []


def test_configuration() -> None:
    assert parse_kinds("none") == frozenset() and parse_kinds("") == frozenset()
    assert parse_kinds("all") == {"email", "card", "phone", "address"}
    assert parse_kinds("email, phone") == {"email", "phone"}
    with pytest.raises(ValueError, match="ssn"):
        parse_kinds("email,ssn")
    assert parse_regions("us, gb") == ("US", "GB")
    with pytest.raises(ValueError):
        parse_regions("USA")
    only_email = Redactor(["email"])
    assert only_email.redact("a@b.co 415-555-0132") == "[EMAIL] 415-555-0132"
    assert Redactor([]).redact("a@b.co") == "a@b.co"
    with pytest.raises(ValueError):
        Settings(redact="email,passport")
    # a second region's valid numbers, without the "+"
    assert Redactor(phone_regions=["US", "GB"]).redact("07911 123456") == "[PHONE]"
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")


def test_entity_spans_follow_the_mask() -> None:
    text = "mail jane@example.com a comedy"
    redaction = R.redaction(text)
    assert redaction.text == "mail [EMAIL] a comedy"
    entities = [
        {"entity": "category", "value": "comedy", "start": 24, "end": 30},
        {"entity": "product", "value": "jane@example.com", "start": 5, "end": 21},
        {"entity": "product", "value": "example", "start": 10, "end": 17},  # inside the e-mail
    ]
    moved = R.mask_entities(redaction, entities)
    assert moved[0] == {"entity": "category", "value": "comedy", "start": 15, "end": 21}
    assert redaction.text[15:21] == "comedy"
    assert moved[1] == {"entity": "product", "value": "[EMAIL]", "start": 5, "end": 12}
    assert moved[2]["value"] == "[EMAIL]"
    assert entities[1]["value"] == "jane@example.com"  # the caller's entities are not changed


def test_rasa_events_are_masked_where_customer_words_live() -> None:
    text = "I'm at 12 Baker Street, card 4111 1111 1111 1111"
    user = {
        "event": "user",
        "timestamp": 1.0,
        "metadata": {"channel": "voice", "model_id": "0123456789", "customer": {"ref": "42"}, "note": text},
        "text": text,
        "parse_data": {
            "intent": {"name": "inform_preference", "confidence": 0.9},
            "entities": [{"entity": "product", "value": "12 Baker Street", "start": 7, "end": 22}],
            "text": text,
            "message_id": "5551234567",
            "metadata": {"channel": "voice"},
        },
        "input_channel": "rest",
        "message_id": "5551234567",
    }
    masked = mask_event(user, R)
    assert masked["text"] == masked["parse_data"]["text"] == "I'm at [ADDRESS], card [CARD]"
    assert masked["parse_data"]["entities"][0] | {} == {
        "entity": "product",
        "value": "[ADDRESS]",
        "start": 7,
        "end": 16,
    }
    assert masked["metadata"] == {
        "channel": "voice",
        "model_id": "0123456789",
        "customer": {"ref": "42"},
        "note": "I'm at [ADDRESS], card [CARD]",
    }
    assert masked["message_id"] == masked["parse_data"]["message_id"] == "5551234567"  # identifiers stay
    assert masked["parse_data"]["intent"] == user["parse_data"]["intent"]
    assert user["text"] == text  # the event itself is untouched
    bot = {"event": "bot", "text": 'I couldn\'t find "a@b.co"', "data": {"custom": {"title": "1-900"}}}
    assert mask_event(bot, R) == {**bot, "text": 'I couldn\'t find "[EMAIL]"'}
    slot = {"event": "slot", "name": "category", "value": ["a@b.co", "comedy"]}
    assert mask_event(slot, R)["value"] == ["[EMAIL]", "comedy"]
    entities = {"event": "entities", "entities": [{"entity": "product", "value": "call 415-555-0132"}]}
    assert mask_event(entities, R)["entities"][0]["value"] == "call [PHONE]"
    action = {"event": "action", "name": "utter_x", "action_text": "a@b.co"}
    assert mask_event(action, R)["action_text"] == "[EMAIL]"
    assert mask_event(user, Redactor([])) == user  # masking off


def test_a_turns_slots_and_replies_lose_what_the_message_held() -> None:
    """The NLU may cut an entity out of an e-mail address ("doe"); the slot it fills and a reply
    quoting it are masked in the same turn."""
    text = "recommend a comedy and email me at jane.doe@example.com"
    turn = [
        {
            "event": "user",
            "text": text,
            "parse_data": {
                "text": text,
                "entities": [{"entity": "product", "value": "doe", "start": 40, "end": 43}],
            },
        },
        {"event": "slot", "name": "product", "value": "doe"},
        {"event": "bot", "text": 'I couldn\'t find "doe", but it does not matter'},
        {"event": "bot", "text": "write to jane.doe@example.com"},
    ]
    user, slot, reply, echo = mask_events(turn, R)
    assert user["text"] == "recommend a comedy and email me at [EMAIL]"
    assert user["parse_data"]["entities"][0] == {
        "entity": "product",
        "value": "[EMAIL]",
        "start": 35,
        "end": 42,
    }
    assert slot["value"] == "[EMAIL]"
    assert reply["text"] == 'I couldn\'t find "[EMAIL]", but it does not matter'
    assert echo["text"] == "write to [EMAIL]"
    assert mask_events(turn[1:3], R) == turn[1:3]  # without the message, "doe" is not known to hide


def test_erasure_marker() -> None:
    erased = [{"event": "action", "name": "action_erase_data"}, {"event": "bot"}, {"event": "reset_slots"}]
    assert erasure_confirmed(erased)
    cancelled = [
        {"event": "action", "name": "action_erase_data"},
        {"event": "slot", "name": "erasure_confirmed"},
    ]
    assert not erasure_confirmed(cancelled)
    elsewhere = [{"event": "action", "name": "action_restart"}, {"event": "reset_slots"}]
    assert not erasure_confirmed(elsewhere)


BOT_STORE_SCRIPT = r"""
import asyncio, json, sys
import redacting_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, AllSlotsReset, BotUttered, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

url, text = sys.argv[1], sys.argv[2]
store = redacting_store.RedactingSQLTrackerStore(domain=Domain.load("domain.yml"), host=url)
entity = {"entity": "product", "value": "jane", "start": 11, "end": 15}  # cut out of the e-mail
parse = {"text": text, "intent": {"name": "ask_price", "confidence": 0.9}, "entities": [entity]}
tracker = DialogueStateTracker("customer-1", store.domain.slots)
tracker.update(UserUttered(text, parse["intent"], [entity], parse_data=parse, metadata={"channel": "text"}))
tracker.update(ActionExecuted("action_price"))
tracker.update(SlotSet("product", "jane"))
tracker.update(BotUttered('I couldn\'t find "jane"'))
tracker.update(ActionExecuted("action_listen"))
asyncio.run(store.save(tracker))
seen = tracker.latest_message.text  # the turn in memory keeps what the customer wrote
back = asyncio.run(store.retrieve("customer-1")).latest_message.text
asyncio.run(store.save(tracker))  # nothing new: nothing written twice
tracker.update(UserUttered("no", {"name": "deny", "confidence": 0.9}))
tracker.update(ActionExecuted("action_erase_data"))
tracker.update(SlotSet("erasure_confirmed", False))
asyncio.run(store.save(tracker))  # cancelled: stored as usual
other = DialogueStateTracker("customer-2", store.domain.slots)
other.update(UserUttered("delete my data", {"name": "delete_my_data", "confidence": 0.9}))
other.update(ActionExecuted("action_erase_data"))
other.update(BotUttered("Your personal data has been deleted"))
other.update(AllSlotsReset())
asyncio.run(store.save(other))  # confirmed erasure: nothing of the conversation is written
print(json.dumps({"seen": seen, "back": back}))
"""


def test_rasas_sql_tracker_store_writes_masked_rows(tmp_path: Path) -> None:
    """Rasa 3.6's own SQLTrackerStore.save and retrieve, through bot/redacting_store.py."""
    db = tmp_path / "tracker.db"
    text = "my mail is jane@example.com, call 415-555-0132"
    done = subprocess.run(
        [str(bot_python(Settings())), "-c", BOT_STORE_SCRIPT, f"sqlite:///{db}", text],
        cwd=ROOT / "bot",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SQLALCHEMY_SILENCE_UBER_WARNING": "1", "SMARTMKT_REDACT": "all"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["seen"] == text
    assert result["back"] == "my mail is [EMAIL], call [PHONE]"
    with sqlite3.connect(db) as conn:
        rows = list(conn.execute("SELECT sender_id, type_name, intent_name, action_name, data FROM events"))
    assert {r[0] for r in rows} == {"customer-1"}  # the erased conversation wrote nothing
    everything = without_chance_digits(json.dumps(rows))  # a timestamp may hold "415" by chance
    assert "jane" not in everything and "415" not in everything and "0132" not in everything
    user = json.loads(next(r[4] for r in rows if r[1] == "user"))
    assert user["parse_data"]["entities"][0] | {"confidence_entity": None} == {
        "entity": "product",
        "value": "[EMAIL]",
        "start": 11,
        "end": 18,
        "confidence_entity": None,
    }
    slot = json.loads(next(r[4] for r in rows if r[1] == "slot" and r[3] == "product"))
    assert slot["value"] == "[EMAIL]"
    assert next(r[2] for r in rows if r[1] == "user") == "ask_price"  # the columns beside data are Rasa's
    assert [r[1] for r in rows].count("user") == 2  # saved twice, written once; the cancelled turn kept
