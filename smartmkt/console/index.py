"""The conversation index: an incremental summary of Rasa's ``events`` for the console.

Rasa appends events; the index reads the rows it has not seen yet (``id`` above the last one it
indexed, in batches) and folds them into one summary row per conversation (sender id) plus
per-day figures, per-day intents and the offers shown (smartmkt.store.models, ``Console*``).
Lists, filters and the dashboard then read small indexed tables instead of parsing events.

``catch_up`` runs before each console query and costs one indexed read when nothing is new.
Several app processes may call it at once: each batch first moves the high-water mark with a
compare-and-set (``UPDATE ... WHERE last_event_id = <what I read>``) in the same transaction that
writes the batch, so a batch is applied exactly once; the loser rolls back and reads again.

Ids and commit order: an id that is missing below newer rows is either a transaction still
committing (PostgreSQL hands out ids before commit) or a deleted/rolled-back row. The index waits
for it while the rows after it are younger than ``GAP_GRACE_S`` and passes over it after that.
On SQLite (ids are max + 1 under the write lock) gaps only come from deleted rows. An erased
conversation should also be dropped from the index with ``forget``; ``smartmkt console reindex``
rebuilds everything from ``events``.

Broker mode (``SMARTMKT_AMQP_URL`` set, several replicas): Rasa publishes every event to RabbitMQ
and smartmkt/console/consumer.py folds the queue with ``fold_published``; the console then no
longer reads ``events`` before a query (web/console_access.py). RabbitMQ delivers at least once,
so each folded event's key goes into ``console_seen_events`` in the transaction that folds it and
an event whose key is already there is not counted again. Rasa's events have no id of their own
(only a customer message has a ``message_id``), so the key (``event_key``) is a hash of the
sender id, the event type, the timestamp's ``repr`` and the event's name: the message id of a
customer message, the text of a bot message, else the action, slot or other name Rasa stores in
``action_name`` (the intent when a customer message has no id). Two distinct events with all of
these equal (same conversation, type and name at the same float timestamp, to 0.2 microseconds)
would count once; Rasa stamps each event with ``time.time()`` when it is made, so they do not
occur in practice. The same key is computed from a row of ``events``, so in broker mode the
catch-ups that still read ``events`` (``smartmkt console reindex``, erasure, retention) record
and check the keys too (``dedupe``) and an event folded both ways counts once.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    Table,
    bindparam,
    case,
    delete,
    func,
    inspect,
    select,
    update,
)

from smartmkt.console.events import (
    FALLBACK_ACTION,
    RASA_EVENTS,
    bot_message,
    customer_message,
    event_time,
    load,
)
from smartmkt.settings import get_settings
from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import dialect_insert
from smartmkt.store.models import (
    ConsoleConversation,
    ConsoleConversationDay,
    ConsoleConversationIntent,
    ConsoleConversationOffer,
    ConsoleIndexState,
    ConsoleIntentDay,
    ConsoleSeenEvent,
)

BATCH = 5_000  # events per transaction: short write locks for Rasa and the actions
GAP_GRACE_S = 60.0
SEARCH_MAX_CHARS = 20_000  # a conversation's searchable text keeps its first 20,000 characters
STATE = "events"
_CHUNK = 500  # ids per IN (...) list

CONVERSATIONS = cast(Table, ConsoleConversation.__table__)
DAYS = cast(Table, ConsoleConversationDay.__table__)
INTENTS = cast(Table, ConsoleConversationIntent.__table__)
INTENT_DAYS = cast(Table, ConsoleIntentDay.__table__)
OFFERS = cast(Table, ConsoleConversationOffer.__table__)
STATE_TABLE = cast(Table, ConsoleIndexState.__table__)
SEEN = cast(Table, ConsoleSeenEvent.__table__)
Progress = Callable[[int, int], None]  # (events indexed so far, events to index)
# An event to fold: a row of ``_event_rows()`` or a ``PublishedEvent``, with the same attributes
# (id, sender_id, type_name, timestamp, intent_name, action_name, data).
EventRow = Any
# A SHA-256 digest spelled with the letters a-p instead of hex digits: a key never holds a run of
# digits that a scan for card or phone numbers in stored columns could match by chance.
_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")


@dataclass
class IndexRun:
    """What one catch-up did."""

    events: int = 0  # read from Rasa's table
    folded: int = 0  # of those, folded now (with keys: not folded before from the queue)
    conversations: int = 0  # conversations touched (a conversation in two batches counts twice)
    last_event_id: int = 0
    seconds: float = 0.0


@dataclass
class _Summary:
    """A conversation's row while a batch is folded into it."""

    sender_id: str
    started_at: datetime
    last_event_at: datetime
    last_event_id: int
    id: int | None = None
    customer_ref: str | None = None  # the customer Rasa verified (metadata.customer), issue 7
    turns: int = 0
    voice_turns: int = 0
    fallback_turns: int = 0
    min_confidence: float | None = None
    first_message: str | None = None
    search_text: str = ""
    turn_fallback: bool = False
    days: dict[date, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    intents: dict[tuple[str, date], int] = field(default_factory=lambda: defaultdict(int))
    offers: dict[int, tuple[datetime, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Row[Any]) -> _Summary:
        return cls(
            sender_id=row.sender_id,
            started_at=as_utc(row.started_at),
            last_event_at=as_utc(row.last_event_at),
            last_event_id=row.last_event_id,
            id=row.id,
            customer_ref=row.customer_ref,
            turns=row.turns,
            voice_turns=row.voice_turns,
            fallback_turns=row.fallback_turns,
            min_confidence=row.min_confidence,
            first_message=row.first_message,
            search_text=row.search_text,
            turn_fallback=row.turn_fallback,
        )

    def fold(self, event: EventRow) -> None:
        """One event of this conversation, in id order (a published event: in timestamp order).
        A published event's id is 0 (``PublishedEvent``): ``last_event_id`` keeps the largest id
        folded from ``events`` (0 when every event came from the broker) and an offer shown in a
        published event keeps event id 0; nothing reads either but the index itself."""
        at = event_time(event.timestamp)
        self.started_at = min(self.started_at, at)
        self.last_event_at = max(self.last_event_at, at)
        self.last_event_id = max(self.last_event_id, event.id)
        if event.type_name == "user":
            self._customer_turn(event, at)
        elif event.type_name == "action" and event.action_name == FALLBACK_ACTION and not self.turn_fallback:
            self._count_fallback(at.date())
        elif event.type_name == "bot":
            for offer in bot_message(load(event.data)).offers:
                self.offers.setdefault(int(offer["id"]), (at, event.id))

    def _customer_turn(self, event: EventRow, at: datetime) -> None:
        data = load(event.data)
        message = customer_message(data, event.intent_name)
        if self.customer_ref is None or self.customer_ref == self.sender_id:
            self.customer_ref = verified_customer(data) or self.customer_ref
        day = self.days[at.date()]
        self.turns += 1
        day[0] += 1
        if message.channel == "voice":
            self.voice_turns += 1
            day[1] += 1
        self.turn_fallback = False
        if message.intent:
            self.intents[(message.intent, at.date())] += 1
        if message.confidence is not None:
            self.min_confidence = (
                message.confidence
                if self.min_confidence is None
                else min(self.min_confidence, message.confidence)
            )
        if message.is_fallback:
            self._count_fallback(at.date())
        text = message.text.strip()
        if text:
            if self.first_message is None:
                self.first_message = text
            if len(self.search_text) < SEARCH_MAX_CHARS:
                joined = f"{self.search_text}\n{text}" if self.search_text else text
                self.search_text = joined[:SEARCH_MAX_CHARS]

    def _count_fallback(self, day: date) -> None:
        self.fallback_turns += 1
        self.days[day][2] += 1
        self.turn_fallback = True

    def values(self) -> dict[str, Any]:
        return {
            "sender_id": self.sender_id,
            # the customer Rasa verified for this session (bot/customer_identity.py); a
            # conversation from before customer tokens keeps its sender id
            "customer_ref": self.customer_ref or self.sender_id,
            "started_at": self.started_at,
            "last_event_at": self.last_event_at,
            "last_event_id": self.last_event_id,
            "turns": self.turns,
            "voice_turns": self.voice_turns,
            "fallback_turns": self.fallback_turns,
            "min_confidence": self.min_confidence,
            "first_message": self.first_message,
            "search_text": self.search_text,
            "turn_fallback": self.turn_fallback,
        }


def verified_customer(data: dict[str, Any]) -> str | None:
    """The customer reference Rasa put on a customer message (``metadata.customer.ref``)."""
    metadata = data.get("metadata")
    customer = metadata.get("customer") if isinstance(metadata, dict) else None
    ref = customer.get("ref") if isinstance(customer, dict) else None
    return ref[:255] if isinstance(ref, str) and ref else None


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL)."""
    return dialect_insert(conn, table)


def _add_up(
    conn: Connection, table: Table, keys: list[str], counters: list[str], rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows``, or add their counters to the rows already there."""
    if rows:
        stmt = _insert(conn, table)
        stmt = stmt.on_conflict_do_update(
            index_elements=keys, set_={c: table.c[c] + stmt.excluded[c] for c in counters}
        )
        conn.execute(stmt, rows)


def events_table_exists(tracker: Engine) -> bool:
    """Rasa creates ``events`` when it first starts; until then there is nothing to index."""
    if getattr(tracker, "_smartmkt_events_seen", False):
        return True
    exists = inspect(tracker).has_table(RASA_EVENTS.name)
    if exists:
        tracker._smartmkt_events_seen = True  # type: ignore[attr-defined]
    return exists


def _read_state(store: Engine) -> int:
    with store.connect() as conn:
        last = conn.scalar(select(STATE_TABLE.c.last_event_id).where(STATE_TABLE.c.name == STATE))
    if last is None:  # a store migrated before the row existed, or the row was deleted by hand
        with store.begin() as conn:
            conn.execute(
                _insert(conn, STATE_TABLE).on_conflict_do_nothing(), {"name": STATE, "last_event_id": 0}
            )
        return 0
    return int(last)


def _event_rows() -> Select[Any]:
    """The columns of ``events`` the index folds (only user and bot events need their JSON)."""
    e = RASA_EVENTS.c
    wanted = e.type_name.in_(("user", "bot"))
    return select(
        e.id,
        e.sender_id,
        e.type_name,
        e.timestamp,
        e.intent_name,
        e.action_name,
        case((wanted, e.data)).label("data"),
    )


def _read_events(tracker: Engine, after: int, limit: int) -> list[Row[Any]]:
    e = RASA_EVENTS.c
    query = _event_rows().where(e.id > after).order_by(e.id).limit(limit)
    with tracker.connect() as conn:
        return list(conn.execute(query))


def _settled(rows: list[Row[Any]], after: int, now: float) -> list[Row[Any]]:
    """The rows that can be indexed now: up to the first gap that may still fill (module doc)."""
    expected = after + 1
    for i, row in enumerate(rows):
        if row.id != expected and (row.timestamp or 0.0) > now - GAP_GRACE_S:
            return rows[:i]
        expected = row.id + 1
    return rows


def _apply(conn: Connection, rows: Sequence[EventRow]) -> int:
    """Fold one batch of events into the index; returns the conversations touched."""
    by_sender: dict[str, list[EventRow]] = defaultdict(list)
    for row in rows:
        by_sender[row.sender_id].append(row)
    senders = list(by_sender)
    summaries: dict[str, _Summary] = {}
    for chunk in _chunks(senders):
        for row in conn.execute(select(CONVERSATIONS).where(CONVERSATIONS.c.sender_id.in_(chunk))):
            summaries[row.sender_id] = _Summary.of(row)
    for sender, events in by_sender.items():
        summary = summaries.get(sender)
        if summary is None:
            first = event_time(events[0].timestamp)
            summary = summaries[sender] = _Summary(sender, first, first, events[0].id)
        for event in events:
            summary.fold(event)

    new = [s for s in summaries.values() if s.id is None]
    inserted = {s.sender_id for s in new}
    if new:
        returned = conn.execute(
            _insert(conn, CONVERSATIONS).returning(CONVERSATIONS.c.id, CONVERSATIONS.c.sender_id),
            [{**s.values(), "offers_made": 0} for s in new],
        )
        for conversation_id, sender in returned:
            summaries[sender].id = conversation_id
    old = [s for s in summaries.values() if s.sender_id not in inserted]
    if old:
        fields = list(old[0].values())
        conn.execute(
            update(CONVERSATIONS)
            .where(CONVERSATIONS.c.id == bindparam("b_id"))
            .values({f: bindparam(f"b_{f}") for f in fields}),
            [{"b_id": s.id, **{f"b_{f}": v for f, v in s.values().items()}} for s in old],
        )
    _add_up(
        conn,
        DAYS,
        ["conversation_id", "day"],
        ["turns", "voice_turns", "fallback_turns"],
        [
            {"conversation_id": s.id, "day": day, "turns": t, "voice_turns": v, "fallback_turns": f}
            for s in summaries.values()
            for day, (t, v, f) in s.days.items()
        ],
    )
    _add_up(
        conn,
        INTENTS,
        ["conversation_id", "intent", "day"],
        ["turns"],
        [
            {"conversation_id": s.id, "intent": intent, "day": day, "turns": n}
            for s in summaries.values()
            for (intent, day), n in s.intents.items()
        ],
    )
    per_day: dict[tuple[str, date], int] = defaultdict(int)
    for s in summaries.values():
        for key, n in s.intents.items():
            per_day[key] += n
    _add_up(
        conn,
        INTENT_DAYS,
        ["day", "intent"],
        ["turns"],
        [{"day": day, "intent": intent, "turns": n} for (intent, day), n in per_day.items()],
    )
    offered = [
        {"conversation_id": s.id, "offer_id": offer_id, "shown_at": at, "event_id": event_id}
        for s in summaries.values()
        for offer_id, (at, event_id) in s.offers.items()
    ]
    if offered:
        conn.execute(_insert(conn, OFFERS).on_conflict_do_nothing(), offered)
        with_offers = sorted({int(s.id) for s in summaries.values() if s.offers and s.id is not None})
        count = (
            select(func.count())
            .select_from(OFFERS)
            .where(OFFERS.c.conversation_id == CONVERSATIONS.c.id)
            .scalar_subquery()
        )
        for chunk in _chunks(with_offers):
            conn.execute(update(CONVERSATIONS).where(CONVERSATIONS.c.id.in_(chunk)).values(offers_made=count))
    return len(summaries)


# --- event keys and the broker's events (module doc, "Broker mode") ----------------------------
def event_key(sender_id: str, type_name: str, timestamp: float | None, name: str | None) -> str:
    """The key an event is deduplicated on: 64 letters (a SHA-256 spelled a-p, see ``_LETTERS``)."""
    text = "\x1f".join((sender_id, type_name, repr(timestamp), name or ""))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest().translate(_LETTERS)


def _event_name(row: EventRow) -> str | None:
    """What tells this event from another of its type at the same time (module doc)."""
    if row.type_name == "user":
        message_id = load(row.data).get("message_id")
        return str(message_id) if message_id else row.intent_name
    if row.type_name == "bot":
        return str(load(row.data).get("text") or "")
    return row.action_name  # type: ignore[no-any-return]


def row_key(row: EventRow) -> str:
    """``event_key`` of a row of ``events`` or a ``PublishedEvent`` (the same for one event)."""
    return event_key(row.sender_id, row.type_name, row.timestamp, _event_name(row))


def _claim(conn: Connection, rows: Sequence[EventRow]) -> tuple[list[EventRow], int]:
    """Record the keys of ``rows`` in the caller's transaction; returns the rows whose key was new
    (in their order) and how many were seen before (or twice in ``rows``)."""
    keyed: dict[str, EventRow] = {}
    for row in rows:
        keyed.setdefault(row_key(row), row)
    now = utcnow()
    new: set[str] = set()
    keys = list(keyed)
    for chunk in _chunks(keys):
        stmt = _insert(conn, SEEN).values([{"key": k, "seen_at": now} for k in chunk])
        new.update(conn.scalars(stmt.on_conflict_do_nothing().returning(SEEN.c.key)))
    fresh = [row for key, row in keyed.items() if key in new]
    return fresh, len(rows) - len(fresh)


@dataclass(frozen=True)
class PublishedEvent:
    """An event as Rasa publishes it (``{"sender_id": ..., **event.as_dict()}``), with the
    attributes of a row of ``events`` that Rasa's SQL tracker store would have written for it.
    ``id`` is 0: a broker event has no row id (see ``_Summary.fold`` for what 0 means)."""

    sender_id: str
    type_name: str
    timestamp: float
    intent_name: str | None
    action_name: str | None
    data: str | None  # the event's JSON, kept for customer and bot messages only (as _event_rows)
    id: int = 0

    @classmethod
    def of(cls, body: Any) -> PublishedEvent | None:
        """The event of a published message's JSON, or None when it is not one."""
        if not isinstance(body, dict):
            return None
        sender, kind, ts = body.get("sender_id"), body.get("event"), body.get("timestamp")
        if not isinstance(sender, str) or not sender or not isinstance(kind, str) or not kind:
            return None
        if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
            return None
        event = {k: v for k, v in body.items() if k != "sender_id"}
        parse = event.get("parse_data")
        intent = parse.get("intent") if isinstance(parse, dict) else None
        intent_name = intent.get("name") if isinstance(intent, dict) else None
        action_name = event.get("name")
        try:
            data = json.dumps(event) if kind in ("user", "bot") else None
        except (TypeError, ValueError):
            return None
        return cls(
            sender_id=sender[:255],
            type_name=kind[:255],
            timestamp=float(ts),
            intent_name=intent_name[:255] if isinstance(intent_name, str) else None,
            action_name=action_name[:255] if isinstance(action_name, str) else None,
            data=data,
        )


@dataclass
class FoldRun:
    """What one ``fold_published`` did."""

    folded: int = 0  # events counted in the index
    duplicates: int = 0  # events whose key was already seen (a redelivery, a republished event)
    dropped: int = 0  # not an event (no sender_id, event or timestamp)
    conversations: int = 0


def fold_published(store: Engine, events: Sequence[Any]) -> FoldRun:
    """Fold published events (the JSON of the broker's messages) into the index in one
    transaction: an event already seen, or not an event at all, is counted and left out. The
    events are folded in timestamp order (the order Rasa made them in)."""
    run = FoldRun()
    parsed: list[PublishedEvent] = []
    for body in events:
        event = PublishedEvent.of(body)
        if event is None:
            run.dropped += 1
        else:
            parsed.append(event)
    if not parsed:
        return run
    parsed.sort(key=lambda e: e.timestamp)
    with store.begin() as conn:
        fresh, run.duplicates = _claim(conn, parsed)
        if fresh:
            run.conversations = _apply(conn, fresh)
    run.folded = len(fresh)
    return run


def broker_mode() -> bool:
    """Whether Rasa's events reach the index through the broker (``SMARTMKT_AMQP_URL`` set)."""
    return bool(get_settings().amqp_url)


class _Overtaken(Exception):
    """The high-water mark moved since it was read."""


def catch_up(
    store: Engine,
    tracker: Engine,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    max_batches: int | None = None,
    dedupe: bool | None = None,
    older_than_s: float = 0.0,
) -> IndexRun:
    """Index the events not indexed yet (all of them, or ``max_batches`` batches); cheap when
    there is none. With ``dedupe`` (default: in broker mode) each event's key is recorded and an
    event the consumer already folded is not counted again (module doc)."""
    if dedupe is None:
        dedupe = broker_mode()
    started = time.perf_counter()
    run = IndexRun()
    if not events_table_exists(tracker):
        return run
    total: int | None = None
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        last = _read_state(store)
        run.last_event_id = last
        if progress and total is None:
            with tracker.connect() as conn:
                total = (
                    conn.scalar(select(func.count()).select_from(RASA_EVENTS).where(RASA_EVENTS.c.id > last))
                    or 0
                )
        fetched = _read_events(tracker, last, batch_size)
        rows = _settled(fetched, last, time.time())
        if older_than_s:  # only events at least this old (the consumer's sweep: the queue first)
            young = next(
                (i for i, r in enumerate(rows) if (r.timestamp or 0.0) > time.time() - older_than_s), None
            )
            rows = rows if young is None else rows[:young]
        if not rows:
            break
        try:
            with store.begin() as conn:
                claimed = conn.execute(
                    update(STATE_TABLE)
                    .where(STATE_TABLE.c.name == STATE, STATE_TABLE.c.last_event_id == last)
                    .values(last_event_id=rows[-1].id, updated_at=utcnow())
                ).rowcount
                if claimed != 1:
                    raise _Overtaken
                fresh = _claim(conn, rows)[0] if dedupe else rows
                if fresh:
                    run.conversations += _apply(conn, fresh)
        except _Overtaken:  # another process indexed this batch first (rolled back): read again
            continue
        run.events += len(rows)
        run.folded += len(fresh)
        run.last_event_id = rows[-1].id
        if progress:
            progress(run.events, max(total or 0, run.events))
        if len(rows) < len(fetched) or len(fetched) < batch_size:
            break
    run.seconds = time.perf_counter() - started
    return run


def clear(store: Engine) -> None:
    """Empty the index and the keys of the events it folded (the next catch-up reads every event
    again)."""
    with store.begin() as conn:
        for table in (OFFERS, INTENTS, DAYS, INTENT_DAYS, SEEN):
            conn.execute(delete(table))
        conn.execute(delete(CONVERSATIONS))
        conn.execute(
            update(STATE_TABLE)
            .where(STATE_TABLE.c.name == STATE)
            .values(last_event_id=0, updated_at=utcnow())
        )


def rebuild(
    store: Engine,
    tracker: Engine,
    batch_size: int = BATCH,
    progress: Progress | None = None,
    dedupe: bool | None = None,
    older_than_s: float = 0.0,
) -> IndexRun:
    """The index from scratch, from every row of ``events``. In broker mode (``dedupe``) the keys
    are recorded again as the events are read, so the consumer does not count them a second
    time when the broker still holds some of them."""
    clear(store)
    return catch_up(store, tracker, batch_size, progress, dedupe=dedupe)


def forget(store: Engine, sender_id: str) -> bool:
    """Drop one conversation from the index (after its events were erased)."""
    with store.begin() as conn:
        return bool(forget_in(conn, [sender_id]))


def forget_in(conn: Connection, sender_ids: Sequence[str]) -> int:
    """Drop these conversations from the index in the caller's transaction (their rows, and their
    turns from the per-day intent totals); returns how many were indexed. On SQLite the search
    table's triggers remove their text from the FTS index."""
    ids: list[int] = []
    for chunk in _chunks(list(sender_ids)):
        ids += conn.scalars(select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.sender_id.in_(chunk)))
    for chunk in _chunks(ids):
        counted = conn.execute(
            select(INTENTS.c.intent, INTENTS.c.day, INTENTS.c.turns).where(
                INTENTS.c.conversation_id.in_(chunk)
            )
        ).all()
        if counted:  # its turns leave the per-day intent totals
            conn.execute(
                update(INTENT_DAYS)
                .where(INTENT_DAYS.c.intent == bindparam("b_intent"), INTENT_DAYS.c.day == bindparam("b_day"))
                .values(turns=INTENT_DAYS.c.turns - bindparam("b_turns")),
                [{"b_intent": i, "b_day": d, "b_turns": n} for i, d, n in counted],
            )
        for table in (OFFERS, INTENTS, DAYS):
            conn.execute(delete(table).where(table.c.conversation_id.in_(chunk)))
        conn.execute(delete(CONVERSATIONS).where(CONVERSATIONS.c.id.in_(chunk)))
    if ids:
        conn.execute(delete(INTENT_DAYS).where(INTENT_DAYS.c.turns <= 0))
    return len(ids)


