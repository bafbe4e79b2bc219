"""NLU review: a marketer marks a customer message's right intent and entities; ``smartmkt nlu
export-reviewed`` writes the reviews as Rasa NLU training data (YAML, version "3.1").

A review is checked before it is stored: the event is a customer message in the tracker store,
the intent and entities (with roles) are the bot's (bot/domain.yml), and each entity span lies in
the text, is not blank and does not overlap another. Whitespace characters become spaces and
characters YAML cannot hold are refused, so every stored review exports as one valid example.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Engine, select

from smartmkt.console.events import RASA_EVENTS
from smartmkt.store.clock import utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import ConsoleUser, NluReview

MAX_TEXT = 2000
MAX_ENTITIES = 20
# Rasa's inline annotations ([text](entity), [text]{...}) have no escape for these
RESERVED = re.compile(r"[\[\]]")
RESERVED_IN_VALUE = re.compile(r"[\[\]{}()]")
# YAML's printable characters (YAML 1.1/1.2, section 5.1), tab and newline excluded on purpose
_NOT_YAML = re.compile("[^\u0020-\u007e\u0085\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class ReviewError(ValueError):
    """A review that cannot be stored as asked (a 400)."""


@dataclass(frozen=True)
class Vocabulary:
    intents: frozenset[str]
    entities: dict[str, frozenset[str]]  # entity -> its roles


@lru_cache(maxsize=4)
def _vocabulary(domain: Path, _mtime: float) -> Vocabulary:
    document = yaml.safe_load(domain.read_text(encoding="utf-8")) or {}
    intents = {next(iter(i)) if isinstance(i, dict) else str(i) for i in document.get("intents") or []}
    entities: dict[str, frozenset[str]] = {}
    for item in document.get("entities") or []:
        if isinstance(item, dict):
            name, spec = next(iter(item.items()))
            entities[str(name)] = frozenset(str(r) for r in (spec or {}).get("roles") or [])
        else:
            entities[str(item)] = frozenset()
    return Vocabulary(frozenset(intents), entities)


def vocabulary(bot_dir: Path) -> Vocabulary:
    """The intents and entities of bot/domain.yml (re-read when the file changes)."""
    domain = bot_dir / "domain.yml"
    return _vocabulary(domain, domain.stat().st_mtime)


@dataclass(frozen=True)
class Entity:
    entity: str
    value: str
    start: int
    end: int
    role: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "role": self.role,
        }


@dataclass(frozen=True)
class Review:
    id: int
    event_id: int
    sender_id: str
    text: str
    intent: str
    entities: tuple[Entity, ...]
    reviewed_by: str | None
    created_at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event_id": self.event_id,
            "sender_id": self.sender_id,
            "text": self.text,
            "intent": self.intent,
            "entities": [e.as_dict() for e in self.entities],
            "reviewed_by": self.reviewed_by,
            "created_at": self.created_at,
        }


def _clean_text(text: str) -> str:
    text = re.sub(r"\s", " ", text)  # one character for one: spans keep their offsets
    if _NOT_YAML.search(text):
        raise ReviewError("the text holds a control character that training data cannot hold")
    if RESERVED.search(text):
        raise ReviewError("the text holds [ or ], which Rasa's training format cannot hold")
    if not text.strip():
        raise ReviewError("the text is empty")
    if len(text) > MAX_TEXT:
        raise ReviewError(f"the text is longer than {MAX_TEXT} characters")
    return text


def validate(
    vocab: Vocabulary, text: str, intent: str, entities: list[dict[str, Any]]
) -> tuple[str, list[Entity]]:
    """The review's text (surrounding spaces removed, spans moved with it) and its entities."""
    text = _clean_text(text)
    if intent not in vocab.intents:
        raise ReviewError(f"unknown intent {intent[:60]!r}; the bot's intents are in bot/domain.yml")
    if len(entities) > MAX_ENTITIES:
        raise ReviewError(f"at most {MAX_ENTITIES} entities")
    shift = len(text) - len(text.lstrip())
    text = text.strip()
    checked: list[Entity] = []
    for raw in entities:
        name, role = raw.get("entity"), raw.get("role") or None
        start, end, value = raw.get("start"), raw.get("end"), raw.get("value")
        if name not in vocab.entities:
            raise ReviewError(f"unknown entity {str(name)[:60]!r}")
        if role is not None and role not in vocab.entities[str(name)]:
            raise ReviewError(f"entity {name} has no role {str(role)[:60]!r}")
        if (
            not (isinstance(start, int) and isinstance(end, int))
            or isinstance(start, bool)
            or isinstance(end, bool)
        ):
            raise ReviewError("entity start and end must be character offsets")
        start, end = start - shift, end - shift
        if not 0 <= start < end <= len(text):
            raise ReviewError(f"entity {name} [{start + shift}, {end + shift}) is outside the text")
        span = text[start:end]
        if span != span.strip():
            raise ReviewError(f"entity {name} starts or ends with a space")
        value = span if value in (None, "") else value
        if (
            not isinstance(value, str)
            or len(value) > 200
            or RESERVED_IN_VALUE.search(value)
            or _NOT_YAML.search(value)
        ):
            raise ReviewError(f"entity {name} has a value training data cannot hold")
        checked.append(Entity(str(name), value, start, end, role))
    checked.sort(key=lambda e: e.start)
    for before, after in pairwise(checked):
        if after.start < before.end:
            raise ReviewError(f"entities {before.entity} and {after.entity} overlap")
    return text, checked


