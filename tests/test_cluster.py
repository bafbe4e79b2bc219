"""Several replicas on real engines (issue 17): `smartmkt cluster serve` itself, with 2 app, 2
action and 2 Rasa replicas behind HAProxy, on PostgreSQL, Redis and RabbitMQ, all on loopback.

One cluster serves the whole module (it starts in ~30-60 s). Its offer policy caps the day's
discounts at $50, so the budget test can make the replicas race for it. Every load here is
bounded in count and time, and talks to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine, func, select, text

from smartmkt.console.events import bot_message, load
from smartmkt.runtime.balancer import STATS_SOCKET, requests_per_server
from smartmkt.runtime.cluster import Layout, RunningCluster, running_cluster
from smartmkt.runtime.engines import missing_packages
from smartmkt.runtime.processes import healthy
from smartmkt.security.secrets import signed_in
from smartmkt.settings import Settings
from smartmkt.store import model_registry
from smartmkt.store.db import make_engine
from smartmkt.store.models import Customer, Offer, Product

ROOT = Path(__file__).resolve().parent.parent
BUDGET_CENTS = 5_000  # $50 a day, all customers
CAP = 2  # offers per customer and day
MESSAGES = [
    "hi",
    "recommend a comedy",
    "something cheaper",
    "no thanks",
    "recommend a thriller under $10",
    "what is my order history",
    "recommend a drama from the 90s",
    "no",
    "thank you",
    "bye",
]


@pytest.fixture(scope="module")
def cluster(base_settings: Settings) -> Iterator[RunningCluster]:
    if missing_packages():
        pytest.fail(
            f"the engines' Debian packages are missing: {missing_packages()} (make setup installs them)"
        )
    run_dir = Path(tempfile.mkdtemp(prefix="smartmkt-cluster-", dir="/tmp"))
    os.chmod(run_dir, 0o755)  # PostgreSQL runs as its own user and keeps its data below
    policy = yaml.safe_load((ROOT / "smartmkt" / "offers" / "policy.yml").read_text())
    policy["limits"] |= {"daily_budget": BUDGET_CENTS / 100, "max_offers_per_customer_per_day": CAP}
    (run_dir / "policy.yml").write_text(yaml.safe_dump(policy))
    # the models as served now, hard-linked: a promotion here changes this cluster's registry only
    shutil.copytree(base_settings.models_dir, run_dir / "models", copy_function=os.link)
    update = {
        "offer_policy": run_dir / "policy.yml",
        "var_dir": run_dir / "var",
        "models_dir": run_dir / "models",
    }
    base = base_settings.model_copy(update=update)
    try:
        with running_cluster(Layout.on_free_ports(run_dir), base, timeout=600) as running:
            yield running
    finally:
        artifacts = ROOT / "test-artifacts" / "cluster-logs"
        artifacts.mkdir(parents=True, exist_ok=True)
        if (run_dir / "cluster.log").exists():
            shutil.copy(run_dir / "cluster.log", artifacts / "cluster.log")
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def store(cluster: RunningCluster) -> Iterator[Engine]:
    engine = make_engine(cluster.settings.resolved_database_url)
    yield engine
    engine.dispose()


def say_until_answered(
    cluster: RunningCluster, session: str, token: str, message: str, message_id: str, within_s: float = 120
) -> list[dict[str, Any]]:
    """``message`` under the client's own ``message_id``, sent again (same id) while the answer
    is a 502/503 or the connection fails, as a client of a cluster does when a replica dies."""
    deadline = time.monotonic() + within_s
    body = {
        "sender": session,
        "message": message,
        "message_id": message_id,
        "metadata": {"customer_token": token},
    }
    while True:
        try:
            reply = httpx.post(cluster.rest_url, json=body, timeout=60)
            if reply.status_code == 200 and reply.json():
                return list(reply.json())
            assert reply.status_code in (502, 503), (reply.status_code, reply.text)  # never a 500
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{message_id} not answered within {within_s:g} s"
        time.sleep(0.5)


def events_of(store: Engine, sender: str) -> list[tuple[str, str | None, str | None]]:
    """(type, action name, text of a user message) of each event of a conversation, in order."""
    query = text(
        "SELECT type_name, action_name, CASE WHEN type_name = 'user' THEN data END "
        "FROM events WHERE sender_id = :sender ORDER BY id"
    )
    with store.connect() as conn:
        rows = conn.execute(query, {"sender": sender}).all()
    return [(row[0], row[1], _text(row[2])) for row in rows]


def user_message_ids(store: Engine, sender: str) -> list[str]:
    """The message id of each customer message of a conversation, in order."""
    import json

    query = text("SELECT data FROM events WHERE sender_id = :sender AND type_name = 'user' ORDER BY id")
    with store.connect() as conn:
        return [str(json.loads(row[0]).get("message_id")) for row in conn.execute(query, {"sender": sender})]


def offers_made(store: Engine, ref: str, since: datetime) -> set[int]:
    with store.connect() as conn:
        return set(
            conn.scalars(
                select(Offer.id)
                .join(Customer, Customer.id == Offer.customer_id)
                .where(Customer.external_ref == ref, Offer.created_at >= since)
            )
        )


def offers_shown(store: Engine, sender: str) -> set[int]:
    """The offers the bot's replies in a conversation carried (smartmkt.console.events)."""
    query = text("SELECT data FROM events WHERE sender_id = :sender AND type_name = 'bot' ORDER BY id")
    with store.connect() as conn:
        replies = [load(row[0]) for row in conn.execute(query, {"sender": sender})]
    return {int(offer["id"]) for reply in replies for offer in bot_message(reply).offers}


