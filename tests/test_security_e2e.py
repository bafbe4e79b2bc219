"""Impersonation attempts against the running product (Rasa, action server, app on free ports):
someone else's sender id or session, forged, expired and other customers' tokens, a customer
claimed in the metadata, over REST, socket.io and POST /voice. None may reach the victim's
history, offers or orders; the console names the customer Rasa verified."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import httpx
import pytest
from conftest import in_bot_env, listening_addresses
from sqlalchemy import Engine, func, select, text

from smartmkt.console import index
from smartmkt.runtime.stack import RunningStack
from smartmkt.security.identity import issue_token, new_session_id
from smartmkt.security.secrets import local_secret, signed_in
from smartmkt.store.db import session_scope
from smartmkt.store.models import Customer, Offer, Order, Product
from smartmkt.store.repository import StoreRepository

pytestmark = pytest.mark.e2e

VICTIM = "61"  # a demo customer no other end-to-end test talks as
REFUSED = "isn't valid any more"


def post(stack: RunningStack, sender: Any, message: str, metadata: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"sender": sender, "message": message}
    if metadata is not None:
        body["metadata"] = metadata
    r = httpx.post(stack.rest_url, json=body, timeout=60)
    assert r.status_code == 200, r.text
    return "\n".join(str(x.get("text", "")) + json.dumps(x.get("custom", "")) for x in r.json())


def victim_state(db: Engine, ref: str = VICTIM) -> tuple[int, int, int]:
    with session_scope(db) as s:
        customer = s.scalar(select(Customer.id).where(Customer.external_ref == ref))
        orders = s.scalar(select(func.count()).select_from(Order).where(Order.customer_id == customer))
        offers = s.scalar(select(func.count()).select_from(Offer).where(Offer.customer_id == customer))
        accepted = s.scalar(
            select(func.count())
            .select_from(Offer)
            .where(Offer.customer_id == customer, Offer.status != "shown")
        )
    return int(orders or 0), int(offers or 0), int(accepted or 0)


def events_of(db: Engine, sender: str) -> int:
    with db.connect() as conn:
        return int(conn.scalar(text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": sender}) or 0)


@pytest.fixture(scope="module")
def victim(stack: RunningStack, db: Engine) -> dict[str, Any]:
    """The victim chats: an offer is open and their orders are known."""
    session, token = signed_in(stack.settings, VICTIM)
    meta = {"customer_token": token}
    reply = post(stack, session, "recommend me a comedy", meta)
    assert "recommendations" in reply
    history = post(stack, session, "what have I ordered?", meta)
    with session_scope(db) as s:
        customer = s.scalar(select(Customer.id).where(Customer.external_ref == VICTIM))
        titles = list(
            s.scalars(
                select(Product.title)
                .join(Order, Order.product_id == Product.id)
                .where(Order.customer_id == customer)
                .order_by(Order.ordered_at.desc())
                .limit(5)
            )
        )
    assert titles and any(t in history for t in titles), history  # the victim does see them
    return {"session": session, "token": token, "titles": titles}


def attacks(stack: RunningStack, victim: dict[str, Any]) -> list[tuple[str, Any, dict[str, Any] | None]]:
    secret = local_secret(stack.settings, "customer_token_secret")
    session = victim["session"]
    mine = issue_token(secret, "attacker-1")
    forged = issue_token("f" * 48, VICTIM)
    expired = issue_token(secret, VICTIM, ttl_s=1, now=time.time() - 60)
    return [
        ("the customer's id as sender, no token", VICTIM, None),
        ("the victim's session, no token", session, None),
        ("the victim's session, the attacker's own valid token", session, {"customer_token": mine}),
        ("the victim's session, a forged token", session, {"customer_token": forged}),
        ("the victim's session, an expired token", session, {"customer_token": expired}),
        ("the customer claimed in metadata", "attacker-2", {"customer": {"ref": VICTIM, "verified": True}}),
        ("claimed in metadata on the victim's session", session, {"customer": {"ref": VICTIM}}),
        (
            "a session made for the attacker, the victim's token",
            new_session_id(secret, "attacker-1"),
            {"customer_token": victim["token"]},
        ),
        ("the victim's token with the raw id as sender", VICTIM, {"customer_token": victim["token"]}),
    ]


ASKS = ["what have I ordered?", "any deals for me?", "yes", "buy Fargo", "stop sending me offers"]


def test_impersonation_over_rest_gets_nothing_of_the_victims(
    stack: RunningStack, db: Engine, victim: dict[str, Any]
) -> None:
    before, events_before = victim_state(db), events_of(db, victim["session"])
    tried = 0
    for name, sender, metadata in attacks(stack, victim):
        for ask in ASKS:
            reply = post(stack, sender, ask, metadata)
            tried += 1
            assert not any(title in reply for title in victim["titles"]), (name, ask, reply)
            if sender == victim["session"]:
                assert REFUSED in reply, (name, ask, reply)
    assert tried == 45
    assert victim_state(db) == before  # no order, offer or decision made in their name
    assert events_of(db, victim["session"]) == events_before  # their conversation untouched
    assert not StoreRepository(db).is_opted_out(VICTIM)  # nor opted out of offers in their name
    # and the victim's own session still works
    assert "recommendations" in post(
        stack, victim["session"], "recommend a drama", {"customer_token": victim["token"]}
    )


def test_the_console_names_the_verified_customer(
    stack: RunningStack, db: Engine, victim: dict[str, Any]
) -> None:
    index.catch_up(db, db)
    with db.connect() as conn:
        refs = dict(conn.execute(text("SELECT sender_id, customer_ref FROM console_conversations")).all())
    assert refs[victim["session"]] == VICTIM
    assert refs.get(VICTIM, "guest:" + VICTIM) == "guest:" + VICTIM  # the raw id was a guest
    assert refs["attacker-2"] == "guest:attacker-2"  # a claim in the metadata is dropped


SOCKET_PROBE = r"""
import asyncio, json, sys
import socketio

