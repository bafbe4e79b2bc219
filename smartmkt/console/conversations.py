"""Conversation lists for the console: filters, keyset pages, the CSV rows and one transcript.

Every filter becomes a bound parameter or a fixed SQL fragment; no SQL is built from what a
request carries. Pages run newest first on (last_event_at, sender_id), both descending, and the
cursor is the last row's pair, so a page costs the same at any depth and never repeats or skips
a row of a list that is not changing underneath it.
"""

from __future__ import annotations

import base64
import json
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    and_,
    exists,
    func,
    literal_column,
    select,
    text,
    tuple_,
)

from smartmkt.console.events import (
    IGNORED_ACTIONS,
    RASA_EVENTS,
    bot_message,
    customer_message,
    event_time,
    load,
)
from smartmkt.console.index import CONVERSATIONS, DAYS, INTENTS, OFFERS
from smartmkt.store.clock import as_utc
from smartmkt.store.models import Offer, Product

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_TEXT = 255  # intent, customer id
MAX_SEARCH = 200
SEARCH_WORDS = 8
CHANNELS = ("text", "voice")
OFFER_STATES = ("made", "accepted", "declined")
FILTER_PARAMS = ("from", "to", "channel", "intent", "offer", "low_confidence", "fallback", "customer", "q")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_WORD = re.compile(r"[^\W_]+")  # letters and digits: the tokens both engines' search indexes hold
_ZERO: ColumnElement[int] = literal_column(
    "0", Integer
)  # a constant, so the partial indexes' conditions match exactly


