"""The console over the running product: a customer talks to the real Rasa (typing, then
speaking), Rasa's SQL tracker store writes the events into the store's database, and the
console API of the running app finds the conversation by its filters, with its intent, its
channel and the offer the bot made."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import espeak_wav
from sqlalchemy import Engine, inspect

from smartmkt.console.users import create_user
from smartmkt.runtime.stack import RunningStack

pytestmark = pytest.mark.e2e

SENDER = "console-e2e-visitor"
PASSWORD = "console e2e password"


def say(stack: RunningStack, message: str) -> list[dict[str, object]]:
    r = httpx.post(stack.rest_url, json={"sender": SENDER, "message": message}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_a_real_conversation_is_found_in_the_console(stack: RunningStack, db: Engine, tmp_path: Path) -> None:
    assert (
        "what kind of movie"
        in " ".join(str(r.get("text", "")) for r in say(stack, "can you recommend a movie?")).lower()
    )
    replies = say(stack, "westerns")
    payload = next(r["custom"] for r in replies if isinstance(r.get("custom"), dict))
    offer = payload["offer"]  # type: ignore[index]
    assert offer and offer["percent_off"] == 15  # the welcome offer for a new customer
    wav = espeak_wav(tmp_path / "ask.wav", "can you recommend a comedy under ten dollars")
    spoken = httpx.post(
        f"{stack.settings.app_url}/voice",
        files={"audio": ("ask.wav", wav.read_bytes(), "audio/wav")},
        data={"sender": SENDER},
        timeout=120,
    )
    assert spoken.status_code == 200, spoken.text
    assert set(inspect(db).get_table_names()) >= {"events", "console_conversations"}  # one database

    create_user(db, "console-api-e2e@shop.example", PASSWORD, "marketer")
    with httpx.Client(base_url=stack.settings.app_url, timeout=60) as console:
        login = console.post(
            "/console/api/login", json={"email": "console-api-e2e@shop.example", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        found = console.get(
            "/console/api/conversations",
            params={"intent": "ask_recommendation", "offer": "made", "channel": "voice", "q": "westerns"},
        ).json()["items"]
        assert [i["sender_id"] for i in found] == [SENDER]
        item = found[0]
        assert item["turns"] == 3 and item["voice_turns"] == 1 and item["offers_made"] >= 1
        assert (
            "ask_recommendation" in item["intents"] and item["first_message"] == "can you recommend a movie?"
        )
        transcript = console.get(f"/console/api/conversations/{SENDER}").json()
    customer = [t for t in transcript["turns"] if t["speaker"] == "customer"]
    assert customer[0]["intent"] == "ask_recommendation" and customer[0]["confidence"] > 0.5
    assert customer[1]["text"] == "westerns" and customer[1]["channel"] == "text"
    assert "action_recommend" in customer[1]["actions"]
    assert customer[2]["channel"] == "voice" and "comedy" in customer[2]["text"].lower()
    assert customer[2]["intent"] == "ask_recommendation"
    shown = [t["offer"] for t in transcript["turns"] if t["speaker"] == "bot" and t["offer"]]
    assert shown[0]["id"] == offer["id"] and shown[0]["status"] == "shown" and shown[0]["percent_off"] == 15
    assert shown[0]["title"] and shown[0]["product_id"] == offer["product_id"]
    recommended = next(t for t in transcript["turns"] if t["recommendations"])
    assert [p["id"] for p in recommended["recommendations"]] == [p["id"] for p in payload["products"]]  # type: ignore[index]
