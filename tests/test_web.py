"""The app's /model/parse contract (what Rasa's HTTP interpreter expects) and its errors."""

import pytest
from fastapi.testclient import TestClient

from smartmkt.settings import get_settings
from smartmkt.web.app import create_app


@pytest.fixture(scope="module")
def client():  # type: ignore[no-untyped-def]
    with TestClient(create_app(get_settings())) as c:
        yield c


def test_parse_returns_rasa_parse_json(client: TestClient) -> None:
    r = client.post("/model/parse", json={"text": "a comedy for my kids under $10", "message_id": "42"})
    assert r.status_code == 200
    body = r.json()
    assert body["text"] == "a comedy for my kids under $10"
    assert body["intent"]["name"] in {"ask_recommendation", "inform_preference"}
    assert 0 < body["intent"]["confidence"] <= 1
    assert body["intent_ranking"][0]["name"] == body["intent"]["name"]
    ents = {(e["entity"], body["text"][e["start"] : e["end"]]) for e in body["entities"]}
    assert ("category", "comedy") in ents
    assert ("price", "$10") in ents
    assert ("recipient", "my kids") in ents
    for e in body["entities"]:
        assert e["value"] == body["text"][e["start"] : e["end"]]


def test_exclusion_role(client: TestClient) -> None:
    body = client.post("/model/parse", json={"text": "nothing with horror please"}).json()
    assert {"entity": "category", "value": "horror", "role": "exclude"}.items() <= next(
        e for e in body["entities"] if e["entity"] == "category"
    ).items()


def test_button_payloads_bypass_the_model(client: TestClient) -> None:
    body = client.post("/model/parse", json={"text": '/ask_price{"product": "Fargo"}'}).json()
    assert body["intent"] == {"name": "ask_price", "confidence": 1.0}
    assert body["entities"][0]["value"] == "Fargo"


@pytest.mark.parametrize("text", ["", "   ", "😀🎬🍿", "?!..."])
def test_nothing_to_read_falls_back(client: TestClient, text: str) -> None:
    body = client.post("/model/parse", json={"text": text}).json()
    assert body["intent"]["name"] == "nlu_fallback"


def test_long_message_is_parsed(client: TestClient) -> None:
    r = client.post("/model/parse", json={"text": "recommend a western " * 600})
    assert r.status_code == 200
    assert r.json()["intent"]["name"]


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\xfa", b'{"text": 5}', b"[]"])
def test_bad_bodies_get_a_json_4xx(client: TestClient, body: bytes) -> None:
    r = client.post("/model/parse", content=body, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500
    assert r.json()["error"]


def test_health(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
