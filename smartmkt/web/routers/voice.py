"""``POST /voice``: the voice channel. Audio in, the bot's replies out, through the same Rasa
conversation as typed text.

multipart form: ``audio`` (the recording: wav, flac, mp3, ogg/opus, webm/opus, m4a, ...),
``sender`` (the same session id the web chat uses, so a customer can mix voice and text),
``customer_token`` (the customer token of that session; without one the sender is a guest, see
smartmkt.security.identity), optional ``speak=true`` (the replies spoken by espeak-ng, as base64 WAV).

The transcript goes to Rasa's REST channel with ``metadata: {"channel": "voice", ...}``; Rasa
keeps it in the conversation's tracker (so marketers see which turns were spoken) and the
actions record offers and orders with channel "voice".

  200  {"transcript", "language", "duration_s", "asr_ms", "responses": [Rasa's replies], "audio"?}
  400  empty upload, not audio, no ``sender``          413  longer or larger than the limits
  401  a forged or expired token, a token for another customer's session, or none for a bound one
  503  speech recognition or the bot is unavailable (the text channel is unaffected)
A recording with no speech gets a 200 with a reply asking to repeat; Rasa is not called.
"""

from __future__ import annotations

import base64
import logging
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from smartmkt.security.identity import Refused, customer_for
from smartmkt.security.secrets import local_secret
from smartmkt.settings import Settings
from smartmkt.speech.asr import Transcript
from smartmkt.speech.audio import AudioError, decode
from smartmkt.speech.tts import wav_bytes

log = logging.getLogger(__name__)
router = APIRouter(tags=["voice"])

NO_SPEECH_REPLY = "Sorry, I didn't catch that. Could you say it again, or type it?"
STATUS = {"too_large": 413, "too_long": 413, "empty": 400, "not_audio": 400}


def speak(text: str) -> str:
    """The text as a WAV (espeak-ng), base64."""
    return base64.b64encode(wav_bytes(text)).decode()


def _error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status)


async def _ask_rasa(
    settings: Settings, sender: str, transcript: Transcript, token: str | None
) -> list[dict[str, Any]]:
    metadata: dict[str, Any] = {
        "channel": "voice",
        "asr": {"backend": transcript.backend, "model": transcript.model, "language": transcript.language},
    }
    if token:
        metadata["customer_token"] = token  # Rasa checks it again (bot/customer_identity.py)
    async with httpx.AsyncClient(timeout=60) as client:
        reply = await client.post(
            f"{settings.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": transcript.text, "metadata": metadata},
        )
    reply.raise_for_status()
    return reply.json()  # type: ignore[no-any-return]


@router.post("/voice")
async def voice(
    request: Request,
    audio: Annotated[UploadFile, File(description="The recording.")],
    sender: Annotated[str, Form(min_length=1, max_length=200)],
    speak_replies: Annotated[bool, Form(alias="speak")] = False,
    customer_token: Annotated[str | None, Form(max_length=2048)] = None,
) -> Any:
    state = request.app.state.smartmkt
    settings: Settings = state.settings
    try:  # before any work: a refused sender costs no decoding or transcription
        customer_for(local_secret(settings, "customer_token_secret"), sender, customer_token)
    except Refused as exc:
        return _error(401, "not your session", str(exc))
    data = await audio.read(settings.asr_max_bytes + 1)  # never more than one byte past the limit
    try:
        samples = await run_in_threadpool(decode, data, settings.asr_max_seconds, settings.asr_max_bytes)
    except AudioError as exc:
        return _error(STATUS[exc.kind], exc.kind, str(exc))
    try:
        transcript = await run_in_threadpool(state.speech.transcribe, samples)
    except Exception as exc:  # the engine, not the input: say so and keep the app up
        log.exception("speech recognition failed")
        return _error(503, "speech recognition unavailable", f"{type(exc).__name__}: {exc}")
    if transcript.text:
        try:
            responses = await _ask_rasa(settings, sender, transcript, customer_token)
        except (httpx.HTTPError, ValueError) as exc:
            return _error(503, "the bot is unavailable", f"{type(exc).__name__}: {exc}")
    else:
        responses = [{"recipient_id": sender, "text": NO_SPEECH_REPLY}]
    body: dict[str, Any] = {
        "transcript": transcript.text,
        "language": transcript.language,
        "duration_s": transcript.duration_s,
        "asr_ms": round(transcript.seconds * 1000),
        "responses": responses,
    }
    if speak_replies:
        spoken = " ".join(r["text"] for r in responses if r.get("text"))
        body["audio"] = {"format": "wav", "base64": await run_in_threadpool(speak, spoken) if spoken else ""}
    return body