def _text(data: str | None) -> str | None:
    import json

    return None if data is None else str(json.loads(data).get("text"))


def test_one_conversations_messages_are_handled_in_order_by_one_replica_at_a_time(
    cluster: RunningCluster, store: Engine
) -> None:
    """40 customers, 10 messages each in quick succession through HAProxy; every fourth one
    sends two at once. Each conversation holds every message exactly once, and no turn starts
    before the previous one has finished (Rasa's lock store in Redis)."""
    customers = [str(ref) for ref in range(200, 240)]
    sessions = {ref: signed_in(cluster.settings, ref) for ref in customers}
    answered: Counter[str] = Counter()
    lock = threading.Lock()

    def chat(ref: str, messages: list[str]) -> None:
        session, token = sessions[ref]
        for message in messages:  # a 503 (a message that waited out the conversation's lock on
            # a busy machine) is sent again under its id, as a cluster's clients do
            say_until_answered(cluster, session, token, message, f"o{ref}-{MESSAGES.index(message)}")
            with lock:
                answered[ref] += 1

    jobs: list[tuple[str, list[str]]] = []
    for number, ref in enumerate(customers):
        if number % 4 == 0:  # two at once: the even and the odd messages on two connections
            jobs += [(ref, MESSAGES[0::2]), (ref, MESSAGES[1::2])]
        else:
            jobs.append((ref, MESSAGES))
    with ThreadPoolExecutor(max_workers=24) as pool:
        for future in [pool.submit(chat, ref, messages) for ref, messages in jobs]:
            future.result(timeout=600)

    assert all(answered[ref] == len(MESSAGES) for ref in customers), answered
    for ref in customers:
        events = events_of(store, sessions[ref][0])
        said = [message for kind, _, message in events if kind == "user"]
        assert sorted(said) == sorted(MESSAGES), (ref, said)  # none lost, none twice
        if int(ref) % 4:
            assert said == MESSAGES, (ref, said)  # one connection: in the order sent
        turns = _turns(events)
        assert len(turns) == len(MESSAGES)
        for turn in turns:  # each turn runs to its end (action_listen) before the next message is read
            assert ("action", "action_listen", None) in turn, (ref, turn)
            assert [kind for kind, _, _ in turn].count("user") == 1


def _turns(
    events: list[tuple[str, str | None, str | None]],
) -> list[list[tuple[str, str | None, str | None]]]:
    """The events from each user message up to the next one."""
    turns: list[list[tuple[str, str | None, str | None]]] = []
    for event in events:
        if event[0] == "user":
            turns.append([event])
        elif turns:
            turns[-1].append(event)
    return turns


