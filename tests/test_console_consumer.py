"""The console consumer (smartmkt/console/consumer.py): Rasa's published events folded into the
conversation index give what the events table gives, each event counts once however often it is
delivered, messages that are not events are dropped and counted; and with a real RabbitMQ, a
consumer killed with SIGKILL and started again (and a RabbitMQ restarted under it) still counts
every event exactly once."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
from sqlalchemy import Engine, func, select, text
from test_console_index import DAY, conversations, snapshot

from smartmkt.bench import rasa_events as rasa
from smartmkt.console import index
from smartmkt.console.consumer import EXCHANGE, parse
from smartmkt.console.events import RASA_EVENTS
from smartmkt.runtime.engines import Engines, missing_packages
from smartmkt.runtime.stack import running_services
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine
from smartmkt.store.migrate import upgrade
from smartmkt.web.console_access import ConsoleBackend

ROOT = Path(__file__).resolve().parents[1]
QUEUE = "smartmkt_events"


def published(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What Rasa publishes for these rows of ``events``: ``{"sender_id": ..., **event.as_dict()}``."""
    return [{"sender_id": row["sender_id"], **json.loads(row["data"])} for row in rows]


def comparable(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """``snapshot`` without the row ids of ``events`` (a published event has none: id 0)."""
    shot = snapshot(engine)
    shot["conversations"] = [r[:4] + r[5:] for r in shot["conversations"]]  # no last_event_id
    shot["offers"] = [r[:3] for r in shot["offers"]]  # no event_id
    return shot


def turns(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT sender_id, turns FROM console_conversations")).all())


def seen_keys(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(index.SEEN)) or 0)


@pytest.fixture
def reference(demo_engine: Engine, tmp_path: Path) -> Callable[[list[dict[str, Any]]], Engine]:
    """A second migrated store that indexes ``rows`` the old way: from an events table."""

    def build(rows: list[dict[str, Any]]) -> Engine:
        url = f"sqlite:///{tmp_path / 'reference.db'}"
        upgrade(url)
        engine = make_engine(url)
        with engine.begin() as conn:
            RASA_EVENTS.create(conn)
            rasa.write(conn, rows)
        index.catch_up(engine, engine, dedupe=False)
        return engine

    return build


# --- without RabbitMQ ------------------------------------------------------------------------------
def test_published_events_index_like_the_events_table(
    demo_engine: Engine, reference: Callable[[list[dict[str, Any]]], Engine]
) -> None:
    rows = conversations(6)
    events = published(rows)
    run = index.fold_published(demo_engine, events[:40])
    run2 = index.fold_published(demo_engine, events[40:])
    assert (run.folded + run2.folded, run.duplicates + run2.duplicates, run.dropped) == (len(rows), 0, 0)
    from_table = reference(rows)
    assert comparable(demo_engine) == comparable(from_table)
    assert turns(demo_engine) == {f"s{i}": 3 for i in range(6)}
    assert len(comparable(demo_engine)["offers"]) == 6  # each conversation's third reply showed one
    from_table.dispose()


def test_a_batch_delivered_again_counts_nothing_twice(demo_engine: Engine) -> None:
    events = published(conversations(5))
    first = index.fold_published(demo_engine, events[:50])
    once = comparable(demo_engine)
    again = index.fold_published(demo_engine, events[:50])  # a crash between commit and ack
    assert (again.folded, again.duplicates) == (0, 50) and comparable(demo_engine) == once
    overlapping = index.fold_published(demo_engine, events[30:])  # part seen, part new
    assert (overlapping.folded, overlapping.duplicates) == (len(events) - 50, 20)
    in_one_batch = index.fold_published(demo_engine, events[-3:] + events[-3:])
    assert (in_one_batch.folded, in_one_batch.duplicates) == (0, 6)
    assert first.folded + overlapping.folded == len(events) == seen_keys(demo_engine)
    assert turns(demo_engine) == {f"s{i}": 3 for i in range(5)}


def test_each_event_counts_once_on_both_engines(store_url: str) -> None:
    """The keys' INSERT ... ON CONFLICT DO NOTHING RETURNING on SQLite and PostgreSQL: deliveries
    again, and a catch-up over ``events`` in broker mode, count nothing twice."""
    engine = make_engine(store_url)
    rows = conversations(4)
    with engine.begin() as conn:
        RASA_EVENTS.create(conn)
        rasa.write(conn, rows)
    events = published(rows)
    assert index.fold_published(engine, events[:25]).folded == 25
    again = index.fold_published(engine, events[10:] + events[:5])
    assert (again.folded, again.duplicates) == (len(events) - 25, 20)
    assert index.catch_up(engine, engine, dedupe=True).events == len(rows)  # all read, none new
    assert turns(engine) == {f"s{i}": 3 for i in range(4)} and seen_keys(engine) == len(rows)
    engine.dispose()


def test_messages_that_are_not_events_are_dropped_and_counted(demo_engine: Engine) -> None:
    good = published(conversations(1))
    bad_bodies = [b"not json", b"\xff\xfe", b"[1, 2]", b'"a string"']
    bad = [parse(body) for body in bad_bodies] + [
        {"event": "user", "timestamp": DAY},  # no sender
        {"sender_id": "x", "timestamp": DAY},  # no event
        {"sender_id": "x", "event": "user"},  # no timestamp
        {"sender_id": "x", "event": "user", "timestamp": "yesterday"},
        {"sender_id": "x", "event": "user", "timestamp": float("nan")},
        {"sender_id": "", "event": "user", "timestamp": DAY},
    ]
    run = index.fold_published(demo_engine, bad + good)
    assert (run.folded, run.duplicates, run.dropped) == (len(good), 0, len(bad))
    assert turns(demo_engine) == {"s0": 3}
    assert index.fold_published(demo_engine, bad).dropped == len(bad)  # nothing folded, no error


def test_a_rebuild_records_the_keys_the_consumer_then_skips(demo_engine: Engine) -> None:
    """``smartmkt console reindex`` in broker mode: the index rebuilt from ``events`` and the
    broker's copies of the same events (still queued) count once."""
    rows = conversations(4)
    with demo_engine.begin() as conn:
        RASA_EVENTS.create(conn)
        rasa.write(conn, rows)
    index.fold_published(demo_engine, published(rows[:30]))  # the consumer had folded these
    rebuilt = index.rebuild(demo_engine, demo_engine, dedupe=True)
    assert rebuilt.events == len(rows) and seen_keys(demo_engine) == len(rows)
    late = index.fold_published(demo_engine, published(rows))  # the queue delivers them all
    assert (late.folded, late.duplicates) == (0, len(rows))
    assert turns(demo_engine) == {f"s{i}": 3 for i in range(4)}
    # a catch-up over events (an erasure's, a retention purge's) in broker mode counts nothing twice
    index.clear(demo_engine)
    assert seen_keys(demo_engine) == 0
    index.fold_published(demo_engine, published(rows))
    assert index.catch_up(demo_engine, demo_engine, dedupe=True).events == len(rows)
    assert turns(demo_engine) == {f"s{i}": 3 for i in range(4)}


def test_the_console_does_not_read_events_in_broker_mode(demo_db: Path, base_settings: Settings) -> None:
    url = f"sqlite:///{demo_db}"
    engine = make_engine(url)
    with engine.begin() as conn:
        RASA_EVENTS.create(conn)
        rasa.write(conn, conversations(2))
    engine.dispose()
    broker = ConsoleBackend(base_settings.model_copy(update={"database_url": url, "amqp_url": "amqp://x/"}))
    assert broker.catch_up() == index.IndexRun() and turns(broker.store) == {}
    alone = ConsoleBackend(base_settings.model_copy(update={"database_url": url, "amqp_url": ""}))
    assert alone.catch_up().events > 0 and len(turns(alone.store)) == 2
    broker.store.dispose()
    alone.store.dispose()


# --- with RabbitMQ ---------------------------------------------------------------------------------
def _three_free_ports() -> int:
    """A port whose next two are free too (RabbitMQ's AMQP, distribution and port mapper)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 2 >= 65536:
            continue
        try:
            for extra in (port, port + 1, port + 2):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", extra))
        except OSError:
            continue
        return port
    raise RuntimeError("no three free ports in a row")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _publish(amqp_url: str, bodies: list[bytes]) -> None:
    """As Rasa's pika broker: the fanout exchange declared with RabbitMQ's defaults, the durable
    queue bound to it, each event a persistent message."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.exchange_declare(EXCHANGE, exchange_type="fanout")
        channel.queue_declare(QUEUE, durable=True)
        channel.queue_bind(QUEUE, EXCHANGE, routing_key="")
        for body in bodies:
            channel.basic_publish(EXCHANGE, "", body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def _health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
            return json.loads(reply.read())  # type: ignore[no-any-return]
    except OSError:
        return None


def _wait(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class ConsumerProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = _free_port()
        self.log = log.open("ab")
        command = [sys.executable, "-m", "smartmkt.console.consumer", "--queue", QUEUE]
        command += ["--health-port", str(self.port)]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        _wait("the consumer's /health", lambda: _health(self.port) is not None, timeout=30)

    def health(self) -> dict[str, Any]:
        return _health(self.port) or {}

    def wait_for(self, what: str, check: Callable[[dict[str, Any]], bool], timeout: float = 60) -> None:
        def done() -> bool:
            assert self.proc.poll() is None, f"the consumer exited ({self.proc.returncode})"
            return check(self.health())

        _wait(what, done, timeout)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout=10)
        self.log.close()
        return code


@pytest.fixture
def rabbitmq(tmp_path: Path) -> Iterator[tuple[Engines, Callable[[], Any]]]:
    """epmd for the test, and RabbitMQ in a context of its own so a test can restart it."""
    assert missing_packages() == [], "make setup installs the engines' Debian packages"
    found = Engines(tmp_path / "engines", 0, 0, _three_free_ports())
    with running_services([found.epmd()], tmp_path / "logs", timeout=60):
        yield found, lambda: running_services([found.rabbitmq()], tmp_path / "logs", timeout=120)


def test_a_killed_consumer_catches_up_and_counts_each_event_once(
    tmp_path: Path, rabbitmq: tuple[Engines, Callable[[], Any]]
) -> None:
    found, rabbitmq_running = rabbitmq
    store_url = f"sqlite:///{tmp_path / 'x.db'}"
    upgrade(store_url)
    env = {
        **os.environ,
        "SMARTMKT_DATABASE_URL": store_url,
        "SMARTMKT_AMQP_URL": found.amqp_url,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("SMARTMKT_TRACKER_URL", None)
    first = conversations(8)  # 8 conversations, 3 turns each
    later = conversations(6, start=DAY + 3600)
    for row in later:
        row["sender_id"] = "late-" + row["sender_id"]
    third = conversations(3, start=DAY + 7200)
    for row in third:
        row["sender_id"] = "after-restart-" + row["sender_id"]
    encode = [json.dumps(e).encode() for e in published(first)]
    store = make_engine(store_url)
    consumer: ConsumerProcess | None = None
    try:
        with rabbitmq_running():
            _publish(found.amqp_url, encode)
            consumer = ConsumerProcess(env, tmp_path / "consumer.log")
            consumer.wait_for("the first events folded", lambda h: h.get("folded") == len(first))
            assert consumer.health()["connected"] is True
            assert consumer.stop(signal.SIGKILL) == -signal.SIGKILL
            consumer = None
            assert turns(store) == {f"s{i}": 3 for i in range(8)}

            # while it is down: new events, some of the first ones again, one that is no event
            again = encode[5:25]
            _publish(found.amqp_url, [json.dumps(e).encode() for e in published(later)] + again + [b"{oops"])
            consumer = ConsumerProcess(env, tmp_path / "consumer.log")
            consumer.wait_for(
                "the queue caught up",
                lambda h: (h.get("folded"), h.get("duplicates"), h.get("dropped")) == (len(later), 20, 1),
            )
        # RabbitMQ stopped: the consumer stays up, disconnected, and connects again once it is back
        consumer.wait_for("the consumer to notice", lambda h: h.get("connected") is False, timeout=30)
        with rabbitmq_running():
            consumer.wait_for("the consumer to reconnect", lambda h: h.get("connected") is True, timeout=60)
            _publish(found.amqp_url, [json.dumps(e).encode() for e in published(third)] + encode[:3])
            consumer.wait_for(
                "the events after the restart",
                lambda h: (h.get("folded"), h.get("duplicates")) == (len(later) + len(third), 23),
            )
            assert consumer.stop() == 0  # SIGTERM: a clean exit
            consumer = None
        expected = {f"s{i}": 3 for i in range(8)}
        expected |= {f"late-s{i}": 3 for i in range(6)} | {f"after-restart-s{i}": 3 for i in range(3)}
        assert turns(store) == expected
        assert seen_keys(store) == len(first) + len(later) + len(third)
    finally:
        if consumer is not None:
            consumer.stop(signal.SIGKILL)
        store.dispose()
