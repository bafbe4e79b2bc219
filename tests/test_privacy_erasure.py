"""Erasing a customer, checked the hard way: every table of the databases (found by SQLAlchemy's
inspection, so a new table cannot be forgotten) is read back afterwards, row by row; on SQLite the
database file itself no longer holds the customer's words. `smartmkt customer erase` asks first."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from privacy_support import assert_nothing_of_the_customer_left, cli_on, rows_of
from sqlalchemy import Engine, insert, inspect, select, text

from smartmkt.bench import rasa_events as rasa
from smartmkt.cli.main import app
from smartmkt.console import index
from smartmkt.console.reviews import save as save_review
from smartmkt.privacy.erasure import erase_customer, preview, table_treatment
from smartmkt.settings import Settings
from smartmkt.store.clock import utcnow
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.models import (
    Consent,
    Customer,
    CustomerScore,
    ErasureAudit,
    NluReview,
    Offer,
    Order,
    Product,
    QuarantinedRow,
)
from smartmkt.store.outbox import add_endpoint
from smartmkt.store.repository import StoreRepository

REF, OTHER = "cust-7781", "cust-5502"
SESSION = "s1.sess-7781-b"  # a chat session bound to REF by a customer token: found through the index
DEVICE = "kiosk-7781"  # a conversation named only by whoever asks for the erasure
MARKER, OTHER_MARKER = "zorblax", "quuxly"
T0 = 1_772_445_600.0  # 2026-03-02 10:00 UTC


def as_customer(rows: list[dict[str, Any]], ref: str) -> list[dict[str, Any]]:
    """The rows with ``metadata.customer`` on each customer message, as Rasa writes it for a
    session whose token it verified (bot/customer_identity.py)."""
    for row in rows:
        if row["type_name"] == "user":
            data = json.loads(row["data"])
            data["metadata"] = {**data.get("metadata", {}), "customer": {"ref": ref, "verified": True}}
            row["data"] = json.dumps(data)
    return rows


def conversation(sender: str, marker: str, start: float) -> list[dict[str, Any]]:
    conv = rasa.Conversation(sender, start)
    conv.turn(f"hi, I am the {marker} fan", "greet", actions=["action_greet"], replies=[("Hi!", None)])
    conv.turn(
        f"a comedy about {marker} under $10",
        "ask_recommendation",
        entities=[{"entity": "category", "value": "comedy", "start": 2, "end": 8}],
        actions=["action_recommend"],
        replies=[("Here are my picks", rasa.recommendations([{"id": 1, "title": "T", "price": 9.99}], None))],
    )
    return conv.rows


def populate(store: Engine, bot_dir: Path) -> dict[str, Any]:
    """Two customers with orders, offers (one accepted) and their webhook events for the shop, a
    consent, scores, quarantined import rows, conversations (one of them in a second session id),
    the console index and NLU reviews."""
    with session_scope(store) as s:
        for pid in (1, 2, 3):
            if s.get(Product, pid) is None:
                s.add(
                    Product(
                        id=pid, external_ref=f"p{pid}", title=f"Title {pid}", genres="Comedy", price_cents=999
                    )
                )
    repo = StoreRepository(store)
    add_endpoint(store, "https://shop.example/hooks", ["offer.created"])  # offers make events
    for ref in (REF, OTHER):
        repo.record_purchase(ref, 1, "text")
        offer = repo.create_offer(ref, 2, 10, "nudge", "nudge", {"p": 0.5}, "text", timedelta(days=7))
        assert offer is not None
        repo.record_purchase(ref, 2, "text")  # accepts the offer: the order links it
        repo.create_offer(ref, 3, 15, "nudge", "nudge", {}, "voice", timedelta(days=7))
    repo.opt_out(REF, "voice")
    repo.opt_out(OTHER, "text")
    with session_scope(store) as s:
        ids = {
            c.external_ref: c.id
            for c in s.scalars(select(Customer).where(Customer.external_ref.in_([REF, OTHER])))
        }
        for ref in (REF, OTHER):
            s.add(
                CustomerScore(
                    customer_id=ids[ref],
                    p_purchase=0.4,
                    expected_purchases=1.2,
                    expected_spend_cents=1200,
                    p_alive=0.8,
                    horizon_days=30,
                    model_version="t",
                    scored_at=utcnow(),
                )
            )
    with store.begin() as conn:
        for n, (ref, kind) in enumerate([(REF, "orders"), (OTHER, "orders"), (REF, "customers")]):
            conn.execute(
                insert(QuarantinedRow.__table__),
                {
                    "kind": kind,
                    "source_file": f"{kind}.csv",
                    "source_sha": "ab" * 32,
                    "line_number": n + 2,
                    "raw": f"{ref},p9,not a date",
                    "fields": {"customer_id": ref, "product_id": "p9"},
                    "rule": "bad_date",
                    "detail": "unreadable date",
                    "created_at": utcnow(),
                },
            )
        rows = conversation(REF, MARKER, T0) + as_customer(conversation(SESSION, MARKER, T0 + 50), REF)
        rows += conversation(DEVICE, MARKER, T0 + 70)
        rows += conversation(OTHER, OTHER_MARKER, T0 + 100)
        rasa.write(conn, sorted(rows, key=lambda r: r["timestamp"]))
    index.catch_up(store, store)
    with store.connect() as conn:
        last_said = text("SELECT sender_id, max(id) FROM events WHERE type_name = 'user' GROUP BY sender_id")
        user_events = {sender: event_id for sender, event_id in conn.execute(last_said)}
    for sender in (REF, SESSION, OTHER):
        event_id = user_events[sender]
        marker = OTHER_MARKER if sender == OTHER else MARKER
        said = f"a comedy about {marker} under $10"
        save_review(store, store, bot_dir, event_id, said, "ask_recommendation", [], None)
    return ids


def test_sessions_the_index_has_not_read_yet_are_erased_too(store_url: str) -> None:
    """A deleted event the index has not passed yet makes it wait (it may be a transaction still
    committing): a chat session written after it is not indexed for a while, and is found in
    Rasa's events by the customer Rasa verified."""
    store = make_engine(store_url)
    now = time.time()
    with store.begin() as conn:
        rasa.write(conn, conversation("someone", OTHER_MARKER, now - 10))
        gap = conn.scalar(text("SELECT max(id) FROM events")) - 3
        conn.execute(text("DELETE FROM events WHERE id = :id"), {"id": gap})
        rasa.write(conn, as_customer(conversation(SESSION, MARKER, now - 5), REF))
    index.catch_up(store, store)
    with store.connect() as conn:
        indexed = set(conn.scalars(text("SELECT sender_id FROM console_conversations")))
    assert SESSION not in indexed  # the index waits at the gap
    done = erase_customer(store, store, REF, "operator:tester")
    assert SESSION in done.senders and done.counts["events"] == len(conversation(SESSION, MARKER, now))
    with store.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": SESSION}) == 0
        assert conn.scalar(text("SELECT count(*) FROM events WHERE sender_id = 'someone'")) > 0
    store.dispose()


