"""Faults injected into the real running product, and what the customer sees.

Each test talks to its own stack (Rasa + action server + app on free ports, against a private
copy of the demo store), so stopping, hanging and killing processes never disturbs the shared
end-to-end stack. Nothing is mocked: the processes are the product's, the faults are signals to
them, a lock taken on their SQLite file, and a throwaway PostgreSQL server stopped and started.

A model that fails to load is the fourth kind of fault; it is tested where models are served:
tests/test_lifecycle.py (``test_a_promoted_model_is_swapped_in_and_a_broken_one_is_not`` and
``test_the_app_keeps_parsing_when_a_promoted_nlu_model_is_broken``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from conftest import start_stack

from smartmkt.runtime.stack import RunningStack, free_port, running_stack, with_free_ports
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine, session_scope
from smartmkt.store.models import Offer, Order

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
RESPONSES = yaml.safe_load((ROOT / "bot" / "domain.yml").read_text())["responses"]
UNAVAILABLE = RESPONSES["utter_service_unavailable"][0]["text"]
FALLBACK = RESPONSES["utter_default"][0]["text"]
ACTION_TIMEOUT_S = 8.0  # the stacks here wait this long for a hanging action server (default 20)


def say(stack: RunningStack, sender: str, message: str, timeout: float = 90) -> list[dict[str, Any]]:
    r = httpx.post(stack.rest_url, json={"sender": sender, "message": message}, timeout=timeout)
    assert r.status_code == 200, r.text
    replies: list[dict[str, Any]] = r.json()
    return replies


def texts(replies: list[dict[str, Any]]) -> list[str]:
    return [r["text"] for r in replies if r.get("text")]


def recommendations(replies: list[dict[str, Any]]) -> dict[str, Any]:
    payloads = [r["custom"] for r in replies if r.get("custom", {}).get("type") == "recommendations"]
    assert payloads, f"no recommendations in {replies}"
    return payloads[0]


def conversation(url: str, sender: str) -> list[tuple[str, str]]:
    """(type, text or action) of every event Rasa stored for ``sender``, in order."""
    import json

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender}
            ).all()
    finally:
        engine.dispose()
    out = []
    for type_name, data in rows:
        event = json.loads(data)
        out.append((type_name, event.get("text") or event.get("name") or ""))
    return out


def user_messages(url: str, sender: str) -> list[str]:
    return [text for kind, text in conversation(url, sender) if kind == "user"]


def bot_messages(url: str, sender: str) -> list[str]:
    return [text for kind, text in conversation(url, sender) if kind == "bot"]


def fault_settings(base: Settings, database_url: str) -> Settings:
    return with_free_ports(
        base.model_copy(update={"database_url": database_url, "action_timeout_s": ACTION_TIMEOUT_S})
    )


@pytest.fixture(scope="module")
def fault_stack(
    tmp_path_factory: pytest.TempPathFactory, demo_db_template: Path, base_settings: Settings
) -> Iterator[RunningStack]:
    yield from start_stack(
        tmp_path_factory, demo_db_template, base_settings, "faults", action_timeout_s=ACTION_TIMEOUT_S
    )


@pytest.fixture
def product(fault_stack: RunningStack) -> Iterator[RunningStack]:
    """The fault stack, every process running again after each test whatever it did."""
    yield fault_stack
    for name, alive in fault_stack.alive().items():
        if not alive:
            fault_stack.start(name)


# --- the action server --------------------------------------------------------------------------
def test_action_server_down_the_customer_is_told_and_the_bot_recovers(product: RunningStack) -> None:
    url = product.settings.resolved_database_url
    sender = "fault-down"
    greeting = texts(say(product, sender, "hi"))
    assert greeting and UNAVAILABLE not in greeting
    product.stop("actions")

    # each message gets the apology once, quickly (a refused connection is retried for 0.7 s)
    for who, message in [
        (sender, "recommend me a comedy under $10"),  # a plain custom action
        (sender, "how much is Toy Story?"),
        ("fault-new-1", "can you recommend me a movie?"),  # a form whose validation is remote
    ]:
        start = time.perf_counter()
        replies = texts(say(product, who, message))
        assert replies.count(UNAVAILABLE) == 1, (message, replies)
        assert time.perf_counter() - start < 5
    # the form still asks its question, which Rasa itself can say
    asked = texts(say(product, "fault-new-2", "recommend a movie"))
    assert any("what kind of movie" in t.lower() for t in asked), asked

    product.start("actions")  # no restart of Rasa: the next message just works
    recs = recommendations(say(product, sender, "recommend me a comedy under $10"))
    assert recs["products"]
    assert "Here are" in texts(say(product, "fault-new-1", "westerns"))[0]
    assert user_messages(url, sender) == [
        "hi",
        "recommend me a comedy under $10",
        "how much is Toy Story?",
        "recommend me a comedy under $10",
    ]
    assert "failed (RasaException" in product.logs("rasa")


def test_a_hanging_action_server_times_out_into_the_apology(product: RunningStack) -> None:
    group = product.processes["actions"].pid  # the server and its workers
    os.killpg(group, signal.SIGSTOP)  # alive, port open, never answers
    try:
        start = time.perf_counter()
        replies = texts(say(product, "fault-hang", "recommend me a drama"))
        waited = time.perf_counter() - start
    finally:
        os.killpg(group, signal.SIGCONT)
    assert replies == [UNAVAILABLE]
    assert ACTION_TIMEOUT_S - 0.5 <= waited < ACTION_TIMEOUT_S + 5
    assert recommendations(say(product, "fault-hang", "recommend me a drama"))["products"]


def test_the_action_server_crashes_between_an_offer_and_the_yes(product: RunningStack) -> None:
    sender = "fault-offer-actions"  # a new customer: the welcome offer
    offer = recommendations(say(product, sender, "recommend me a comedy"))["offer"]
    assert offer and offer["percent_off"] == 15
    product.restart("actions", kill=True)
    assert "ordered" in texts(say(product, sender, "yes"))[0]
    with session_scope(make_engine(product.settings.resolved_database_url)) as s:
        order = s.scalars(sa.select(Order).where(Order.offer_id == offer["id"])).one()
        assert order.discount_pct == 15 and s.get(Offer, offer["id"]).status == "accepted"  # type: ignore[union-attr]


# --- the NLU app --------------------------------------------------------------------------------
def test_nlu_down_rasa_answers_its_fallback_and_recovers(product: RunningStack) -> None:
    product.stop("app")
    for message in ("recommend me a drama", "hello", "yes"):
        assert texts(say(product, "fault-nlu", message)) == [FALLBACK], message
    product.start("app")
    assert recommendations(say(product, "fault-nlu", "recommend me a drama"))["products"]


def test_the_app_restarts_mid_conversation(product: RunningStack) -> None:
    sender = "fault-app-restart"
    first = recommendations(say(product, sender, "recommend me a sci-fi movie under $15"))["products"][0]
    product.restart("app", kill=True)
    # "it" is the first title shown before the restart (the shown_products slot)
    assert texts(say(product, sender, "how much is it?"))[0].startswith(first["title"])


# --- Rasa itself --------------------------------------------------------------------------------
def test_rasa_crashes_mid_conversation_and_continues_from_the_database(product: RunningStack) -> None:
    sender = "fault-offer-rasa"
    url = product.settings.resolved_database_url
    offer = recommendations(say(product, sender, "recommend me a comedy"))["offer"]
    assert offer and offer["percent_off"] == 15
    before = conversation(url, sender)
    product.restart("rasa", kill=True)  # SIGKILL: nothing is flushed on the way out
    # the pending offer (slots offer_pending / offer_id) survived: "yes" buys it at 15% off
    assert "ordered" in texts(say(product, sender, "yes"))[0]
    after = conversation(url, sender)
    assert after[: len(before)] == before  # nothing lost or rewritten, one conversation
    assert [t for k, t in after if k == "user"] == ["recommend me a comedy", "yes"]
    with session_scope(make_engine(url)) as s:
        order = s.scalars(sa.select(Order).where(Order.offer_id == offer["id"])).one()
        assert order.discount_pct == 15


# --- the database -------------------------------------------------------------------------------
def test_sqlite_locked_for_seconds_every_turn_waits_and_nothing_is_lost(product: RunningStack) -> None:
    """Another connection holds the write lock for 4 s while five customers each send a message
    that writes (an offer, the conversation's events)."""
    url = product.settings.resolved_database_url
    path = url.split("///", 1)[1]
    senders = [f"fault-lock-{i}" for i in range(5)]
    locked, release = threading.Event(), 4.0

    def hold_lock() -> None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(release)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(10)
    results: dict[str, tuple[float, list[dict[str, Any]]]] = {}

    def customer(sender: str) -> None:
        start = time.perf_counter()
        replies = say(product, sender, "recommend me a comedy")
        results[sender] = (time.perf_counter() - start, replies)

    threads = [threading.Thread(target=customer, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in [*threads, holder]:
        t.join(120)
    for sender in senders:
        waited, replies = results[sender]
        assert recommendations(replies)["offer"], sender
        assert waited > 1.0  # it did wait for the lock
        assert user_messages(url, sender) == ["recommend me a comedy"]
        assert bot_messages(url, sender) == texts(replies)  # every reply is in the tracker
    with session_scope(make_engine(url)) as s:
        offers = s.scalar(sa.select(sa.func.count()).select_from(Offer).where(Offer.channel == "text"))
        assert offers and offers >= len(senders)


class ThrowawayPostgres:
    """A private PostgreSQL cluster (.ci/postgres on its own folder and port) that can be stopped
    and started again with its data."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.env = {**os.environ, "SMARTMKT_PG_DIR": str(folder), "SMARTMKT_PG_PORT": str(self.port)}
        self.url = subprocess.run(
            ["bash", str(ROOT / ".ci" / "postgres"), "start"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.bin = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))[-1])

    def _pg_ctl(self, *args: str) -> None:
        owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(
            [*owner, str(self.bin), "-D", str(self.folder), *args], check=True, capture_output=True
        )

    def stop(self) -> None:
        self._pg_ctl("-m", "fast", "stop")  # ends every connection, as a restart or failover does

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._pg_ctl("-l", str(self.folder / "server.log"), "-w", "-o", options, "start")

    def remove(self) -> None:
        subprocess.run(["bash", str(ROOT / ".ci" / "postgres"), "stop"], env=self.env, check=False)


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    import tempfile

    parent = Path(tempfile.mkdtemp(prefix="smartmkt-faults-pg-"))
    parent.chmod(0o755)  # the server runs as the postgres user (pytest's tmp folders are private)
    server = ThrowawayPostgres(parent / "cluster")
    try:
        yield server
    finally:
        server.remove()
        shutil.rmtree(parent, ignore_errors=True)


def test_postgresql_restarts_mid_conversation_turns_wait_and_nothing_is_lost(
    postgres: ThrowawayPostgres, base_settings: Settings
) -> None:
    from smartmkt.data.demo import load_demo
    from smartmkt.store.migrate import upgrade

    url = postgres.url
    upgrade(url)
    engine = make_engine(url)
    load_demo(engine, base_settings.var_dir / "cache" / "wheels")
    engine.dispose()
    logs = ROOT / "test-artifacts" / "faults-pg-logs"
    shutil.rmtree(logs, ignore_errors=True)
    with running_stack(fault_settings(base_settings, url), logs) as pg_stack:
        sender = "fault-pg"
        offer = recommendations(say(pg_stack, sender, "recommend me a comedy"))["offer"]
        assert offer and offer["percent_off"] == 15
        postgres.stop()
        restart = threading.Timer(4.0, postgres.start)
        restart.start()
        start = time.perf_counter()
        replies = say(pg_stack, sender, "yes")  # sent while the database is down
        waited = time.perf_counter() - start
        restart.join()
        assert "ordered" in texts(replies)[0]
        assert waited > 2.0  # it waited for the database rather than forgetting the offer
        assert user_messages(url, sender) == ["recommend me a comedy", "yes"]
        assert bot_messages(url, sender)[-1] == texts(replies)[0]
        assert "retrying" in pg_stack.logs("rasa")
        # and the bot goes on as before
        assert recommendations(say(pg_stack, sender, "recommend me a drama"))["products"]
        with session_scope(make_engine(url)) as s:
            assert s.scalars(sa.select(Order).where(Order.offer_id == offer["id"])).one().discount_pct == 15