def customer_event(tracker: Engine, event_id: int) -> str:
    """The sender of a customer message event; ReviewError when it is no such thing."""
    e = RASA_EVENTS.c
    with tracker.connect() as conn:
        row = conn.execute(select(e.sender_id, e.type_name).where(e.id == event_id)).first()
    if row is None or row.type_name != "user":
        raise ReviewError(f"event {event_id} is not a customer message")
    return str(row.sender_id)


def save(
    store: Engine,
    tracker: Engine,
    bot_dir: Path,
    event_id: int,
    text: str,
    intent: str,
    entities: list[dict[str, Any]],
    reviewer_id: int | None,
) -> int:
    """Store a review (replacing an earlier one of the same message); returns its id."""
    text, checked = validate(vocabulary(bot_dir), text, intent, entities)
    sender = customer_event(tracker, event_id)
    with session_scope(store) as session:
        review = session.scalar(select(NluReview).where(NluReview.event_id == event_id))
        if review is None:
            review = NluReview(event_id=event_id)
            session.add(review)
        review.sender_id = sender
        review.text = text
        review.intent = intent
        review.entities = [e.as_dict() for e in checked]
        review.reviewed_by = reviewer_id
        review.created_at = utcnow()
        session.flush()
        return review.id


def _stored_entity(e: dict[str, Any]) -> Entity:
    role = e.get("role")
    return Entity(
        str(e["entity"]), str(e["value"]), int(e["start"]), int(e["end"]), str(role) if role else None
    )


def reviews(store: Engine, limit: int | None = None) -> list[Review]:
    """The reviews, newest first."""
    with session_scope(store) as session:
        query = (
            select(NluReview, ConsoleUser.email)
            .outerjoin(ConsoleUser, ConsoleUser.id == NluReview.reviewed_by)
            .order_by(NluReview.created_at.desc(), NluReview.id.desc())
        )
        if limit:
            query = query.limit(limit)
        return [
            Review(
                r.id,
                r.event_id,
                r.sender_id,
                r.text,
                r.intent,
                tuple(_stored_entity(e) for e in r.entities),
                email,
                r.created_at.isoformat(),
            )
            for r, email in session.execute(query)
        ]


# --- export ------------------------------------------------------------------------------------
def annotate(text: str, entities: tuple[Entity, ...]) -> str:
    """``[span](entity)``, or ``[span]{"entity": .., "role": .., "value": ..}`` when it needs more."""
    out, cursor = [], 0
    for e in sorted(entities, key=lambda e: e.start):
        span = text[e.start : e.end]
        out.append(text[cursor : e.start])
        if e.role is None and e.value == span:
            out.append(f"[{span}]({e.entity})")
        else:
            spec: dict[str, str] = {"entity": e.entity}
            if e.role:
                spec["role"] = e.role
            if e.value != span:
                spec["value"] = e.value
            out.append(f"[{span}]{json.dumps(spec, ensure_ascii=False)}")
        cursor = e.end
    out.append(text[cursor:])
    return "".join(out)


@dataclass
class Export:
    yaml: str = ""
    examples: int = 0
    intents: int = 0
    already_trained: list[Review] = field(default_factory=list)  # same text, same intent
    conflicts: list[tuple[Review, str]] = field(default_factory=list)  # same text, other intent


def text_key(text: str) -> str:
    """Texts that Rasa would call the same example."""
    return " ".join(text.lower().split())


def export(store: Engine, training: dict[str, str] | None = None) -> Export:
    """Rasa NLU YAML of every reviewed message: the newest review of each text; texts already in
    ``training`` (text key -> intent) under the same intent are left out, and under another
    intent are left out and reported (Rasa refuses one text with two intents)."""
    training = training or {}
    result = Export()
    latest: dict[str, Review] = {}
    for review in reviews(store):  # newest first: the first one of a text wins
        latest.setdefault(text_key(review.text), review)
    by_intent: dict[str, list[Review]] = {}
    for key, review in sorted(latest.items(), key=lambda kv: kv[1].id):
        trained = training.get(key)
        if trained == review.intent:
            result.already_trained.append(review)
        elif trained is not None:
            result.conflicts.append((review, trained))
        else:
            by_intent.setdefault(review.intent, []).append(review)
    lines = ['version: "3.1"', "nlu:"]
    for intent in sorted(by_intent):
        lines += [f"- intent: {intent}", "  examples: |"]
        lines += [f"    - {annotate(r.text, r.entities)}" for r in by_intent[intent]]
    result.yaml = "\n".join(lines) + "\n"
    result.examples = sum(len(v) for v in by_intent.values())
    result.intents = len(by_intent)
    return result
