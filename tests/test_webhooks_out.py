"""Webhooks to the shop's systems (issue 18): offer.created and offer.redeemed are written to an
outbox in the transaction that made them, sent signed, retried with backoff, logged, and erased
with the customer. The shop's server is outside the product: a small HTTP server on 127.0.0.1
(http.server) stands in for it, answering as each test asks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from privacy_support import cli_on
from sqlalchemy import Engine, func, select

from smartmkt.cli.main import app as cli_app
from smartmkt.notify.webhooks import send_due, sign, verify
from smartmkt.privacy.erasure import erase_customer
from smartmkt.store import outbox
from smartmkt.store.clock import utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import Offer, Product, WebhookDelivery
from smartmkt.store.offer_codes import redeem_code
from smartmkt.store.repository import StoreRepository


class ShopServer:
    """Stands in for the shop's webhook receiver: records each request, answers ``statuses`` in
    turn (then 200)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(server.statuses.pop(0) if server.statuses else 200)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.http = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_port}/hooks"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def shop_server() -> Iterator[ShopServer]:
    server = ShopServer()
    yield server
    server.close()


def offer_for(engine: Engine, customer: str = "42") -> int:
    with engine.connect() as conn:
        product_id = int(conn.scalar(select(Product.id).order_by(Product.id.desc()).limit(1)) or 0)
    view = StoreRepository(engine).create_offer(
        customer, product_id, 10, "r", "r", {}, "text", timedelta(days=3)
    )
    assert view is not None
    return view.id


def deliveries(engine: Engine) -> list[WebhookDelivery]:
    with session_scope(engine) as session:
        rows = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))
        session.expunge_all()
        return rows


def test_an_offer_is_sent_signed_to_the_shop(demo_engine: Engine, shop_server: ShopServer) -> None:
    _, secret = outbox.add_endpoint(demo_engine, shop_server.url, ["offer.created", "offer.redeemed"])
    offer_id = offer_for(demo_engine)
    with httpx.Client() as client:
        assert send_due(demo_engine, client) == 1
        assert send_due(demo_engine, client) == 0  # nothing due twice
    ((headers, body),) = shop_server.received
    assert headers["x-smartmkt-event"] == "offer.created"
    assert verify(secret, body, headers["x-smartmkt-signature"])
    assert not verify("another secret", body, headers["x-smartmkt-signature"])
    assert not verify(secret, body.replace(b"42", b"43"), headers["x-smartmkt-signature"])
    event = json.loads(body)
    with demo_engine.connect() as conn:
        code = conn.scalar(select(Offer.code).where(Offer.id == offer_id))
    assert (
        event["event"] == "offer.created"
        and event["offer"]["code"] == code
        and event["offer"]["customer_id"] == "42"
    )
    (row,) = deliveries(demo_engine)
    assert row.delivered_at is not None and row.attempts == 1 and row.last_status == 200
    assert headers["x-smartmkt-delivery"] == str(row.id)
    redeem_code(demo_engine, str(code), "42", "order-9")
    with httpx.Client() as client:
        send_due(demo_engine, client)
    redeemed = json.loads(shop_server.received[-1][1])
    assert redeemed["event"] == "offer.redeemed" and redeemed["offer"]["redeemed_order_id"] == "order-9"


def test_a_failed_delivery_is_tried_again_later_then_given_up(
    demo_engine: Engine, shop_server: ShopServer
) -> None:
    outbox.add_endpoint(demo_engine, shop_server.url, ["offer.created"])
    offer_for(demo_engine)
    shop_server.statuses = [500] * outbox.MAX_ATTEMPTS
    with httpx.Client() as client:
        assert send_due(demo_engine, client) == 0
        (row,) = deliveries(demo_engine)
        assert row.attempts == 1 and row.last_status == 500 and row.delivered_at is None
        wait = (row.next_attempt_at - row.created_at).total_seconds()  # type: ignore[operator]
        assert outbox.BACKOFF_S[0] - 5 <= wait <= outbox.BACKOFF_S[0] + 5
        assert send_due(demo_engine, client) == 0 and len(shop_server.received) == 1  # not due yet
        later = utcnow()
        for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
            later += timedelta(hours=3)
            due = outbox.claim(demo_engine, now=later)
            assert [d.attempts for d in due] == [attempt - 1]
            outbox.record(demo_engine, due[0].id, 500, "HTTP 500", now=later)
    (row,) = deliveries(demo_engine)
    assert row.attempts == outbox.MAX_ATTEMPTS and row.next_attempt_at is None and row.delivered_at is None
    assert outbox.claim(demo_engine, now=later + timedelta(days=30)) == []  # given up