class FilterError(ValueError):
    """A filter, limit or cursor the API cannot take (a 400)."""


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the millisecond."""
    return as_utc(moment).astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_day(value: str, name: str) -> date:
    if not _DAY.match(value):
        raise FilterError(f"{name} must be a date as YYYY-MM-DD, not {value[:40]!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name} is not a calendar date: {value!r}") from None


def parse_range(params: Mapping[str, str]) -> tuple[date | None, date | None]:
    start = parse_day(params["from"], "from") if params.get("from") else None
    end = parse_day(params["to"], "to") if params.get("to") else None
    if start and end and start > end:
        raise FilterError("from is after to")
    return start, end


def _flag(params: Mapping[str, str], name: str) -> bool:
    value = params.get(name)
    if value in (None, "", "false"):
        return False
    if value == "true":
        return True
    raise FilterError(f"{name} must be true or false")


def _choice(params: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name) or None
    if value is not None and value not in choices:
        raise FilterError(f"{name} must be one of {', '.join(choices)}")
    return value


def _text(params: Mapping[str, str], name: str, limit: int) -> str | None:
    value = (params.get(name) or "").strip()
    if len(value) > limit:
        raise FilterError(f"{name} is longer than {limit} characters")
    return value or None


@dataclass(frozen=True)
class ConversationFilter:
    """What the list is narrowed to; every field optional (see docs/console-api.md)."""

    start: date | None = None
    end: date | None = None
    channel: str | None = None
    intent: str | None = None
    offer: str | None = None
    low_confidence: bool = False
    fallback: bool = False
    customer: str | None = None
    q: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], allowed: tuple[str, ...] = FILTER_PARAMS) -> ConversationFilter:
        """From query parameters; raises FilterError for anything it does not understand."""
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise FilterError(f"unknown parameter {unknown[0]!r}")
        start, end = parse_range(params)
        return cls(
            start=start,
            end=end,
            channel=_choice(params, "channel", CHANNELS),
            intent=_text(params, "intent", MAX_TEXT),
            offer=_choice(params, "offer", OFFER_STATES),
            low_confidence=_flag(params, "low_confidence"),
            fallback=_flag(params, "fallback"),
            customer=_text(params, "customer", MAX_TEXT),
            q=_text(params, "q", MAX_SEARCH),
        )


def parse_limit(value: str | None) -> int:
    if value in (None, ""):
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise FilterError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(value)


def encode_cursor(last_event_at: datetime, sender_id: str) -> str:
    raw = json.dumps([as_utc(last_event_at).isoformat(), sender_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, sender = json.loads(raw)
        at = datetime.fromisoformat(moment)
        if not isinstance(sender, str) or at.tzinfo is None:
            raise ValueError
    except (ValueError, TypeError, UnicodeDecodeError):
        raise FilterError("cursor is not one this API returned") from None
    return at, sender


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, UTC)


def search_condition(engine: Engine, q: str) -> ColumnElement[bool]:
    """Conversations whose customer messages hold every word of ``q`` (each as a word prefix:
    "com" finds "comedy"). A query with no letter or digit is matched as plain text instead."""
    c = CONVERSATIONS.c
    words = [w.lower() for w in _WORD.findall(q)][:SEARCH_WORDS]
    if not words:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return func.lower(c.search_text).like(f"%{escaped}%", escape="\\")
    if engine.dialect.name == "postgresql":  # the GIN index of migration 0007 serves this
        simple: ColumnElement[str] = literal_column("'simple'::regconfig")
        vector = func.to_tsvector(simple, c.search_text)
        return vector.bool_op("@@")(func.to_tsquery(simple, " & ".join(f"{w}:*" for w in words)))
    if engine.dialect.name == "sqlite":
        query = " ".join(f'"{w}"*' for w in words)  # words hold no quote: each is a quoted prefix
        matched = text(
            "SELECT rowid FROM console_conversation_search WHERE console_conversation_search MATCH :q"
        ).bindparams(q=query)
        return c.id.in_(matched.columns(rowid=CONVERSATIONS.c.id.type))
    return and_(*(func.lower(c.search_text).like(f"%{w}%") for w in words))


def conditions(engine: Engine, f: ConversationFilter, low_confidence: float) -> list[ColumnElement[bool]]:
    """The WHERE terms of a filter (all bound parameters or fixed fragments)."""
    c = CONVERSATIONS.c
    where: list[ColumnElement[bool]] = []
    if f.start or f.end:
        days = select(DAYS.c.conversation_id)
        if f.start:
            days = days.where(DAYS.c.day >= f.start)
            where.append(c.last_event_at >= _day_start(f.start))  # implied; lets the index help
        if f.end:
            days = days.where(DAYS.c.day <= f.end)
            where.append(c.started_at < _day_start(f.end + timedelta(days=1)))
        where.append(c.id.in_(days))
    if f.channel == "voice":
        where.append(c.voice_turns > _ZERO)
    elif f.channel == "text":
        where.append(c.turns > c.voice_turns)
    if f.intent:
        where.append(exists().where(INTENTS.c.conversation_id == c.id, INTENTS.c.intent == f.intent))
    if f.offer == "made":
        where.append(c.offers_made > _ZERO)
    elif f.offer:
        where.append(c.offers_made > _ZERO)
        where.append(
            exists()
            .where(OFFERS.c.conversation_id == c.id)
            .where(Offer.id == OFFERS.c.offer_id, Offer.status == f.offer)
        )
    if f.low_confidence:
        where.append(c.min_confidence < low_confidence)
    if f.fallback:
        where.append(c.fallback_turns > _ZERO)
    if f.customer:
        where.append(c.customer_ref == f.customer)
    if f.q:
        where.append(search_condition(engine, f.q))
    return where


def _items(engine: Engine, rows: list[Any]) -> list[dict[str, Any]]:
    """The list's JSON items, with each conversation's intents and offer outcomes."""
    ids = [r.id for r in rows]
    intents: dict[int, dict[str, int]] = defaultdict(dict)
    outcomes: dict[int, dict[str, int]] = defaultdict(dict)
    if ids:
        with engine.connect() as conn:
            for cid, intent, n in conn.execute(
                select(INTENTS.c.conversation_id, INTENTS.c.intent, func.sum(INTENTS.c.turns))
                .where(INTENTS.c.conversation_id.in_(ids))
                .group_by(INTENTS.c.conversation_id, INTENTS.c.intent)
            ):
                intents[cid][intent] = int(n)
            for cid, status, n in conn.execute(
                select(OFFERS.c.conversation_id, Offer.status, func.count())
                .join(Offer, Offer.id == OFFERS.c.offer_id)
                .where(OFFERS.c.conversation_id.in_(ids))
                .group_by(OFFERS.c.conversation_id, Offer.status)
            ):
                outcomes[cid][status] = int(n)
    return [
        {
            "sender_id": r.sender_id,
            "customer_ref": r.customer_ref,
            "started_at": iso(r.started_at),
            "last_event_at": iso(r.last_event_at),
            "turns": r.turns,
            "voice_turns": r.voice_turns,
            "intents": sorted(intents[r.id], key=lambda i: (-intents[r.id][i], i)),
            "min_confidence": None if r.min_confidence is None else round(r.min_confidence, 4),
            "fallback": r.fallback_turns > 0,
            "offers_made": r.offers_made,
            "offers_accepted": outcomes[r.id].get("accepted", 0),
            "offers_declined": outcomes[r.id].get("declined", 0),
            "first_message": r.first_message,
        }
        for r in rows
    ]


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None


def page(
    engine: Engine,
    f: ConversationFilter,
    low_confidence: float,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page:
    """One page of the filtered list, newest first."""
    c = CONVERSATIONS.c
    where = conditions(engine, f, low_confidence)
    if cursor:
        at, sender = decode_cursor(cursor)
        where.append(tuple_(c.last_event_at, c.sender_id) < tuple_(at, sender))
    query = (
        select(
            c.id,
            c.sender_id,
            c.customer_ref,
            c.started_at,
            c.last_event_at,
            c.turns,
            c.voice_turns,
            c.min_confidence,
            c.fallback_turns,
            c.offers_made,
            c.first_message,
        )
        .where(*where)
        .order_by(c.last_event_at.desc(), c.sender_id.desc())
        .limit(limit + 1)
    )
    with engine.connect() as conn:
        rows = list(conn.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].last_event_at, rows[-1].sender_id) if more and rows else None
    return Page(_items(engine, rows), next_cursor)


def every_page(
    engine: Engine, f: ConversationFilter, low_confidence: float, size: int = 1000
) -> Iterator[Page]:
    """Every matching conversation, a page at a time (the CSV export streams these)."""
    cursor: str | None = None
    while True:
        current = page(engine, f, low_confidence, size, cursor)
        yield current
        if current.next_cursor is None:
            return
        cursor = current.next_cursor


# --- one conversation ------------------------------------------------------------------------
def _offer_views(engine: Engine, shown: dict[int, dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The offers shown, as they stand now in ``offers`` (the payload's copy if erased since)."""
    views: dict[int, dict[str, Any]] = {}
    if not shown:
        return views
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                Offer.id,
                Offer.product_id,
                Product.title,
                Product.price_cents,
                Offer.percent_off,
                Offer.status,
                Offer.expires_at,
            )
            .join(Product, Product.id == Offer.product_id)
            .where(Offer.id.in_(list(shown)))
        )
        for r in rows:
            views[r.id] = {
                "id": r.id,
                "product_id": r.product_id,
                "title": r.title,
                "percent_off": r.percent_off,
                "offer_price": round(r.price_cents * (100 - r.percent_off) / 100) / 100,
                "status": r.status,
                "expires_at": iso(r.expires_at),
            }
    for offer_id, payload in shown.items():
        views.setdefault(
            offer_id,
            {
                "id": offer_id,
                "product_id": payload.get("product_id"),
                "title": payload.get("title"),
                "percent_off": payload.get("percent_off"),
                "offer_price": payload.get("offer_price"),
                "status": None,  # no longer in the store (the customer's data was erased)
                "expires_at": payload.get("expires_at"),
            },
        )
    return views