def refold_in(conn: Connection, tracker: Engine, sender_ids: Sequence[str]) -> int:
    """Index these conversations again from the events they have left (after some were purged),
    in the caller's transaction: up to the index's high-water mark, as if every event the index
    has read had been read now; later events are the next catch-up's. Returns the events folded.

    The transaction's first statement takes the index state row (a write: SQLite's write lock,
    PostgreSQL's row lock), so a concurrent catch-up waits and then folds only events above it.
    In broker mode an event the consumer folds for these conversations after the caller's
    catch-up and before this refold is above the mark and already seen: it leaves the index until
    ``smartmkt console reindex`` (a window of the purge's length)."""
    conn.execute(update(STATE_TABLE).where(STATE_TABLE.c.name == STATE).values(updated_at=utcnow()))
    last = conn.scalar(select(STATE_TABLE.c.last_event_id).where(STATE_TABLE.c.name == STATE)) or 0
    forget_in(conn, sender_ids)
    e = RASA_EVENTS.c
    rows: list[Row[Any]] = []
    for chunk in _chunks(list(sender_ids)):
        with tracker.connect() as read:
            rows += read.execute(_event_rows().where(e.sender_id.in_(chunk), e.id <= last))
    rows.sort(key=lambda r: r.id)
    if rows:
        _apply(conn, rows)
    return len(rows)
