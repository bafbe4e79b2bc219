"""Rasa's tracker store, read-only: the ``events`` table and what its rows mean to the console.

Rasa's SQL tracker store (rasa/core/tracker_store.py, ``SQLTrackerStore.SQLEvent``) writes one row
per event: ``id``, ``sender_id``, ``type_name`` ("user", "bot", "action", "slot", ...),
``timestamp`` (float seconds), ``intent_name``, ``action_name`` and ``data`` (the event's JSON).
Rasa creates and owns the table; smartmkt never writes it (tests and the benchmark create it with
the same definition, below, to play Rasa's part).

A user event's ``data`` carries the text, ``parse_data`` (intent, confidence, intent_ranking,
entities) and ``metadata`` (``{"channel": "voice"}`` for a spoken turn). A bot event's ``data.data.
custom`` is the actions' json_message: ``{"type": "recommendations", "products": [...],
"offer": {...}}`` or ``{"type": "offers", "offers": [...], ...}`` (actions/replies.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text

from smartmkt.privacy.redact import Redactor, redactor
from smartmkt.settings import get_settings
from smartmkt.wellformed import well_formed_json

FALLBACK_INTENT = "nlu_fallback"  # the NLU was unsure (smartmkt.nlu.parser)
FALLBACK_ACTION = "action_default_fallback"  # the dialogue policy was unsure
IGNORED_ACTIONS = frozenset({"action_listen", "action_session_start"})

# Exactly Rasa 3.6's table (the same names, types and index), for tests and the benchmark.
RASA_EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)


def event_time(timestamp: float | None) -> datetime:
    return datetime.fromtimestamp(timestamp or 0.0, UTC)


@dataclass(frozen=True)
class CustomerMessage:
    text: str
    channel: str  # "text" or "voice"
    intent: str | None
    confidence: float | None  # the model's best real intent (see ``customer_message``)
    entities: list[dict[str, Any]]

    @property
    def is_fallback(self) -> bool:
        return self.intent == FALLBACK_INTENT


@dataclass(frozen=True)
class BotMessage:
    text: str
    recommendations: list[dict[str, Any]] = field(default_factory=list)
    offers: list[dict[str, Any]] = field(default_factory=list)  # as the payload carried them


def load(data: str | None) -> dict[str, Any]:
    """An event's JSON; a row Rasa wrote badly (or not at all) reads as empty."""
    if not data:
        return {}
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    if "\\ud" in data or "\\uD" in data:  # an escaped surrogate: a lone one can't be stored or shown
        value = well_formed_json(value)
    return value if isinstance(value, dict) else {}


def _confidence(parse: dict[str, Any]) -> float | None:
    """How sure the NLU was: its best intent other than the fallback. A message the NLU turned
    into ``nlu_fallback`` thus shows the confidence that was too low; one with nothing to read
    (no letters or digits) has no real intent and counts as 0."""
    ranking = [r for r in parse.get("intent_ranking") or [] if isinstance(r, dict)]
    real = [r for r in ranking if r.get("name") and r.get("name") != FALLBACK_INTENT]
    if real:
        return float(max(float(r.get("confidence") or 0.0) for r in real))
    intent = parse.get("intent") or {}
    if intent.get("name") == FALLBACK_INTENT:
        return 0.0
    if intent.get("confidence") is not None:
        return float(intent["confidence"])
    return None


def _entity(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "entity": raw.get("entity"),
        "value": raw.get("value"),
        "start": raw.get("start"),
        "end": raw.get("end"),
        "role": raw.get("role"),
    }


def _redactor() -> Redactor:
    settings = get_settings()
    return redactor(settings.redact, settings.redact_phone_regions)


def customer_message(data: dict[str, Any], intent_name: str | None = None) -> CustomerMessage:
    """A user event's text, channel, intent, confidence and entities, with personal data masked
    (Rasa's tracker store writes it masked already; an event stored before masking was on, or by
    another writer, is masked here, so the console never shows or indexes it)."""
    parse = data.get("parse_data") or {}
    metadata = {**(parse.get("metadata") or {}), **(data.get("metadata") or {})}
    intent = (parse.get("intent") or {}).get("name") or intent_name
    masked = _redactor().redaction(str(data.get("text") or ""))
    raw_entities = [e for e in parse.get("entities") or [] if isinstance(e, dict)]
    entities = [_entity(e) for e in _redactor().mask_entities(masked, raw_entities)]
    return CustomerMessage(
        text=masked.text,
        channel="voice" if metadata.get("channel") == "voice" else "text",
        intent=intent,
        confidence=_confidence(parse) if intent else None,
        entities=entities,
    )


def _product(raw: dict[str, Any]) -> dict[str, Any]:
    return {"id": raw.get("id"), "title": raw.get("title"), "price": raw.get("price")}


def bot_message(data: dict[str, Any]) -> BotMessage:
    """A bot event's text, the products it recommended and the offers it showed."""
    custom = (data.get("data") or {}).get("custom") or {}
    if not isinstance(custom, dict):
        custom = {}
    recommendations = []
    if custom.get("type") == "recommendations":
        recommendations = [_product(p) for p in custom.get("products") or [] if isinstance(p, dict)]
    offers = [custom["offer"]] if isinstance(custom.get("offer"), dict) else []
    offers += [o for o in custom.get("offers") or [] if isinstance(o, dict)]
    offers = [o for o in offers if isinstance(o.get("id"), int)]
    return BotMessage(_redactor().redact(str(data.get("text") or "")), recommendations, offers)
