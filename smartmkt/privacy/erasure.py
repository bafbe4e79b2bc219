"""Erase a customer: every row that names them or their conversations, in every table.

``TABLES`` says, for every table of the store and of Rasa's tracker store, what an erasure does to
it; tests/test_privacy_erasure.py compares it with the tables the databases really have, so a
new table cannot be forgotten. In short:

- deleted: the customer row, their offers, consents, purchase scores, quarantined import rows
  that name them, the webhook events about them for the shop's endpoints, the events of their
  conversations (Rasa's ``events``), those conversations in the console's index (with their
  search text) and the NLU reviews of their messages;
- kept without the link: their orders (accounting needs them; ``customer_id`` and the ``offer_id``
  of an erased offer become NULL);
- added: one ``erasure_audit`` row: when, who asked (``customer``, ``operator:<name>``) and how
  many rows went, by table; no id, reference or text of the customer.

A customer's conversations are the sender ids given, the customer's reference itself (a sender id
that named the customer before customer tokens), every conversation the console's index has under
the customer's reference, and every chat session with a message Rasa verified as the customer's
(``metadata.customer.ref``, which a signed customer token puts there), read from the events.

On SQLite the deletions run with ``secure_delete`` (freed pages are zeroed), the search index is
merged afterwards (``optimize``: no deleted word stays in its segments) and the write-ahead log is
checkpointed and truncated when no reader holds it. On PostgreSQL the space of deleted rows is
reclaimed by (auto)vacuum.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, delete, func, select, text, update
from sqlalchemy.exc import OperationalError

from smartmkt.console import index
from smartmkt.console.events import RASA_EVENTS
from smartmkt.store.clock import utcnow
from smartmkt.store.models import (
    Consent,
    ConsoleConversation,
    Customer,
    CustomerScore,
    ErasureAudit,
    NluReview,
    Offer,
    Order,
    QuarantinedRow,
    WebhookDelivery,
)

log = logging.getLogger(__name__)

FTS_TABLE = "console_conversation_search"  # SQLite FTS5 over console_conversations (migration 0007)
_CHUNK = 500

# Every table of the store and the tracker store, and what erasing a customer does to it.
TABLES: dict[str, str] = {
    "customers": "deleted: the customer's row",
    "orders": "kept for accounting, unlinked: customer_id and the offer_id of an erased offer set NULL",
    "offers": "deleted: every offer made to the customer, with its discount code",
    "customer_scores": "deleted: the purchase model's scores of the customer",
    "consents": "deleted: the customer's consent decisions",
    "quarantine": "deleted: import rows set aside that name the customer (customers and orders files)",
    "events": "deleted: every event of the customer's conversations (Rasa's tracker store)",
    "console_conversations": "deleted: the customer's conversations in the console's index",
    "console_conversation_days": "deleted with their conversations",
    "console_conversation_intents": "deleted with their conversations",
    "console_conversation_offers": "deleted with their conversations",
    "console_intent_days": "decremented: turns per intent and day over all conversations, no sender",
    FTS_TABLE: "SQLite FTS5 index of console_conversations.search_text: emptied with its rows, then merged",
    "nlu_reviews": "deleted: the reviews of the customer's messages",
    "erasure_audit": "one row added: when, by whom, rows deleted per table; no customer id or reference",
    "products": "no personal data: the catalog",
    "import_runs": "no personal data: files imported and their counts",
    "demo_clock": "no personal data: how far the demo store's dates were moved",
    "console_users": "no customer data: the marketers' accounts",
    "console_sessions": "no customer data: the marketers' logins",
    "login_failures": "no customer data: hashed keys of failed console logins (the login rate limit)",
    "console_index_state": "no personal data: how far the index has read",
    "console_seen_events": "kept: one-way keys (hashes) of events the index folded, to count each once;"
    " no id, reference or text can be read back from them",
    "api_keys": "no customer data: the shop integrations' API keys (hashed)",
    "api_key_minutes": "no customer data: requests per API key and minute (the keys' rate limit)",
    "catalog_state": "no personal data: the catalog's version",
    "webhook_receipts": "no customer data: hashes of shop webhook bodies processed, and their counts",
    "webhook_endpoints": "no customer data: the shop's URLs for smartmkt's events",
    "webhook_deliveries": "deleted: events about the customer for the shop (offer.created...), sent or not",
    "alembic_version": "no personal data: the schema's version",
}


def table_treatment(name: str) -> str | None:
    """What an erasure does to table ``name`` (SQLite's FTS shadow tables go with their index)."""
    if name in TABLES:
        return TABLES[name]
    if name.startswith(f"{FTS_TABLE}_"):
        return TABLES[FTS_TABLE]
    return None


@dataclass
class Erasure:
    """What one erasure removed (or, as a preview, would remove)."""

    customer_ref: str
    senders: tuple[str, ...]
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        return any(self.counts.values())


def operator() -> str:
    """Who runs a command, for the audit: ``operator:<login>``."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "unknown"
    return f"operator:{name}"[:32]


def chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


def senders_of(
    store: Engine, tracker: Engine, customer_ref: str, extra: Iterable[str] = ()
) -> tuple[str, ...]:
    """The customer's conversations: ``extra``, the reference itself, every conversation the
    console's index has under the customer's reference, and every conversation in Rasa's events
    with a customer message Rasa verified as theirs (``metadata.customer.ref``; read from the
    events themselves, so a session the index has not read yet is found too)."""
    index.catch_up(store, tracker)  # what is indexed before the erasure leaves no gap behind it
    c = _table(ConsoleConversation).c
    with store.connect() as conn:
        indexed = set(conn.scalars(select(c.sender_id).where(c.customer_ref == customer_ref)))
    verified: set[str] = set()
    if index.events_table_exists(tracker):
        e = RASA_EVENTS.c
        marked = json.dumps({"ref": customer_ref})[1:-1]  # '"ref": "<ref>"' as Rasa's json.dumps writes it
        with tracker.connect() as conn:
            verified.update(
                conn.scalars(
                    select(e.sender_id)
                    .where(e.type_name == "user", e.data.contains(marked, autoescape=True))
                    .distinct()
                )
            )
    return tuple(sorted({customer_ref, *extra, *indexed, *verified}))


def secure_delete(conn: Connection) -> None:
    """SQLite: zero the pages this connection's deletions free (no-op elsewhere)."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA secure_delete = ON")


def _events(conn: Connection, senders: Sequence[str], erase: bool) -> tuple[int, list[int]]:
    """(events of these conversations, ids of the customer messages among them); deleted if
    ``erase``."""
    e = RASA_EVENTS.c
    total = 0
    user_ids: list[int] = []
    for chunk in chunks(senders):
        mine = e.sender_id.in_(chunk)
        user_ids += conn.scalars(select(e.id).where(mine, e.type_name == "user"))
        if erase:
            total += conn.execute(delete(RASA_EVENTS).where(mine)).rowcount
        else:
            total += conn.scalar(select(func.count()).select_from(RASA_EVENTS).where(mine)) or 0
    return total, user_ids


def delete_reviews(conn: Connection, senders: Sequence[str], event_ids: Sequence[int], erase: bool) -> int:
    """NLU reviews of these conversations or of these events."""
    reviews = _table(NluReview)
    ids: set[int] = set()
    for chunk in chunks(senders):
        ids.update(conn.scalars(select(reviews.c.id).where(reviews.c.sender_id.in_(chunk))))
    for chunk in chunks(event_ids):
        ids.update(conn.scalars(select(reviews.c.id).where(reviews.c.event_id.in_(chunk))))
    if erase:
        for chunk in chunks(sorted(ids)):
            conn.execute(delete(reviews).where(reviews.c.id.in_(chunk)))
    return len(ids)


def _quarantined(conn: Connection, customer_ref: str) -> list[int]:
    """Quarantined customer and order rows whose customer id is this customer's reference."""
    rows = _table(QuarantinedRow)
    found = []
    candidates = conn.execute(
        select(rows.c.id, rows.c.fields).where(
            rows.c.kind.in_(("customers", "orders")), rows.c.raw.contains(customer_ref, autoescape=True)
        )
    )
    for row_id, fields in candidates:
        if isinstance(fields, dict) and str(fields.get("customer_id") or "").strip() == customer_ref:
            found.append(int(row_id))
    return found


def _customer_rows(conn: Connection, customer_ref: str, erase: bool) -> dict[str, int]:
    customers, offers, orders = _table(Customer), _table(Offer), _table(Order)
    counts = {"customers": 0, "offers": 0, "consents": 0, "customer_scores": 0, "orders_unlinked": 0}
    quarantined = _quarantined(conn, customer_ref)
    counts["quarantine"] = len(quarantined)
    deliveries = _table(WebhookDelivery)
    about_them = deliveries.c.customer_ref == customer_ref  # sent to the shop, or waiting to be
    if erase:
        counts["webhook_deliveries"] = conn.execute(delete(deliveries).where(about_them)).rowcount
    else:
        counts["webhook_deliveries"] = (
            conn.scalar(select(func.count()).select_from(deliveries).where(about_them)) or 0
        )
    if erase:
        for chunk in chunks(quarantined):
            conn.execute(delete(_table(QuarantinedRow)).where(_table(QuarantinedRow).c.id.in_(chunk)))
    customer_id = conn.scalar(select(customers.c.id).where(customers.c.external_ref == customer_ref))
    if customer_id is None:
        return counts
    offer_ids = list(conn.scalars(select(offers.c.id).where(offers.c.customer_id == customer_id)))
    mine = {
        "offers": offers.c.customer_id == customer_id,
        "consents": _table(Consent).c.customer_id == customer_id,
        "customer_scores": _table(CustomerScore).c.customer_id == customer_id,
    }
    if not erase:
        for name, condition in mine.items():
            table = condition.left.table  # type: ignore[attr-defined]
            counts[name] = conn.scalar(select(func.count()).select_from(table).where(condition)) or 0
        theirs = orders.c.customer_id == customer_id
        counts["orders_unlinked"] = conn.scalar(select(func.count()).select_from(orders).where(theirs)) or 0
        counts["customers"] = 1
        return counts
    counts["orders_unlinked"] = conn.execute(
        update(orders).where(orders.c.customer_id == customer_id).values(customer_id=None)
    ).rowcount
    for chunk in chunks(offer_ids):  # an order placed through an erased offer keeps no link to it
        conn.execute(update(orders).where(orders.c.offer_id.in_(chunk)).values(offer_id=None))
    for name, condition in mine.items():
        table = condition.left.table  # type: ignore[attr-defined]
        counts[name] = conn.execute(delete(table).where(condition)).rowcount
    counts["customers"] = conn.execute(delete(customers).where(customers.c.id == customer_id)).rowcount
    return counts


def _erase_or_count(
    store: Engine, tracker: Engine, customer_ref: str, senders: Sequence[str], erase: bool, requested_by: str
) -> dict[str, int]:
    counts: dict[str, int] = {}
    have_events = index.events_table_exists(tracker)
    same = tracker is store
    user_ids: list[int] = []
    if have_events and not same:
        with tracker.begin() as conn:
            secure_delete(conn)
            counts["events"], user_ids = _events(conn, senders, erase)
    with store.begin() as conn:
        secure_delete(conn)
        if have_events and same:
            counts["events"], user_ids = _events(conn, senders, erase)
        if erase:
            counts["conversations"] = index.forget_in(conn, senders)
        else:
            conversations = _table(ConsoleConversation)
            counts["conversations"] = sum(
                conn.scalar(
                    select(func.count())
                    .select_from(conversations)
                    .where(conversations.c.sender_id.in_(chunk))
                )
                or 0
                for chunk in chunks(senders)
            )
        counts["nlu_reviews"] = delete_reviews(conn, senders, user_ids, erase)
        counts.update(_customer_rows(conn, customer_ref, erase))
        if erase:
            conn.execute(
                _table(ErasureAudit)
                .insert()
                .values(erased_at=utcnow(), requested_by=requested_by[:32], rows_deleted=counts)
            )
    return counts


def compact(engine: Engine) -> None:
    """SQLite: merge the search index (drops deleted words from its segments) and checkpoint the
    write-ahead log, truncating it if no reader holds it. Nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    with engine.begin() as conn:
        secure_delete(conn)
        if conn.scalar(text("SELECT 1 FROM sqlite_master WHERE name = :n"), {"n": FTS_TABLE}):
            conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('optimize')")
    with engine.connect() as conn, contextlib.suppress(OperationalError):
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def preview(store: Engine, tracker: Engine, customer_ref: str, senders: Iterable[str] = ()) -> Erasure:
    """What ``erase_customer`` would remove, changing nothing of the customer's."""
    who = senders_of(store, tracker, customer_ref, senders)
    return Erasure(customer_ref, who, _erase_or_count(store, tracker, customer_ref, who, False, ""))


def erase_customer(
    store: Engine,
    tracker: Engine,
    customer_ref: str,
    requested_by: str,
    senders: Iterable[str] = (),
) -> Erasure:
    """Erase the customer ``customer_ref`` and the conversations ``senders`` (and those found by
    ``senders_of``) as the module doc says, and record an anonymous audit row. Events go first
    (a separate tracker database commits on its own), then every store row in one transaction."""
    who = senders_of(store, tracker, customer_ref, senders)
    counts = _erase_or_count(store, tracker, customer_ref, who, True, requested_by)
    compact(store)
    if tracker is not store:
        compact(tracker)
    log.info("erased a customer on request of %s: %s", requested_by, counts)
    return Erasure(customer_ref, who, counts)


__all__ = [
    "TABLES",
    "Erasure",
    "compact",
    "erase_customer",
    "operator",
    "preview",
    "senders_of",
    "table_treatment",
]