def test_replicas_deciding_at_once_never_overspend_the_budget_or_the_cap(
    cluster: RunningCluster, store: Engine
) -> None:
    """200 recommendation turns at once, spread over both action servers by HAProxy, against
    a $50 day: the discounts made never exceed $50, and no customer gets more than the cap."""
    customers = [str(ref) for ref in range(300, 400)]  # 100 customers, two turns each
    sessions = {ref: signed_in(cluster.settings, ref) for ref in customers}

    def ask(ref: str, turn: int) -> None:
        session, token = sessions[ref]
        say_until_answered(cluster, session, token, "recommend a comedy", f"b{ref}-{turn}")

    jobs = [(ref, turn) for turn in (1, 2) for ref in customers]
    with ThreadPoolExecutor(max_workers=32) as pool:
        for future in [pool.submit(ask, ref, turn) for ref, turn in jobs]:
            future.result(timeout=600)

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with store.connect() as conn:
        spent = conn.scalar(
            select(func.coalesce(func.sum(Product.price_cents * Offer.percent_off), 0))
            .select_from(Offer)
            .join(Product, Product.id == Offer.product_id)
            .where(Offer.created_at >= today)
        )
        per_customer = conn.execute(
            select(Customer.external_ref, func.count(Offer.id))
            .select_from(Offer)
            .join(Customer, Customer.id == Offer.customer_id)
            .where(Offer.created_at >= today)
            .group_by(Customer.external_ref)
        ).all()
    assert per_customer, "no offer was made at all: the race was not run"
    assert spent / 100 <= BUDGET_CENTS, spent / 100
    assert spent / 100 >= 0.8 * BUDGET_CENTS, spent / 100  # the budget was what stopped the offers
    assert max(count for _, count in per_customer) <= CAP
    calls = requests_per_server(cluster.layout.run_dir / "haproxy" / STATS_SOCKET)
    actions = [count for server, count in calls.items() if server.startswith("actions/")]
    assert len(actions) == 2 and min(actions) > 0, calls  # both action servers decided offers


def test_a_replica_killed_mid_load_loses_no_message_and_makes_no_offer_twice(
    cluster: RunningCluster, store: Engine
) -> None:
    """20 customers chat (8 messages each, their own message ids); one Rasa replica and one
    action server are killed with SIGKILL mid-load (the supervisor starts them again). Every
    message is answered, each is in its conversation exactly once, no offer is made twice, and
    the console's index (fed from RabbitMQ) counts every message once."""
    customers = [str(ref) for ref in range(400, 420)]
    sessions = {ref: signed_in(cluster.settings, ref) for ref in customers}
    messages = MESSAGES[:8]
    started = datetime.now(UTC)
    first_round = threading.Barrier(len(customers) + 1, timeout=300)
    answers: dict[str, list[str]] = {}

    def chat(ref: str) -> None:
        session, token = sessions[ref]
        said = []
        for number, message in enumerate(messages):
            replies = say_until_answered(cluster, session, token, message, f"m{ref}-{number}")
            said.append(" ".join(str(r.get("text", "")) for r in replies))
            if number == 0:
                first_round.wait()
        answers[ref] = said

    victims = {name: cluster.pid(name) for name in ("rasa1", "actions1")}
    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        futures = [pool.submit(chat, ref) for ref in customers]
        first_round.wait()  # every customer is mid-conversation
        time.sleep(1.0)
        for pid in victims.values():
            os.killpg(pid, signal.SIGKILL)
        for future in futures:
            future.result(timeout=900)

    restarted = {name: cluster.pid(name) for name in victims}
    assert all(restarted[name] != pid for name, pid in victims.items()), (
        "the killed replicas were not replaced"
    )
    assert all(len(said) == len(messages) and all(said) for said in answers.values()), answers
    unavailable = [text for said in answers.values() for text in said if "isn't answering right now" in text]
    assert not unavailable, unavailable  # answered for real, not with the fallback
    for ref in customers:
        ids = user_message_ids(store, sessions[ref][0])
        assert sorted(ids) == sorted(f"m{ref}-{n}" for n in range(len(messages))), (
            ref,
            ids,
        )  # none lost or twice
    for ref in customers:  # every offer made was shown once to its customer: none made twice
        made = offers_made(store, ref, started)
        assert made == offers_shown(store, sessions[ref][0]), (ref, made)
    deadline = time.monotonic() + 60
    while (turns := _indexed_turns(store, [sessions[ref][0] for ref in customers])) != {
        sessions[ref][0]: len(messages) for ref in customers
    }:
        assert time.monotonic() < deadline, turns  # the consumer caught up, each message once
        time.sleep(1.0)


