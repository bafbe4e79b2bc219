"""Fuzzing the app's HTTP inputs with hypothesis: the NLU endpoint Rasa calls (POST /model/parse)
and the console's conversation filters (GET /console/api/conversations and .csv).

The real app (FastAPI TestClient with its lifespan: the served NLU model is loaded) on a private
copy of the demo store with a marketer account and a few conversations in Rasa's events table.
Whatever the request holds, the answer is a 200 with the documented JSON or a 4xx with a JSON
reason; never a 500. The console's filters also take SQL injection strings and FTS5 query
syntax, and the database is unchanged afterwards.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote_from_bytes, urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from smartmkt.bench import rasa_events as rasa
from smartmkt.console.conversations import FILTER_PARAMS
from smartmkt.console.users import create_user
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine

PASSWORD = "fuzzing-password-123"
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
INJECTIONS = (
    "' OR 1=1 --",
    "1; DROP TABLE events; --",
    '" OR ""="',
    "') OR ('1'='1",
    "%' UNION SELECT token_hash, 1 FROM console_sessions --",
    "42' AND (SELECT COUNT(*) FROM console_users) > 0 --",
    "1 OR sleep(5)",
    "'; UPDATE console_users SET role='admin' --",
    "\\",
    "%",
    "_",
    "*",
    '"unterminated',
    "NEAR(comedy horror)",  # FTS5 query syntax
    "comedy OR horror",
    "NOT comedy",
    "comedy AND",
    "-comedy",
    "^comedy",
    "text:comedy",
    "{sender_id}: x",
    "comedy*",
    "\x00",
    "\u202e\u200b\ufeff",
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
CONTROL = st.characters(max_codepoint=0x1F) | st.sampled_from("\x7f\u200b\u202e\ufeff\u2028")
LONE_SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ANY_TEXT = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=CONTROL, max_size=50),
    st.text(alphabet=LONE_SURROGATES | st.characters(max_codepoint=0x7F), min_size=1, max_size=20),
    st.builds(lambda part, times: part * times, st.text(min_size=1, max_size=12), st.integers(100, 12_000)),
    st.sampled_from(INJECTIONS),
)

SEEDED: dict[str, Any] = {}  # the store's URL and how many events it holds


@pytest.fixture(scope="module")
def client(
    tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path, base_settings: Settings
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("fuzz-web")
    shutil.copy(demo_db_template, folder / "smartmkt.db")
    url = f"sqlite:///{folder / 'smartmkt.db'}"
    engine = make_engine(url)
    create_user(engine, "fuzz@shop.example", PASSWORD, "marketer")
    rows: list[dict[str, Any]] = []
    seeded = ["recommend a comedy", INJECTIONS[0], "<b>hi</b>", "how much is Fargo?", "lone \ud800 surrogate"]
    for i, message in enumerate(seeded):
        conversation = rasa.Conversation(f"fuzz-{i}", 1_780_000_000.0 + i * 3600)
        conversation.turn(message, "ask_recommendation", 0.5 + i / 10, actions=["action_recommend"])
        rows += conversation.rows
    with engine.begin() as conn:
        rasa.write(conn, rows)
    engine.dispose()
    settings_ = base_settings.model_copy(update={"database_url": url, "tracker_url": "", "tracker_db": ""})
    from smartmkt.web.app import create_app

    with TestClient(create_app(settings_), raise_server_exceptions=False) as test_client:
        login = test_client.post(
            "/console/api/login", json={"email": "fuzz@shop.example", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        SEEDED.update(url=url, events=len(rows))  # for the check after the fuzzing
        yield test_client


def json_or_fail(response: httpx.Response) -> Any:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    return response.json()


# --- POST /model/parse ----------------------------------------------------------------------------
def check_parse(client: TestClient, body: bytes, content_type: str = "application/json") -> None:
    response = client.post("/model/parse", content=body, headers={"Content-Type": content_type})
    answer = json_or_fail(response)
    if response.status_code == 200:
        assert isinstance(answer["intent"]["name"], str) and 0.0 <= answer["intent"]["confidence"] <= 1.0
        assert isinstance(answer["entities"], list) and isinstance(answer["intent_ranking"], list)
        for entity in answer["entities"]:
            assert 0 <= entity["start"] <= entity["end"] <= len(answer["text"])
    else:
        assert 400 <= response.status_code < 500 and isinstance(answer, dict)


@FUZZ
@given(ANY_TEXT, st.one_of(st.none(), st.text(max_size=30)))
def test_parse_any_text(client: TestClient, message: str, message_id: str | None) -> None:
    # json.dumps escapes what UTF-8 cannot carry (lone surrogates) the way JSON allows
    check_parse(client, json.dumps({"text": message, "message_id": message_id, "token": None}).encode())


@FUZZ
@given(JSON_VALUES, JSON_VALUES)
def test_parse_wrong_json_shapes(client: TestClient, body: Any, field: Any) -> None:
    check_parse(client, json.dumps(body).encode())  # NaN/Infinity too: not JSON, a 400
    check_parse(client, json.dumps({"text": field, "message_id": field}).encode())


@FUZZ
@given(
    st.binary(max_size=300), st.sampled_from(["application/json", "text/plain", "multipart/form-data", ""])
)
def test_parse_arbitrary_bodies(client: TestClient, body: bytes, content_type: str) -> None:
    check_parse(client, body, content_type)


# --- GET /console/api/conversations ---------------------------------------------------------------
KEYS = st.sampled_from((*FILTER_PARAMS, "limit", "cursor")) | st.text(max_size=10)
VALUES = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(max_size=60),
    st.from_regex(r"-?\d{1,5}-\d{1,3}-\d{1,3}", fullmatch=True),  # date-like
    st.sampled_from(["text", "voice", "made", "accepted", "declined", "true", "false", "1", "0", "", "-1"]),
    st.integers(-(2**70), 2**70).map(str),
    st.builds(lambda part, times: part * times, st.text(min_size=1, max_size=8), st.integers(100, 3000)),
)


def check_list(client: TestClient, path: str, params: list[tuple[str, str]] | None = None) -> None:
    assume(len(urlencode(params or [])) < 60_000)  # the HTTP client's own limit on a URL
    response = client.get(path, params=params)
    assert response.status_code in (200, 400), (response.status_code, response.text[:500])
    if path.endswith(".csv") and response.status_code == 200:
        assert response.headers["content-type"].startswith("text/csv")
        return
    answer = json_or_fail(response)
    if response.status_code == 200:
        assert isinstance(answer["items"], list) and "next_cursor" in answer
    else:
        assert isinstance(answer.get("error"), str)


@FUZZ
@given(st.lists(st.tuples(KEYS, VALUES), max_size=6))
def test_console_filters(client: TestClient, params: list[tuple[str, str]]) -> None:
    check_list(client, "/console/api/conversations", params)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(FILTER_PARAMS), VALUES), max_size=4, unique_by=lambda p: p[0]))
def test_console_filters_one_each_and_the_csv(client: TestClient, params: list[tuple[str, str]]) -> None:
    check_list(client, "/console/api/conversations", params)
    check_list(client, "/console/api/conversations.csv", params)


@FUZZ
@given(st.binary(max_size=200))
def test_console_raw_query_strings(client: TestClient, raw: bytes) -> None:
    """Percent-encoded bytes of any kind, invalid UTF-8 and NULs included."""
    check_list(client, "/console/api/conversations?" + quote_from_bytes(raw, safe="=&"))


@FUZZ
@given(st.sampled_from([f"fuzz-{i}" for i in range(5)]) | st.text(max_size=80) | st.sampled_from(INJECTIONS))
def test_console_transcripts(client: TestClient, sender: str) -> None:
    path = quote_from_bytes(sender.encode("utf-8", "surrogatepass"))  # lone surrogates as bad UTF-8
    response = client.get(f"/console/api/conversations/{path}")
    answer = json_or_fail(response)
    assert response.status_code in (200, 404), (response.status_code, answer)
    if response.status_code == 200:
        assert answer["sender_id"] == sender and isinstance(answer["turns"], list)


def test_the_database_is_unchanged_after_the_fuzzing(client: TestClient) -> None:
    """Runs last in this file: no injection dropped, changed or added anything."""
    engine = make_engine(SEEDED["url"])
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM events")) == SEEDED["events"]
        assert conn.execute(text("SELECT email, role FROM console_users")).all() == [
            ("fuzz@shop.example", "marketer")
        ]
    engine.dispose()
    items = json_or_fail(client.get("/console/api/conversations", params={"limit": 50}))["items"]
    assert {i["sender_id"] for i in items} >= {f"fuzz-{i}" for i in range(5)}


@pytest.mark.e2e
def test_a_lone_surrogate_through_the_running_product(stack: Any) -> None:
    """What the fuzzing found, end to end: a message and a sender id with lone surrogates get a
    normal answer (Rasa makes them well formed on arrival, bot/run_rasa.py), and are stored so."""
    body = json.dumps({"sender": "fuzz-\ud800-guest", "message": "recommend me a comedy \udc00"}).encode()
    headers = {"Content-Type": "application/json"}
    response = httpx.post(stack.rest_url, content=body, headers=headers, timeout=60)
    assert response.status_code == 200
    replies = response.json()
    assert any(r.get("custom", {}).get("type") == "recommendations" for r in replies), replies
    engine = make_engine(stack.settings.resolved_database_url)
    with engine.connect() as conn:
        query = "SELECT json_extract(data, '$.text') FROM events WHERE sender_id = :s AND type_name = 'user'"
        texts = conn.scalars(text(query), {"s": "fuzz-\ufffd-guest"}).all()
    engine.dispose()
    assert texts == ["recommend me a comedy \ufffd"]