def test_no_event_leaves_a_transaction_that_rolled_back(demo_engine: Engine) -> None:
    outbox.add_endpoint(demo_engine, "https://shop.example/hooks", ["offer.created"])
    with pytest.raises(RuntimeError), session_scope(demo_engine) as session:
        assert outbox.enqueue(session, "offer.created", {"offer": {}}, "42") == 1
        raise RuntimeError("the decision failed after writing its event")
    assert deliveries(demo_engine) == []


def test_claims_keep_two_senders_off_each_others_rows(store_url: str) -> None:
    """SQLite and PostgreSQL (FOR UPDATE SKIP LOCKED): two senders claiming at once."""
    from smartmkt.store.db import make_engine

    demo_engine = make_engine(store_url)
    outbox.add_endpoint(demo_engine, "https://shop.example/hooks", ["offer.created"])
    with session_scope(demo_engine) as session:
        for n in range(30):
            outbox.enqueue(session, "offer.created", {"n": n}, "42")
    claimed: list[list[int]] = [[], []]
    barrier = threading.Barrier(2)

    def sender(slot: int) -> None:
        barrier.wait()
        claimed[slot] = [due.id for due in outbox.claim(demo_engine, limit=20)]

    threads = [threading.Thread(target=sender, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not set(claimed[0]) & set(claimed[1]) and len(claimed[0]) + len(claimed[1]) == 30
    demo_engine.dispose()


def test_erasure_deletes_the_events_about_the_customer(demo_engine: Engine) -> None:
    outbox.add_endpoint(demo_engine, "https://shop.example/hooks", ["offer.created"])
    offer_for(demo_engine, "42")
    offer_for(demo_engine, "43")
    erased = erase_customer(demo_engine, demo_engine, "42", requested_by="operator:test")
    assert erased.counts["webhook_deliveries"] == 1
    assert [d.customer_ref for d in deliveries(demo_engine)] == ["43"]


def test_a_signature_is_refused_when_old_or_malformed() -> None:
    body = b'{"event":"offer.created"}'
    header = sign("s3cret", body, 1_000_000)
    assert verify("s3cret", body, header, now=1_000_100)
    assert not verify("s3cret", body, header, now=1_000_000 + 301)  # a replay minutes later
    assert not verify("s3cret", body, "v1=abc", now=1_000_000) and not verify("s3cret", body, "t=x,v1=y")


def test_webhook_commands(demo_db: Path, monkeypatch: pytest.MonkeyPatch, demo_engine: Engine) -> None:
    with cli_on(demo_db, monkeypatch) as cli:
        added = cli.invoke(
            cli_app, ["webhook", "add", "https://shop.example/hooks", "--events", "offer.created", "--json"]
        )
        assert added.exit_code == 0, added.output
        endpoint = json.loads(added.output)
        assert endpoint["secret"].startswith("whsec_") and endpoint["events"] == ["offer.created"]
        assert cli.invoke(cli_app, ["webhook", "add", "ftp://x", "--events", "offer.created"]).exit_code != 0
        assert (
            cli.invoke(cli_app, ["webhook", "add", "https://x", "--events", "order.shipped"]).exit_code != 0
        )
        offer_for(demo_engine)
        listed = cli.invoke(cli_app, ["webhook", "list"])
        assert listed.exit_code == 0 and endpoint["secret"] not in listed.output
        (summary,) = outbox.endpoint_summaries(demo_engine)  # what the list shows
        assert (summary.url, summary.waiting, summary.delivered, summary.given_up) == (
            "https://shop.example/hooks",
            1,
            0,
            0,
        )
        log = json.loads(cli.invoke(cli_app, ["webhook", "deliveries", "--json"]).output)
        assert [(d["event"], d["state"], d["attempts"]) for d in log] == [("offer.created", "waiting", 0)]
        assert cli.invoke(cli_app, ["webhook", "disable", str(endpoint["id"])]).exit_code == 0
        offer_for(demo_engine, "43")
        with demo_engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(WebhookDelivery)) == 1  # none after disabling