def _indexed_turns(store: Engine, senders: list[str]) -> dict[str, int]:
    """Customer messages per conversation in the console's index."""
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT sender_id, turns FROM console_conversations WHERE sender_id = ANY(:senders)"),
            {"senders": senders},
        ).all()
    return {row[0]: row[1] for row in rows}


@dataclass
class Attempt:
    """One request of the engines test: when it was sent, how it ended, how long it took."""

    sent: float
    status: int  # 0: no HTTP answer in time
    took: float
    fallback: bool  # answered, but with "part of the shop isn't answering"


def test_engines_restarted_mid_load_give_503s_or_answers_and_recover_by_themselves(
    cluster: RunningCluster, store: Engine
) -> None:
    """PostgreSQL, Redis and RabbitMQ are each restarted (stopped, then started again by the
    cluster's supervisor) while 8 customers chat. No request gets a 500 or hangs, every one
    during an outage ends in a 503 JSON or an answer, everything works again at most 10 s after
    the engine is back, every message is stored once, and the console index catches up."""
    customers = [str(ref) for ref in range(500, 508)]
    sessions = {ref: signed_in(cluster.settings, ref) for ref in customers}
    attempts: list[Attempt] = []
    sent: Counter[str] = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def chat(ref: str) -> None:
        session, token = sessions[ref]
        number = 0
        while not stop.is_set():
            message_id = f"e{ref}-{number}"
            body = {"sender": session, "message": MESSAGES[number % len(MESSAGES)], "message_id": message_id}
            body["metadata"] = {"customer_token": token}
            while True:  # the same message until it is answered
                started = time.monotonic()
                try:
                    reply = httpx.post(cluster.rest_url, json=body, timeout=45)
                    status, text_ = reply.status_code, reply.text
                except httpx.TransportError:
                    status, text_ = 0, ""
                took = time.monotonic() - started
                with lock:
                    attempts.append(Attempt(started, status, took, "isn't answering right now" in text_))
                assert status in (0, 200, 502, 503), (status, text_)  # never a 500
                if status == 503:
                    assert reply.json().get("error"), text_  # a clear reason
                if status == 200 and reply.json():
                    break
                time.sleep(0.5)
            with lock:
                sent[ref] += 1
            number += 1

    back: dict[str, tuple[float, float]] = {}  # engine -> (back at, next engine stopped at)
    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        futures = [pool.submit(chat, ref) for ref in customers]
        time.sleep(5)
        for engine in ("postgres", "redis", "rabbitmq"):
            returned = restart_engine(cluster, engine)
            time.sleep(15)  # load goes on past the 10 s the engine gets to recover in
            back[engine] = (returned, time.monotonic())
        stop.set()
        for future in futures:
            future.result(timeout=300)

    assert not [a for a in attempts if a.status == 0 and a.took > 40], "a request hung"
    for engine, (returned, until) in back.items():
        after = [a for a in attempts if returned + 10 <= a.sent and a.sent + a.took < until]
        assert after, f"no request was sent after {engine} had been back 10 s"
        failed = [a for a in after if a.status != 200 or a.fallback]
        assert not failed, (engine, failed[:5])  # recovered by itself within 10 s
    for ref in customers:
        ids = user_message_ids(store, sessions[ref][0])
        assert sorted(ids) == sorted(f"e{ref}-{n}" for n in range(sent[ref])), (ref, ids)  # once each
    deadline = time.monotonic() + 60
    expected = {sessions[ref][0]: sent[ref] for ref in customers}
    while (turns := _indexed_turns(store, list(expected))) != expected:
        differ = {s: (turns.get(s), n) for s, n in expected.items() if turns.get(s) != n}
        assert time.monotonic() < deadline, differ  # the consumer caught up, once each: (indexed, sent)
        time.sleep(1.0)