@pytest.fixture
def bot_dir(base_settings: Settings) -> Path:
    return base_settings.bot_dir


def test_every_table_is_known_to_the_erasure(store_url: str) -> None:
    engine = make_engine(store_url)
    with engine.begin() as conn:
        rasa.write(conn, [])  # Rasa's events table, as Rasa creates it
    assert [t for t in inspect(engine).get_table_names() if table_treatment(t) is None] == []
    engine.dispose()


def test_erasure_leaves_nothing_of_the_customer_in_any_table(store_url: str, bot_dir: Path) -> None:
    store = make_engine(store_url)
    ids = populate(store, bot_dir)
    before = rows_of(store)
    planned = preview(store, store, REF, [DEVICE])
    assert rows_of(store) == before  # a preview changes nothing
    done = erase_customer(store, store, REF, "operator:tester", [DEVICE])
    assert set(done.senders) == {REF, SESSION, DEVICE}
    assert done.counts == planned.counts
    assert done.counts == {
        "events": planned.counts["events"],
        "conversations": 3,
        "nlu_reviews": 2,
        "customers": 1,
        "offers": 2,
        "consents": 1,
        "customer_scores": 1,
        "orders_unlinked": 2,
        "quarantine": 2,
        "webhook_deliveries": 2,
    }
    mine = (REF, SESSION, DEVICE)
    assert done.counts["events"] == sum(1 for e in before["events"] if e["sender_id"] in mine)
    assert_nothing_of_the_customer_left(store, (ids[REF],), mine, (MARKER,))

    after = rows_of(store)
    # the orders stay for accounting, unlinked; the other customer keeps everything
    assert len(after["orders"]) == len(before["orders"])
    assert sum(o["customer_id"] is None and o["offer_id"] is None for o in after["orders"]) == 2
    with session_scope(store) as s:
        assert s.scalar(select(Customer).where(Customer.external_ref == OTHER)) is not None
        for model in (Offer, Consent, CustomerScore):
            assert s.scalars(select(model).where(model.customer_id == ids[OTHER])).all()  # type: ignore[attr-defined]
        assert s.scalars(select(NluReview).where(NluReview.sender_id == OTHER)).all()
        assert len(s.scalars(select(QuarantinedRow)).all()) == 1
        audit = s.scalars(select(ErasureAudit)).one()
        assert audit.requested_by == "operator:tester" and audit.rows_deleted == done.counts
    assert sum(OTHER_MARKER in e["data"] for e in after["events"]) == 2  # its two messages
    assert [c["sender_id"] for c in after["console_conversations"]] == [OTHER]
    # the per-day intent totals lost the erased turns and kept the other customer's
    assert sum(r["turns"] for r in after["console_intent_days"]) == 2
    if store.dialect.name == "sqlite":
        with store.connect() as conn:
            found = conn.execute(
                text(
                    "SELECT rowid FROM console_conversation_search WHERE console_conversation_search MATCH :q"
                ),
                {"q": MARKER},
            ).all()
            assert found == []
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, console_conversation_search, 'row')"
            )
            terms = set(conn.scalars(text("SELECT term FROM temp.terms")))
        assert OTHER_MARKER in terms and MARKER not in terms  # gone from the index's segments too
        store.dispose()
        path = Path(store_url.split("///", 1)[1])
        for file in (path, Path(f"{path}-wal")):
            if file.exists():
                assert MARKER.encode() not in file.read_bytes(), file  # not even in freed pages
    store.dispose()