url, victim_session, victim_token, attacker_token = sys.argv[1:5]
seen = {"victim": [], "attacker": [], "attacker_own_token": []}

async def client(name, session, token, say=None):
    sio = socketio.AsyncClient(reconnection=False)
    for event in ("session_confirm", "session_refused", "bot_uttered"):
        sio.on(event, (lambda e: lambda data=None: seen[name].append(e))(event))
    await sio.connect(url, socketio_path="/socket.io", transports=["polling"])  # aiohttp here: no ws
    request = {"session_id": session}
    if token:
        request["customer_token"] = token
    await sio.emit("session_request", request)
    await asyncio.sleep(1.5)
    if say:
        message = {"message": say, "session_id": session}
        if token:
            message["metadata"] = {"customer_token": token}
        await sio.emit("user_uttered", message)
    return sio

async def main():
    attackers = [
        await client("attacker", victim_session, None, "ATTACKER-SAYS what have I ordered?"),
        await client("attacker_own_token", victim_session, attacker_token, "ATTACKER-SAYS any deals?"),
    ]
    victim = await client("victim", victim_session, victim_token, "recommend me a western")
    await asyncio.sleep(12)
    for s in [*attackers, victim]:
        await s.disconnect()
    print(json.dumps(seen))

asyncio.run(main())
"""


def test_socketio_rooms_and_messages_need_the_sessions_token(
    stack: RunningStack, db: Engine, victim: dict[str, Any]
) -> None:
    secret = local_secret(stack.settings, "customer_token_secret")
    attacker = issue_token(secret, "attacker-3")
    seen = in_bot_env(SOCKET_PROBE, stack.settings.rasa_url, victim["session"], victim["token"], attacker)
    assert seen["victim"][0] == "session_confirm" and "bot_uttered" in seen["victim"], seen
    for attacker in ("attacker", "attacker_own_token"):
        assert seen[attacker] == ["session_refused"], seen  # never in the room, no reply of theirs
    with db.connect() as conn:
        leaked = conn.scalar(text("SELECT count(*) FROM events WHERE data LIKE '%ATTACKER-SAYS%'"))
    assert leaked == 0  # the attackers' messages never reached the conversation


def test_voice_with_someone_elses_session_is_refused(stack: RunningStack, victim: dict[str, Any]) -> None:
    secret = local_secret(stack.settings, "customer_token_secret")
    for token in (None, issue_token(secret, "attacker-4"), issue_token("f" * 48, VICTIM)):
        data = {"sender": victim["session"], **({"customer_token": token} if token else {})}
        r = httpx.post(
            f"{stack.settings.app_url}/voice", files={"audio": ("a.wav", b"RIFF")}, data=data, timeout=60
        )
        assert r.status_code == 401 and r.json()["error"] == "not your session"


def test_rasas_http_api_is_off_and_everything_listens_on_loopback(stack: RunningStack) -> None:
    session = "s1.x"
    for path in (f"/conversations/{session}/tracker", "/status", "/model", "/version"):
        r = httpx.get(f"{stack.settings.rasa_url}{path}", timeout=10)
        assert r.status_code in (403, 404, 405) or path == "/version", (path, r.status_code)
    assert (
        httpx.get(f"{stack.settings.rasa_url}/conversations/{session}/tracker", timeout=10).status_code == 404
    )
    outside = {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} - {
        "127.0.0.1"
    }
    outside |= {_primary_ip()} - {"127.0.0.1", ""}
    settings = stack.settings
    ports = (settings.app_port, settings.rasa_port, settings.action_port)
    # what the kernel says each service listens on, whatever addresses this machine has
    assert {port: listening_addresses(port) for port in ports} == {port: {"127.0.0.1"} for port in ports}
    for address in outside:  # and, where the machine has another address, nothing answers there
        for port in ports:
            with socket.socket() as probe:
                probe.settimeout(2)
                assert probe.connect_ex((address, port)) != 0, (address, port)


def _primary_ip() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))
            return str(s.getsockname()[0])
        except OSError:
            return ""