def restart_engine(cluster: RunningCluster, name: str) -> float:
    """Stop one engine (its usual stop signal); the supervisor starts it again. Returns the
    monotonic time at which it answered its health check again."""
    state = cluster.state()
    service = state.services[name]
    pid = int(service["pid"])
    os.kill(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
    deadline = time.monotonic() + 120
    while not (cluster.pid(name) != pid and healthy(service["health"], timeout=1.0)):
        assert time.monotonic() < deadline, f"{name} did not come back"
        time.sleep(0.2)
    return time.monotonic()


def test_a_promoted_model_reaches_every_replica_without_a_failed_request(cluster: RunningCluster) -> None:
    """New versions of the recommender and the NLU are promoted in the registry (as
    `smartmkt train` ends: the artifact in its folder, then the manifest switched in one
    rename) while 8 customers chat. No request fails, and then every action server names the
    new recommender and every app the new NLU in its /health."""
    models = cluster.settings.models_dir
    customers = [str(ref) for ref in range(600, 608)]
    sessions = {ref: signed_in(cluster.settings, ref) for ref in customers}
    failures: list[tuple[int, str]] = []
    stop = threading.Event()

    def chat(ref: str) -> None:
        session, token = sessions[ref]
        number = 0
        while not stop.is_set():
            body = {
                "sender": session,
                "message": MESSAGES[number % len(MESSAGES)],
                "message_id": f"p{ref}-{number}",
            }
            body["metadata"] = {"customer_token": token}
            reply = httpx.post(cluster.rest_url, json=body, timeout=60)
            if reply.status_code != 200 or not reply.json() or "isn't answering right now" in reply.text:
                failures.append((reply.status_code, reply.text[:300]))
            number += 1

    promoted = {}
    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        futures = [pool.submit(chat, ref) for ref in customers]
        time.sleep(3)
        for kind in ("recommender", "nlu"):
            promoted[kind] = promote_copy(models, kind)
        wanted = {name: promoted[kind] for name, kind in served_kinds(cluster)}
        deadline = time.monotonic() + 90
        while (served := served_everywhere(cluster)) != wanted:
            assert time.monotonic() < deadline, (served, wanted)
            time.sleep(1.0)
        time.sleep(2)  # the load goes on a little on the new versions
        stop.set()
        for future in futures:
            future.result(timeout=120)
    assert not failures, failures[:5]


def promote_copy(models: Path, kind: str) -> str:
    """A new version of ``kind``: the served artifact copied (hard links) into a new folder,
    then recorded in the manifest as `smartmkt train` records a promotion."""
    entry = model_registry.served(models, kind)
    assert entry is not None
    served = models / entry["path"]
    version = f"{served.name}-promoted"
    shutil.copytree(served, served.with_name(version), copy_function=os.link)
    info = {k: v for k, v in entry.items() if k not in ("path", "fingerprint", "trained_at")}
    model_registry.record(models, kind, served.with_name(version), entry["fingerprint"], **info)
    return version


def served_kinds(cluster: RunningCluster) -> list[tuple[str, str]]:
    """(replica, the model kind its /health names) for every app and action server."""
    numbers = range(1, cluster.layout.replicas + 1)
    return [(f"app{n}", "nlu") for n in numbers] + [(f"actions{n}", "recommender") for n in numbers]


def served_everywhere(cluster: RunningCluster) -> dict[str, str | None]:
    """What each replica's /health says it serves now."""
    services = cluster.state().services
    found = {}
    for name, kind in served_kinds(cluster):
        health = httpx.get(services[name]["health"], timeout=10).json()
        found[name] = health.get("models", {}).get(kind)
    return found