def test_customer_erase_command_asks_then_erases(
    demo_db: Path, bot_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_engine(f"sqlite:///{demo_db}")
    with store.begin() as conn:
        rasa.write(conn, conversation("42", MARKER, T0))
    with session_scope(store) as s:
        orders = len(s.scalars(select(Order.id).where(Order.customer_id == 42)).all())
    assert orders > 0
    with cli_on(demo_db, monkeypatch) as cli:
        declined = cli.invoke(app, ["customer", "erase", "42"], input="n\n")
        assert declined.exit_code == 1 and "Aborted" in declined.output
        assert "This cannot be undone" in declined.output and "events" in declined.output
        with session_scope(store) as s:
            assert s.scalar(select(Customer.id).where(Customer.external_ref == "42")) == 42

        done = cli.invoke(app, ["customer", "erase", "42", "--yes", "--json", "--by", "operator:dpo"])
        assert done.exit_code == 0, done.output
        report = json.loads(done.output)
        assert report["erased"] is True and report["counts"]["orders_unlinked"] == orders
        assert report["counts"]["events"] == len(conversation("42", MARKER, T0))
        assert_nothing_of_the_customer_left(store, (42,), (), (MARKER,))
        with session_scope(store) as s:
            assert s.scalars(select(ErasureAudit.requested_by)).all() == ["operator:dpo"]

        again = cli.invoke(app, ["customer", "erase", "42", "--yes"])
        assert again.exit_code == 0 and "nothing is stored" in again.output
    store.dispose()
