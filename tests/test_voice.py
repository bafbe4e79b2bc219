"""POST /voice: errors answered by the app alone (no Rasa needed), then the whole voice turn
against the real running product (Rasa, actions, app), mixing voice and text in one
conversation."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import espeak_wav
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartmkt.runtime.stack import RunningStack, free_port
from smartmkt.security.secrets import signed_in
from smartmkt.settings import Settings
from smartmkt.store.db import session_scope
from smartmkt.store.models import Offer, Order
from smartmkt.web.app import create_app
from smartmkt.web.routers.voice import NO_SPEECH_REPLY

REQUEST = "can you recommend a comedy under ten dollars"


@pytest.fixture(scope="module")
def request_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return espeak_wav(tmp_path_factory.mktemp("voice") / "request.wav", REQUEST).read_bytes()


def _client(settings: Settings) -> TestClient:
    # Rasa on a port nobody listens on: these tests must be answered before the bot is asked
    return TestClient(create_app(settings.model_copy(update={"rasa_port": free_port()})))


def _post(client: TestClient, audio: bytes, sender: str | None = "7", **form: Any) -> httpx.Response:
    data = {"sender": sender, **form} if sender is not None else form
    return client.post("/voice", files={"audio": ("clip.wav", audio, "audio/wav")}, data=data)


def test_bad_uploads_get_the_documented_errors(
    base_settings: Settings, request_wav: bytes, tmp_path: Path
) -> None:
    small = base_settings.model_copy(update={"asr_max_bytes": 20_000, "asr_max_seconds": 0.25})
    with _client(small) as client:
        large = _post(client, request_wav + b"\0" * 20_000)
        assert large.status_code == 413 and large.json()["error"] == "too_large"
        assert "MB" in large.json()["reason"]
        long = _post(client, request_wav[:19_000])  # under 20 kB, but 0.43 s at 22,050 Hz
        assert long.status_code == 413 and long.json()["error"] == "too_long"
    with _client(base_settings) as client:
        for body, kind in ((b"", "empty"), (b"GIF89a not a recording" * 30, "not_audio")):
            r = _post(client, body)
            assert r.status_code == 400 and r.json()["error"] == kind, r.text
        no_sender = _post(client, request_wav, sender=None)
        assert no_sender.status_code == 400 and "sender" in str(no_sender.json()["reasons"])
        no_file = client.post("/voice", data={"sender": "7"})
        assert no_file.status_code == 400 and "audio" in str(no_file.json()["reasons"])


def test_silence_gets_asked_to_repeat_without_the_bot(base_settings: Settings, tmp_path: Path) -> None:
    silent = tmp_path / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "1", str(silent), "trim", "0", "2"], check=True)
    with _client(base_settings) as client:
        r = _post(client, silent.read_bytes(), speak="true")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["transcript"] == "" and body["responses"][0]["text"] == NO_SPEECH_REPLY
    assert base64.b64decode(body["audio"]["base64"])[:4] == b"RIFF"  # spoken by espeak-ng


def test_a_broken_speech_engine_is_a_503_and_text_keeps_working(
    base_settings: Settings, request_wav: bytes, tmp_path: Path
) -> None:
    """openai-whisper pointed at a corrupt converted checkpoint: the engine fails to load."""
    cache = tmp_path / "var" / "cache" / "whisper"
    cache.mkdir(parents=True)
    (cache / "openai-tiny.en.pt").write_bytes(b"not a checkpoint")
    broken = base_settings.model_copy(update={"var_dir": tmp_path / "var", "asr_backend": "openai-whisper"})
    with _client(broken) as client:
        r = _post(client, request_wav)
        assert r.status_code == 503 and r.json()["error"] == "speech recognition unavailable"
        assert client.post("/model/parse", json={"text": "recommend a comedy"}).status_code == 200
        health = client.get("/health")  # typed chat is up; the broken engine is named
        assert health.status_code == 200 and health.json()["status"] == "degraded"
        assert "speech" in health.json()["not_ready"] and "nlu" not in health.json()["not_ready"]


def test_the_bot_being_down_is_a_503(base_settings: Settings, request_wav: bytes) -> None:
    with _client(base_settings) as client:
        r = _post(client, request_wav)
    assert r.status_code == 503 and r.json()["error"] == "the bot is unavailable"


@pytest.mark.e2e
def test_a_voice_turn_then_a_typed_one_in_the_same_conversation(
    stack: RunningStack, db, request_wav: bytes
) -> None:  # type: ignore[no-untyped-def]
    # customer 88: no other end-to-end test talks as them (77 opts out in test_e2e_chat); their
    # signed token on a session bound to them, as the web chat sends it
    session, token = signed_in(stack.settings, "88")
    r = httpx.post(
        f"{stack.settings.app_url}/voice",
        files={"audio": ("request.wav", request_wav, "audio/wav")},
        data={"sender": session, "customer_token": token, "speak": "true"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "comedy" in body["transcript"].lower() and body["language"] == "en"
    payloads = [
        x["custom"] for x in body["responses"] if x.get("custom", {}).get("type") == "recommendations"
    ]
    assert payloads and payloads[0]["products"], body["responses"]
    assert base64.b64decode(body["audio"]["base64"])[:4] == b"RIFF"
    offer = payloads[0]["offer"]
    assert offer is not None
    with session_scope(db) as s:
        assert s.get(Offer, offer["id"]).channel == "voice"  # type: ignore[union-attr]
    # the customer types the answer: the same tracker knows which offer "yes" accepts
    typed = httpx.post(
        stack.rest_url,
        json={"sender": session, "message": "yes", "metadata": {"customer_token": token}},
        timeout=60,
    ).json()
    assert "ordered" in " ".join(x.get("text", "") for x in typed)
    with session_scope(db) as s:
        order = s.scalars(select(Order).where(Order.customer_id == 88).order_by(Order.id.desc())).first()
        assert order is not None and order.offer_id == offer["id"] and order.channel == "text"