def transcript(store: Engine, tracker: Engine, sender_id: str) -> dict[str, Any] | None:
    """Every customer and bot message of one conversation, in order, with what the NLU read,
    the actions run, the products recommended and the offers shown (with their outcome now)."""
    with store.connect() as conn:
        summary = conn.execute(
            select(CONVERSATIONS.c.customer_ref).where(CONVERSATIONS.c.sender_id == sender_id)
        ).first()
    if summary is None:
        return None
    e = RASA_EVENTS.c
    with tracker.connect() as conn:
        events = list(
            conn.execute(
                select(e.id, e.type_name, e.timestamp, e.intent_name, e.action_name, e.data)
                .where(e.sender_id == sender_id, e.type_name.in_(("user", "bot", "action")))
                .order_by(e.id)
            )
        )
    turns: list[dict[str, Any]] = []
    shown: dict[int, dict[str, Any]] = {}
    customer_turn: dict[str, Any] | None = None
    action: str | None = None
    for event in events:
        if event.type_name == "action":
            if event.action_name and event.action_name not in IGNORED_ACTIONS:
                action = event.action_name
                if customer_turn is not None:
                    customer_turn["actions"].append(action)
            continue
        base = {"event_id": event.id, "at": iso(event_time(event.timestamp))}
        if event.type_name == "user":
            message = customer_message(load(event.data), event.intent_name)
            customer_turn = {
                **base,
                "speaker": "customer",
                "text": message.text,
                "channel": message.channel,
                "intent": message.intent,
                "confidence": None if message.confidence is None else round(message.confidence, 4),
                "entities": message.entities,
                "actions": [],
                "recommendations": [],
                "offer": None,
                "offers": [],
            }
            action = None
            turns.append(customer_turn)
        else:
            reply = bot_message(load(event.data))
            titles = {p["id"]: p["title"] for p in reply.recommendations}
            for offer in reply.offers:
                shown.setdefault(int(offer["id"]), {**offer, "title": titles.get(offer.get("product_id"))})
            turns.append(
                {
                    **base,
                    "speaker": "bot",
                    "text": reply.text,
                    "channel": None,
                    "intent": None,
                    "confidence": None,
                    "entities": [],
                    "actions": [action] if action else [],
                    "recommendations": reply.recommendations,
                    "offer": None,
                    "offers": [int(o["id"]) for o in reply.offers],
                }
            )
    views = _offer_views(store, shown)
    for turn in turns:
        turn["offers"] = [views[i] for i in turn["offers"] if i in views]
        turn["offer"] = turn["offers"][0] if turn["offers"] else None
    return {"sender_id": sender_id, "customer_ref": summary.customer_ref, "turns": turns}


__all__ = [
    "ConversationFilter",
    "FilterError",
    "Page",
    "every_page",
    "page",
    "parse_limit",
    "parse_range",
    "transcript",
]
