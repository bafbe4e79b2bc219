"""The marketer console's JSON API against the real app (FastAPI TestClient) and a real SQLite
store holding the demo data, real offers, and conversations written to Rasa's ``events`` table
in the format Rasa's SQL tracker store writes (smartmkt.bench.rasa_events)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text, update

from smartmkt.bench import rasa_events as rasa
from smartmkt.console.users import create_user
from smartmkt.settings import Settings
from smartmkt.store.models import ConsoleSession, Offer, Product
from smartmkt.store.repository import StoreRepository
from smartmkt.web.app import create_app

PASSWORD = "correct horse battery"
DAY1, DAY2, DAY3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 5)
HTML = "<img src=x onerror=alert(1)>"
SQL = "'; DROP TABLE events; --"
FILLERS = 60
# Cells a spreadsheet would run, in the first messages of four fillers
FORMULAS = ('=HYPERLINK("http://evil.example")', "+1+2", "-3+4", "@SUM(A1:A9)")


def at(day: date, seconds: float = 0.0) -> float:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC).timestamp() + seconds


def recommend_reply(
    offer_id: int | None, product_id: int = 94, percent: int = 10
) -> tuple[str, dict[str, Any]]:
    offer = (
        {"id": offer_id, "product_id": product_id, "percent_off": percent, "price": 7.99, "offer_price": 7.19}
        if offer_id
        else None
    )
    products = [
        {"id": product_id, "title": "Home Alone", "price": 7.99},
        {"id": 1197, "title": "A Family Thing", "price": 2.99},
    ]
    return "Here are my picks for you: 1. Home Alone ...", rasa.recommendations(products, offer)


@dataclass
class World:
    client: TestClient
    engine: Engine
    settings: Settings
    offers: dict[str, int]
    event_ids: dict[str, int]

    def login(self, email: str = "admin@shop.example") -> str:
        r = self.client.post("/console/api/login", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return str(r.json()["csrf_token"])

    def senders(self, **params: Any) -> set[str]:
        r = self.client.get("/console/api/conversations", params={"limit": 200, **params})
        assert r.status_code == 200, r.text
        assert r.json()["next_cursor"] is None
        return {item["sender_id"] for item in r.json()["items"]}


def seed(engine: Engine) -> tuple[dict[str, int], list[dict[str, Any]]]:
    repo = StoreRepository(engine)
    accepted = repo.create_offer("42", 94, 10, "nudge", "nudge", {}, "text", timedelta(days=7))
    repo.record_purchase("42", 94, "text")
    declined = repo.create_offer("43", 94, 20, "win back", "win_back", {}, "voice", timedelta(days=7))
    repo.decline_offer("43", declined.id)
    rows: list[dict[str, Any]] = []
    text_conv = rasa.Conversation("42", at(DAY1))
    text_conv.turn("hi", "greet", 0.95, actions=["action_greet"], replies=[("Welcome back!", None)])
    text_conv.turn(
        "a comedy for my kids",
        "ask_recommendation",
        0.91,
        entities=[{"entity": "category", "value": "comedy", "start": 2, "end": 8}],
        actions=["recommendation_form", "action_recommend"],
        replies=[recommend_reply(accepted.id)],
    )
    text_conv.turn(
        "yes", "affirm", 0.92, actions=["action_purchase"], replies=[("Done! I've ordered Home Alone.", None)]
    )
    voice_conv = rasa.Conversation("43", at(DAY2))
    voice_conv.turn(
        "something scary under ten dollars",
        "ask_recommendation",
        0.88,
        channel="voice",
        actions=["action_recommend"],
        replies=[recommend_reply(declined.id, 94, 20)],
    )
    voice_conv.turn(
        "no thanks",
        "deny",
        0.9,
        channel="voice",
        actions=["action_decline_offer"],
        replies=[("No problem.", None)],
    )
    unsure = rasa.Conversation("44", at(DAY3))
    unsure.turn(
        "flurb zongle",
        "nlu_fallback",
        0.31,
        actions=["utter_please_rephrase"],
        replies=[("Could you say it another way?", None)],
    )
    unsure.turn(
        "blorp",
        "out_of_scope",
        0.6,
        actions=["action_default_fallback"],
        replies=[("Sorry, I lost track.", None)],
    )
    odd = rasa.Conversation("45", at(DAY3, 60))
    odd.turn(
        HTML,
        "out_of_scope",
        0.8,
        actions=["utter_out_of_scope"],
        replies=[("That's outside what I can help with.", None)],
    )
    odd.turn(SQL, "out_of_scope", 0.81, actions=["utter_out_of_scope"], replies=[(f"<b>{HTML}</b>", None)])
    for conv in (text_conv, voice_conv, unsure, odd):
        rows += conv.rows
    for i in range(FILLERS):
        # pairs share their last event's time exactly: the cursor must break the tie by sender
        filler = rasa.Conversation(f"filler-{i:03d}", at(DAY1, 3600 + (i // 2) * 60))
        message = FORMULAS[i] if i < len(FORMULAS) else f"what is on sale today number {i}"
        filler.turn(
            message,
            "ask_offers",
            0.97,
            actions=["action_show_offers"],
            replies=[("No offers right now.", None)],
            pause=1,
        )
        rows += filler.rows
    return {"accepted": accepted.id, "declined": declined.id}, rows


@pytest.fixture
def world(demo_engine: Engine, demo_db: Path, base_settings: Settings) -> Iterator[World]:
    create_user(demo_engine, "admin@shop.example", PASSWORD, "admin")
    create_user(demo_engine, "mia@shop.example", PASSWORD, "marketer")
    offers, rows = seed(demo_engine)
    with demo_engine.begin() as conn:
        rasa.write(conn, rows)
        ids = {
            row.data_text: row.id
            for row in conn.execute(
                text(
                    "SELECT id, json_extract(data, '$.text') AS data_text FROM events WHERE type_name='user'"
                )
            )
        }
    settings = base_settings.model_copy(
        update={"database_url": f"sqlite:///{demo_db}", "tracker_url": "", "tracker_db": ""}
    )
    client = TestClient(create_app(settings))  # no lifespan: the console needs no NLU model
    yield World(client, demo_engine, settings, offers, ids)
    client.close()


# --- sessions, CSRF, roles ---------------------------------------------------------------------
def test_login_sets_a_strict_http_only_cookie_and_me_logout_work(world: World) -> None:
    c = world.client
    r = c.post("/console/api/login", json={"email": "Admin@Shop.example", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {"email": "admin@shop.example", "role": "admin"} and len(body["csrf_token"]) >= 32
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("smartmkt_session=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/", "Max-Age=28800"):
        assert attribute.lower() in cookie.lower(), cookie
    assert "secure" not in cookie.lower()
    token = cookie.split(";")[0].split("=", 1)[1]
    with world.engine.connect() as conn:  # only a hash of the token is stored
        stored = conn.scalar(select(ConsoleSession.token_hash))
    assert stored and token not in stored and len(stored) == 64
    me = c.get("/console/api/me")
    assert me.status_code == 200 and me.json() == {
        "email": "admin@shop.example",
        "role": "admin",
        "csrf_token": body["csrf_token"],
    }
    assert c.post("/console/api/logout").status_code == 403  # no CSRF token
    out = c.post("/console/api/logout", headers={"X-CSRF-Token": body["csrf_token"]})
    assert out.status_code == 204 and 'smartmkt_session=""' in out.headers["set-cookie"]
    c.cookies.set("smartmkt_session", token)  # the old cookie, replayed, is dead
    assert c.get("/console/api/me").status_code == 401
    with world.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(ConsoleSession)) == 0


def test_secure_cookie_when_configured(world: World) -> None:
    client = TestClient(create_app(world.settings.model_copy(update={"console_secure_cookie": True})))
    r = client.post("/console/api/login", json={"email": "mia@shop.example", "password": PASSWORD})
    assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()


@pytest.mark.parametrize(
    ("email", "password"),
    [("admin@shop.example", "wrong password!"), ("nobody@shop.example", PASSWORD), ("", "")],
)
def test_wrong_logins_get_the_same_401(world: World, email: str, password: str) -> None:
    r = world.client.post("/console/api/login", json={"email": email, "password": password})
    assert r.status_code == 401 and r.json() == {"error": "wrong e-mail or password"}
    assert "set-cookie" not in r.headers


def test_a_session_expires(world: World) -> None:
    world.login("mia@shop.example")
    assert world.client.get("/console/api/me").status_code == 200
    with world.engine.begin() as conn:
        conn.execute(update(ConsoleSession).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = world.client.get("/console/api/conversations")
    assert r.status_code == 401 and r.json() == {"error": "log in first"}
    with world.engine.connect() as conn:  # the expired session is gone
        assert conn.scalar(select(func.count()).select_from(ConsoleSession)) == 0


ENDPOINTS = [
    ("POST", "/console/api/logout"),
    ("GET", "/console/api/me"),
    ("GET", "/console/api/conversations"),
    ("GET", "/console/api/conversations.csv"),
    ("GET", "/console/api/conversations/42"),
    ("GET", "/console/api/dashboard"),
    ("GET", "/console/api/nlu-reviews"),
    ("POST", "/console/api/nlu-reviews"),
    ("GET", "/console/api/users"),
    ("POST", "/console/api/users"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_but_login_needs_a_session(world: World, method: str, path: str) -> None:
    r = world.client.request(method, path, json={} if method == "POST" else None)
    assert r.status_code == 401 and r.json() == {"error": "log in first"}
    world.client.cookies.set("smartmkt_session", "forged-token")
    assert world.client.request(method, path, json={} if method == "POST" else None).status_code == 401


@pytest.mark.parametrize("header", [None, "", "wrong-token"])
def test_unsafe_requests_need_the_sessions_csrf_token(world: World, header: str | None) -> None:
    csrf = world.login()
    headers = {} if header is None else {"X-CSRF-Token": header}
    review = {"event_id": world.event_ids["hi"], "text": "hi", "intent": "greet", "entities": []}
    new_user = {"email": "new@shop.example", "password": PASSWORD, "role": "marketer"}
    for path, body in (
        ("/console/api/nlu-reviews", review),
        ("/console/api/users", new_user),
        ("/console/api/logout", None),
    ):
        r = world.client.post(path, json=body, headers=headers)
        assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"], (path, r.text)
    # another session's token does not do either
    other = TestClient(create_app(world.settings))
    other_csrf = other.post(
        "/console/api/login", json={"email": "mia@shop.example", "password": PASSWORD}
    ).json()["csrf_token"]
    assert (
        world.client.post(
            "/console/api/nlu-reviews", json=review, headers={"X-CSRF-Token": other_csrf}
        ).status_code
        == 403
    )
    assert (
        world.client.post("/console/api/nlu-reviews", json=review, headers={"X-CSRF-Token": csrf}).status_code
        == 201
    )


def test_only_admins_manage_users(world: World) -> None:
    csrf = world.login("mia@shop.example")
    assert world.client.get("/console/api/users").status_code == 403
    body = {"email": "eve@shop.example", "password": PASSWORD, "role": "admin"}
    r = world.client.post("/console/api/users", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and r.json() == {"error": "only an admin can do this"}
    csrf = world.login("admin@shop.example")
    made = world.client.post("/console/api/users", json=body, headers={"X-CSRF-Token": csrf})
    assert (
        made.status_code == 201
        and made.json()["email"] == "eve@shop.example"
        and made.json()["role"] == "admin"
    )
    listed = world.client.get("/console/api/users").json()["items"]
    assert {u["email"] for u in listed} == {"admin@shop.example", "mia@shop.example", "eve@shop.example"}
    assert all("password" not in str(u) and "argon2" not in str(u) for u in listed)
    for bad in (
        body,
        {**body, "email": "x@y.example", "password": "short"},
        {**body, "email": "z@y.example", "role": "owner"},
    ):
        r = world.client.post("/console/api/users", json=bad, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 400 and r.json()["error"], r.text


# --- the conversation list -----------------------------------------------------------------------
ALL = {"42", "43", "44", "45", *(f"filler-{i:03d}" for i in range(FILLERS))}


def test_each_filter_narrows_the_list(world: World) -> None:
    world.login("mia@shop.example")
    assert world.senders() == ALL
    fillers = ALL - {"42", "43", "44", "45"}
    assert world.senders(channel="voice") == {"43"}
    assert world.senders(channel="text") == ALL - {"43"}
    assert world.senders(intent="ask_recommendation") == {"42", "43"}
    assert world.senders(intent="nlu_fallback") == {"44"}
    assert world.senders(offer="made") == {"42", "43"}
    assert world.senders(offer="accepted") == {"42"}
    assert world.senders(offer="declined") == {"43"}
    assert world.senders(low_confidence="true") == {"44"}  # 0.31 and 0.6 < 0.7; the rest is above
    assert world.senders(low_confidence="false") == ALL
    assert world.senders(fallback="true") == {"44"}
    assert world.senders(customer="42") == {"42"}
    assert world.senders(**{"from": DAY2.isoformat()}) == {"43", "44", "45"}
    assert world.senders(to=DAY2.isoformat()) == {"42", "43"} | fillers
    assert world.senders(**{"from": DAY2.isoformat(), "to": DAY2.isoformat()}) == {"43"}
    assert world.senders(**{"from": "2026-03-04", "to": "2026-03-04"}) == set()
    assert world.senders(q="comedy") == {"42"}
    assert world.senders(q="COMEDY kids") == {"42"}
    assert world.senders(q="com") == {"42"}  # a word's beginning
    assert world.senders(q="comedy scary") == set()  # every word must be there
    assert world.senders(q="sale number 7") == {"filler-007"}
    assert world.senders(channel="text", offer="made", q="kids") == {"42"}
    assert world.senders(channel="voice", offer="accepted") == set()


def test_pages_follow_each_other_without_gaps_or_repeats(world: World) -> None:
    world.login("mia@shop.example")
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        r = world.client.get("/console/api/conversations", params=params)
        assert r.status_code == 200
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert pages == -(-len(ALL) // 7)
    senders = [item["sender_id"] for item in seen]
    assert len(senders) == len(set(senders)) == len(ALL) and set(senders) == ALL
    order = [(item["last_event_at"], item["sender_id"]) for item in seen]
    assert order == sorted(order, reverse=True)
    assert len({item["last_event_at"] for item in seen}) < len(seen)  # ties were crossed
    # a filter pages the same way
    first = world.client.get("/console/api/conversations", params={"limit": 5, "intent": "ask_offers"}).json()
    second = world.client.get(
        "/console/api/conversations",
        params={"limit": 5, "intent": "ask_offers", "cursor": first["next_cursor"]},
    ).json()
    assert not {i["sender_id"] for i in first["items"]} & {i["sender_id"] for i in second["items"]}


def test_a_list_item_says_what_happened(world: World) -> None:
    world.login("mia@shop.example")
    items = world.client.get("/console/api/conversations", params={"customer": "42"}).json()["items"]
    assert items == [
        {
            "sender_id": "42",
            "customer_ref": "42",
            "started_at": datetime.fromtimestamp(at(DAY1), UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "last_event_at": items[0]["last_event_at"],
            "turns": 3,
            "voice_turns": 0,
            "intents": ["affirm", "ask_recommendation", "greet"],
            "min_confidence": 0.91,
            "fallback": False,
            "offers_made": 1,
            "offers_accepted": 1,
            "offers_declined": 0,
            "first_message": "hi",
        }
    ]
    assert items[0]["last_event_at"].endswith("Z") and items[0]["last_event_at"] > items[0]["started_at"]
    voice = world.client.get("/console/api/conversations", params={"customer": "43"}).json()["items"][0]
    assert voice["voice_turns"] == voice["turns"] == 2 and voice["offers_declined"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"channel": "fax"},
        {"offer": "maybe"},
        {"low_confidence": "yes"},
        {"fallback": "1"},
        {"from": "2026-13-01"},
        {"from": "27/11/2026"},
        {"to": "2026-02-30"},
        {"from": "2026-03-05", "to": "2026-03-01"},
        {"limit": "0"},
        {"limit": "201"},
        {"limit": "ten"},
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4Il0"},
        {"sort": "sender_id"},
        {"intent": "x" * 256},
        {"q": "y" * 201},
    ],
)
def test_bad_filters_are_a_400_that_says_why(world: World, params: dict[str, str]) -> None:
    world.login("mia@shop.example")
    for path in ("/console/api/conversations", "/console/api/conversations.csv"):
        if path.endswith(".csv") and set(params) & {"limit", "cursor"}:
            continue  # the CSV takes every row: no paging parameters at all
        r = world.client.get(path, params=params)
        assert r.status_code == 400 and isinstance(r.json()["error"], str) and r.json()["error"], (
            path,
            r.text,
        )


def test_a_repeated_parameter_is_a_400(world: World) -> None:
    world.login("mia@shop.example")
    r = world.client.get("/console/api/conversations?channel=text&channel=voice")
    assert r.status_code == 400 and "more than once" in r.json()["error"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"q": SQL}, {"45"}),  # the words drop, table, events: found as text in 45's message
        ({"q": "' OR '1'='1"}, set()),
        ({"q": "%"}, set()),
        ({"q": "_"}, set()),
        ({"q": '" OR *'}, set()),
        ({"q": 'comedy" OR "x'}, set()),
        ({"intent": "x' OR '1'='1"}, set()),
        ({"intent": "greet' --"}, set()),
        ({"customer": "42 OR 1=1"}, set()),
        ({"customer": "42'; DELETE FROM console_conversations; --"}, set()),
    ],
)
def test_sql_looking_values_are_plain_text(world: World, params: dict[str, str], expected: set[str]) -> None:
    world.login("mia@shop.example")
    assert world.senders(**params) == expected
    with world.engine.connect() as conn:  # nothing was run
        assert conn.scalar(text("SELECT count(*) FROM events")) > 0
        assert conn.scalar(text("SELECT count(*) FROM console_conversations")) == len(ALL)


# --- CSV -------------------------------------------------------------------------------------------
def test_csv_has_every_filtered_row_and_no_formulas(world: World) -> None:
    world.login("mia@shop.example")
    r = world.client.get("/console/api/conversations.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["sender_id", "customer_ref", "started_at"] and "first_message" in rows[0]
    assert {row[0] for row in rows[1:]} == ALL and len(rows) == len(ALL) + 1
    first = rows[0].index("first_message")
    messages = {row[0]: row[first] for row in rows[1:]}
    for i, formula in enumerate(FORMULAS):
        assert messages[f"filler-{i:03d}"] == "'" + formula
    assert messages["45"] == HTML
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    voice = list(
        csv.reader(
            io.StringIO(world.client.get("/console/api/conversations.csv", params={"channel": "voice"}).text)
        )
    )
    assert [row[0] for row in voice[1:]] == ["43"]
    intents = voice[0].index("intents")
    assert voice[1][intents] == "ask_recommendation deny"


# --- one conversation --------------------------------------------------------------------------------
def test_a_transcript_shows_each_turn(world: World) -> None:
    world.login("mia@shop.example")
    r = world.client.get("/console/api/conversations/42")
    assert r.status_code == 200
    body = r.json()
    assert body["sender_id"] == "42" and body["customer_ref"] == "42"
    speakers = [(t["speaker"], t["text"]) for t in body["turns"]]
    assert speakers == [
        ("customer", "hi"),
        ("bot", "Welcome back!"),
        ("customer", "a comedy for my kids"),
        ("bot", "Here are my picks for you: 1. Home Alone ..."),
        ("customer", "yes"),
        ("bot", "Done! I've ordered Home Alone."),
    ]
    ask = body["turns"][2]
    assert ask["intent"] == "ask_recommendation" and ask["confidence"] == 0.91 and ask["channel"] == "text"
    assert ask["entities"] == [{"entity": "category", "value": "comedy", "start": 2, "end": 8, "role": None}]
    assert ask["actions"] == ["recommendation_form", "action_recommend"]
    assert ask["event_id"] == world.event_ids["a comedy for my kids"]
    reply = body["turns"][3]
    assert reply["actions"] == ["action_recommend"] and reply["intent"] is None
    assert reply["recommendations"] == [
        {"id": 94, "title": "Home Alone", "price": 7.99},
        {"id": 1197, "title": "A Family Thing", "price": 2.99},
    ]
    offer = reply["offer"]
    assert offer["id"] == world.offers["accepted"] and offer["status"] == "accepted"  # the outcome now
    assert offer["product_id"] == 94 and offer["percent_off"] == 10 and offer["title"]
    assert offer["offer_price"] == pytest.approx(offer["offer_price"]) and offer["expires_at"].endswith("Z")
    voice = world.client.get("/console/api/conversations/43").json()["turns"]
    assert voice[0]["channel"] == "voice" and voice[1]["offer"]["status"] == "declined"
    unsure = world.client.get("/console/api/conversations/44").json()["turns"]
    assert unsure[0]["intent"] == "nlu_fallback" and unsure[0]["confidence"] == 0.31
    assert unsure[2]["actions"] == ["action_default_fallback"]


def test_unknown_conversations_are_404(world: World) -> None:
    world.login("mia@shop.example")
    for sender in ("nobody", "42 OR 1=1", "../../etc/passwd", "42/.."):
        r = world.client.get(f"/console/api/conversations/{quote(sender, safe='')}")
        assert r.status_code == 404 and r.json() == {"error": "no such conversation"}


def test_html_in_messages_comes_back_verbatim_as_data(world: World) -> None:
    world.login("mia@shop.example")
    r = world.client.get("/console/api/conversations/45")
    assert r.headers["content-type"] == "application/json"
    turns = r.json()["turns"]
    assert turns[0]["text"] == HTML and turns[2]["text"] == SQL and turns[3]["text"] == f"<b>{HTML}</b>"
    listed = world.client.get("/console/api/conversations", params={"customer": "45"}).json()["items"]
    assert listed[0]["first_message"] == HTML


def test_new_events_show_up_on_the_next_request(world: World) -> None:
    world.login("mia@shop.example")
    assert "late" not in world.senders()
    later = rasa.Conversation("late", at(DAY3, 7200))
    later.turn(
        "recommend me a western",
        "ask_recommendation",
        0.9,
        actions=["action_recommend"],
        replies=[recommend_reply(None)],
    )
    with world.engine.begin() as conn:
        rasa.write(conn, later.rows)
    assert "late" in world.senders(intent="ask_recommendation")
    more = rasa.Conversation("42", at(DAY3, 9000))  # 42 comes back by voice on another day
    more.turn("any deals for me", "ask_offers", 0.9, channel="voice", actions=["action_show_offers"])
    with world.engine.begin() as conn:
        rasa.write(conn, more.rows)
    item = world.client.get("/console/api/conversations", params={"customer": "42"}).json()["items"][0]
    assert item["turns"] == 4 and item["voice_turns"] == 1 and "ask_offers" in item["intents"]
    assert world.senders(**{"from": DAY3.isoformat()}) >= {"42", "late"}


# --- dashboard ---------------------------------------------------------------------------------------
def test_the_dashboard_adds_up(world: World) -> None:
    world.login("mia@shop.example")
    r = world.client.get("/console/api/dashboard", params={"from": "2026-03-01", "to": "2026-03-05"})
    assert r.status_code == 200
    d = r.json()
    assert [p["day"] for p in d["per_day"]] == [f"2026-03-0{i}" for i in range(1, 6)]
    per_day = {p["day"]: (p["conversations"], p["voice_conversations"]) for p in d["per_day"]}
    assert per_day == {
        "2026-03-01": (0, 0),
        "2026-03-02": (1 + FILLERS, 0),
        "2026-03-03": (1, 1),
        "2026-03-04": (0, 0),
        "2026-03-05": (2, 0),
    }
    assert d["voice_share"] == round(1 / (4 + FILLERS), 4)
    turns = 3 + 2 + 2 + 2 + FILLERS
    assert d["fallback_rate"] == round(2 / turns, 4)  # 44's nlu_fallback and its default fallback
    top = {t["intent"]: t["count"] for t in d["top_intents"]}
    assert top["ask_offers"] == FILLERS and top["ask_recommendation"] == 2 and top["out_of_scope"] == 3
    assert d["top_intents"][0] == {"intent": "ask_offers", "count": FILLERS}
    price = world.engine.connect().scalar(text("SELECT price_cents FROM products WHERE id = 94"))
    assert d["offers"] == {
        "made": 2,
        "accepted": 1,
        "declined": 1,
        "conversion": 0.5,
        "discount_spent_cents": round(price * 10 / 100),
    }
    assert set(d["models"]) <= {"nlu", "recommender", "purchase"}
    for metrics in d["models"].values():
        assert all(isinstance(v, int | float) for v in metrics.values())
    only_day2 = world.client.get(
        "/console/api/dashboard", params={"from": "2026-03-03", "to": "2026-03-03"}
    ).json()
    assert (
        only_day2["voice_share"] == 1.0
        and only_day2["offers"]["made"] == 1
        and only_day2["offers"]["declined"] == 1
    )


def test_the_dashboard_defaults_to_the_last_30_days_and_refuses_bad_ranges(world: World) -> None:
    world.login("mia@shop.example")
    d = world.client.get("/console/api/dashboard").json()
    assert len(d["per_day"]) == 30 and d["per_day"][-1]["day"] == datetime.now(UTC).date().isoformat()
    for params in (
        {"from": "2026-03-05", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"to": "x"},
        {"q": "a"},
    ):
        r = world.client.get("/console/api/dashboard", params=params)
        assert r.status_code == 400 and r.json()["error"]


# --- NLU review ------------------------------------------------------------------------------------
def test_a_reviewed_message_is_stored_and_listed(world: World) -> None:
    csrf = world.login("mia@shop.example")
    event_id = world.event_ids["flurb zongle"]
    body = {
        "event_id": event_id,
        "text": "  a horror film for my dad  ",
        "intent": "ask_recommendation",
        "entities": [
            {"entity": "category", "value": "horror", "start": 4, "end": 10},
            {"entity": "recipient", "value": "my dad", "start": 20, "end": 26, "role": None},
        ],
    }
    made = world.client.post("/console/api/nlu-reviews", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 201, made.text
    listed = world.client.get("/console/api/nlu-reviews").json()["items"]
    assert len(listed) == 1 and listed[0]["id"] == made.json()["id"]
    review = listed[0]
    assert review["text"] == "a horror film for my dad" and review["sender_id"] == "44"
    assert review["entities"][0] == {
        "entity": "category",
        "value": "horror",
        "start": 2,
        "end": 8,
        "role": None,
    }
    assert review["reviewed_by"] == "mia@shop.example" and review["event_id"] == event_id
    again = world.client.post(
        "/console/api/nlu-reviews", json={**body, "intent": "search_product"}, headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 201 and again.json()["id"] == made.json()["id"]  # replaced, not doubled
    assert [r["intent"] for r in world.client.get("/console/api/nlu-reviews").json()["items"]] == [
        "search_product"
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"intent": "buy_everything"}, "unknown intent"),
        ({"intent": "nlu_fallback"}, "unknown intent"),
        ({"entities": [{"entity": "colour", "value": "red", "start": 0, "end": 1}]}, "unknown entity"),
        (
            {"entities": [{"entity": "category", "value": "x", "start": 0, "end": 1, "role": "include"}]},
            "no role",
        ),
        ({"entities": [{"entity": "category", "value": "x", "start": 5, "end": 99}]}, "outside the text"),
        ({"entities": [{"entity": "category", "value": "x", "start": 3, "end": 3}]}, "outside the text"),
        ({"entities": [{"entity": "category", "value": "x", "start": -1, "end": 2}]}, "outside the text"),
        ({"entities": [{"entity": "category", "value": "x", "start": 0, "end": 2}]}, "space"),
        (
            {
                "entities": [
                    {"entity": "category", "value": "comedy", "start": 2, "end": 8},
                    {"entity": "product", "value": "dy for", "start": 6, "end": 12},
                ]
            },
            "overlap",
        ),
        ({"text": "a [comedy](category)"}, "[ or ]"),
        ({"text": "   "}, "empty"),
        ({"text": "bad\x00byte"}, "control character"),
        ({"event_id": 999_999}, "not a customer message"),
    ],
)
def test_bad_reviews_are_a_400_that_says_why(world: World, change: dict[str, Any], message: str) -> None:
    csrf = world.login("mia@shop.example")
    body = {
        "event_id": world.event_ids["a comedy for my kids"],
        "text": "a comedy for my kids",
        "intent": "ask_recommendation",
        "entities": [],
    }
    r = world.client.post("/console/api/nlu-reviews", json={**body, **change}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and message in r.json()["error"], r.text
    assert world.client.get("/console/api/nlu-reviews").json()["items"] == []


def test_a_bot_message_cannot_be_reviewed(world: World) -> None:
    csrf = world.login("mia@shop.example")
    with world.engine.connect() as conn:
        bot_event = conn.scalar(text("SELECT id FROM events WHERE type_name = 'bot' LIMIT 1"))
    body = {"event_id": bot_event, "text": "Welcome back!", "intent": "greet", "entities": []}
    r = world.client.post("/console/api/nlu-reviews", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and "not a customer message" in r.json()["error"]
    r = world.client.post("/console/api/nlu-reviews", json={"event_id": "x"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 400 and r.json()["error"] == "invalid request"


def test_offer_outcomes_are_read_when_asked(world: World) -> None:
    """An offer decided after the conversation was indexed shows its new outcome."""
    world.login("mia@shop.example")
    assert world.senders(offer="declined") == {"43"}
    with world.engine.begin() as conn:
        conn.execute(update(Offer).where(Offer.id == world.offers["declined"]).values(status="accepted"))
    assert world.senders(offer="declined") == set()
    assert world.senders(offer="accepted") == {"42", "43"}


def test_the_shop_page_lists_redemptions_endpoints_and_deliveries(world: World) -> None:
    """GET /console/api/shop: a code the checkout redeemed, the shop's endpoint and the delivery
    of each event to it, as the outbox recorded them; a login is needed."""
    from smartmkt.store.offer_codes import redeem_code
    from smartmkt.store.outbox import add_endpoint, record

    assert world.client.get("/console/api/shop").status_code == 401
    world.login()
    add_endpoint(world.engine, "https://shop.example/hooks", ["offer.created", "offer.redeemed"])
    with world.engine.connect() as conn:
        product_id = int(conn.scalar(select(Product.id).order_by(Product.id.desc()).limit(1)) or 0)
    view = StoreRepository(world.engine).create_offer(
        "42", product_id, 20, "r", "r", {}, "text", timedelta(days=2)
    )
    assert view is not None and view.code
    redeem_code(world.engine, view.code, "42", "shop-order-1")
    body = world.client.get("/console/api/shop").json()
    (redeemed,) = body["redemptions"]
    assert (redeemed["code"], redeemed["customer_id"], redeemed["redeemed_order_id"]) == (
        view.code,
        "42",
        "shop-order-1",
    )
    (endpoint,) = body["endpoints"]
    assert endpoint["url"] == "https://shop.example/hooks" and endpoint["waiting"] == 2
    assert [d["event"] for d in body["deliveries"]] == ["offer.redeemed", "offer.created"]  # newest first
    record(world.engine, body["deliveries"][1]["id"], 503, "HTTP 503: busy")
    again = world.client.get("/console/api/shop").json()["deliveries"][1]
    assert (again["attempts"], again["last_status"], again["state"]) == (1, 503, "waiting")
    page = world.client.get("/console/shop")
    assert page.status_code == 200 and "/static/console/shop.js" in page.text
