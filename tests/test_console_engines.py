"""The console's SQL on each supported engine (SQLite and PostgreSQL; see conftest's store_url):
the indexer's upserts, every filter, word search (FTS5 on SQLite, a GIN tsvector index on
PostgreSQL), keyset pages, the dashboard, transcripts, sessions and reviews."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from smartmkt.bench import rasa_events as rasa
from smartmkt.console import index, reviews, sessions
from smartmkt.console.conversations import ConversationFilter, page, transcript
from smartmkt.console.dashboard import dashboard
from smartmkt.console.users import create_user
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.models import Product
from smartmkt.store.repository import StoreRepository

DAY = date(2026, 3, 2)
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC).timestamp()


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    with session_scope(engine) as s:
        s.add(
            Product(id=7, external_ref="p7", title="Stagecoach", year=1939, genres="Western", price_cents=999)
        )
    repo = StoreRepository(engine)
    accepted = repo.create_offer("c1", 7, 10, "nudge", "nudge", {}, "text", timedelta(days=7))
    repo.record_purchase("c1", 7, "text")
    declined = repo.create_offer("c2", 7, 20, "nudge", "nudge", {}, "voice", timedelta(days=7))
    repo.decline_offer("c2", declined.id)
    rows = []
    for i in range(25):
        conv = rasa.Conversation(f"c{i}", T0 + (i // 2) * 60)  # pairs end at the same time
        channel = "voice" if i % 4 == 2 else "text"
        offer = {1: accepted.id, 2: declined.id}.get(i)
        custom = rasa.recommendations(
            [{"id": 7, "title": "Stagecoach", "price": 9.99}], {"id": offer} if offer else None
        )
        conv.turn(
            f"a western for my dad number {i}",
            "ask_recommendation",
            0.9,
            channel=channel,
            actions=["action_recommend"],
            replies=[("Here are my picks", custom)],
        )
        if i % 5 == 0:
            conv.turn("zork blat", "nlu_fallback", 0.3, actions=["utter_please_rephrase"])
        rows += conv.rows
    with engine.begin() as conn:
        rasa.write(conn, sorted(rows, key=lambda r: r["timestamp"]))
    index.catch_up(engine, engine, batch_size=40)
    yield engine
    engine.dispose()


def senders(engine: Engine, **filters: object) -> set[str]:
    result = page(engine, ConversationFilter(**filters), 0.7, 200)  # type: ignore[arg-type]
    return {item["sender_id"] for item in result.items}


def test_filters_and_search(engine: Engine) -> None:
    everyone = {f"c{i}" for i in range(25)}
    assert senders(engine) == everyone
    assert senders(engine, channel="voice") == {f"c{i}" for i in range(25) if i % 4 == 2}
    spoken_only = {f"c{i}" for i in range(25) if i % 4 == 2 and i % 5}  # c10 also typed a message
    assert senders(engine, channel="text") == everyone - spoken_only
    assert (
        senders(engine, fallback=True)
        == senders(engine, low_confidence=True)
        == {f"c{i}" for i in range(0, 25, 5)}
    )
    assert senders(engine, intent="nlu_fallback") == {f"c{i}" for i in range(0, 25, 5)}
    assert senders(engine, offer="made") == {"c1", "c2"}
    assert senders(engine, offer="accepted") == {"c1"} and senders(engine, offer="declined") == {"c2"}
    assert senders(engine, customer="c3") == {"c3"}
    assert senders(engine, start=DAY, end=DAY) == everyone
    assert senders(engine, start=DAY + timedelta(days=1)) == set()
    assert senders(engine, q="western DAD") == everyone
    assert senders(engine, q="numb 12") == {"c12"}
    assert senders(engine, q="zork") == {f"c{i}" for i in range(0, 25, 5)}
    assert senders(engine, q="'; DROP TABLE events; --") == set()
    assert senders(engine, q="%") == set()


def test_keyset_pages(engine: Engine) -> None:
    seen, cursor = [], None
    while True:
        current = page(engine, ConversationFilter(), 0.7, 4, cursor)
        seen += [item["sender_id"] for item in current.items]
        cursor = current.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 25


def test_dashboard_transcript_sessions_and_reviews(engine: Engine, base_settings: Settings) -> None:
    d = dashboard(engine, DAY, DAY, Path("/nonexistent"))
    assert d["per_day"] == [{"day": "2026-03-02", "conversations": 25, "voice_conversations": 6}]
    assert d["offers"]["made"] == 2 and d["offers"]["accepted"] == 1 and d["offers"]["conversion"] == 0.5
    assert d["top_intents"][0] == {"intent": "ask_recommendation", "count": 25}
    assert d["fallback_rate"] == round(5 / 30, 4) and d["models"] == {}
    turns = transcript(engine, engine, "c1")
    assert turns is not None and turns["turns"][1]["offer"]["status"] == "accepted"
    user = create_user(engine, "pg@shop.example", "correct horse battery", "admin")
    token, started = sessions.start(engine, user, timedelta(hours=1))
    found = sessions.find(engine, token)
    assert (
        found is not None and found.user.email == "pg@shop.example" and found.csrf_token == started.csrf_token
    )
    event_id = turns["turns"][0]["event_id"]
    review = reviews.save(
        engine,
        engine,
        base_settings.bot_dir,
        event_id,
        "a western for my dad number 1",
        "ask_recommendation",
        [{"entity": "category", "value": "western", "start": 2, "end": 9}],
        user.id,
    )
    assert [r.id for r in reviews.reviews(engine)] == [review]
    assert "- a [western](category) for my dad number 1" in reviews.export(engine).yaml
    assert index.forget(engine, "c1") and "c1" not in senders(engine)
