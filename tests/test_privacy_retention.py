"""Retention: conversations older than N days are purged (whole, or their earlier sessions while
they go on), with their console index rows and NLU reviews; the index left equals a rebuild;
`smartmkt retention run` prints what it did (or would do); the scheduler runs it again and again;
and `smartmkt run` runs it once the services are up."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import smartmkt_run
from privacy_support import cli_on
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from smartmkt.bench import rasa_events as rasa
from smartmkt.cli.main import app
from smartmkt.console import index
from smartmkt.console.reviews import save as save_review
from smartmkt.privacy.retention import DailyRetention, run_retention, schedule_retention
from smartmkt.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
DAY = 86_400.0
NOW = time.time()


def turns(sender: str, start: float, said: list[str]) -> list[dict[str, Any]]:
    """A conversation session from ``start``: one customer message per 10 minutes."""
    conv = rasa.Conversation(sender, start)
    for words in said:
        conv.turn(
            words, "ask_recommendation", actions=["action_recommend"], replies=[("picks", None)], pause=600
        )
    return conv.rows


def seed(store: Engine, bot_dir: Path) -> None:
    old = NOW - 400 * DAY
    rows = turns("old", old, ["old one", "old two"])  # all of it older than a year
    rows += turns("long", old, ["long ago"]) + turns("long", NOW - 2 * DAY, ["lately", "again"])
    rows += turns("edge", NOW - 366 * DAY, ["edge start"])  # one session across the cut-off:
    rows += rasa.Conversation("edge", NOW - DAY).turn("edge now", "greet").rows[3:]  # no new session
    rows += turns("new", NOW - 3600, ["just now"])
    with store.begin() as conn:
        rasa.write(conn, sorted(rows, key=lambda r: r["timestamp"]))
    index.catch_up(store, store)
    with store.connect() as conn:
        users = conn.execute(text("SELECT id, data FROM events WHERE type_name = 'user'"))
        said = {json.loads(data)["text"]: event_id for event_id, data in users}
    for words in ("old one", "long ago", "lately"):
        save_review(store, store, bot_dir, said[words], words, "ask_recommendation", [], None)


def snapshot(store: Engine) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "conversations": "SELECT sender_id, started_at, last_event_at, last_event_id, turns, first_message,"
        " search_text FROM console_conversations ORDER BY sender_id",
        "days": "SELECT c.sender_id, d.day, d.turns FROM console_conversation_days d"
        " JOIN console_conversations c ON c.id = d.conversation_id ORDER BY 1, 2",
        "intents": "SELECT c.sender_id, i.intent, i.day, i.turns FROM console_conversation_intents i"
        " JOIN console_conversations c ON c.id = i.conversation_id ORDER BY 1, 2, 3",
        "intent_days": "SELECT day, intent, turns FROM console_intent_days WHERE turns > 0 ORDER BY 1, 2",
    }
    with store.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(text(q))] for name, q in queries.items()}


def texts(store: Engine, sender: str) -> list[str]:
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
            {"s": sender},
        )
        return [json.loads(r.data)["text"] for r in rows]


@pytest.fixture
def store(demo_db: Path, base_settings: Any) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{demo_db}")
    seed(engine, base_settings.bot_dir)
    yield engine
    engine.dispose()


def test_retention_purges_old_conversations_and_sessions(store: Engine) -> None:
    with store.connect() as conn:
        events_before = conn.scalar(text("SELECT count(*) FROM events"))
    dry = run_retention(store, store, 365, dry_run=True)
    assert (dry.conversations_purged, dry.conversations_trimmed, dry.nlu_reviews) == (1, 1, 2)
    with store.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM events")) == events_before  # a dry run changes nothing
        assert conn.scalar(text("SELECT count(*) FROM nlu_reviews")) == 3

    done = run_retention(store, store, 365)
    assert (done.conversations_purged, done.conversations_trimmed, done.events, done.nlu_reviews) == (
        1,
        1,
        dry.events,
        2,
    )
    assert texts(store, "old") == []
    assert texts(store, "long") == ["lately", "again"]  # its earlier session went
    assert texts(store, "edge") == ["edge start", "edge now"]  # the session in progress stays whole
    assert texts(store, "new") == ["just now"]
    with store.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM events")) == events_before - done.events
        assert list(conn.scalars(text("SELECT text FROM nlu_reviews"))) == ["lately"]
    kept = snapshot(store)
    assert [c[0] for c in kept["conversations"]] == ["edge", "long", "new"]
    long = next(c for c in kept["conversations"] if c[0] == "long")
    assert long[4] == 2 and long[5] == "lately" and "long ago" not in long[6]
    index.rebuild(store, store)
    assert snapshot(store) == kept  # the index left is what a rebuild from the events left gives
    assert run_retention(store, store, 365).events == 0  # nothing more to do


@pytest.fixture
def cli(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    with cli_on(demo_db, monkeypatch, SMARTMKT_RETENTION_DAYS="365") as runner:
        yield runner


def test_retention_command(store: Engine, cli: CliRunner) -> None:
    dry = cli.invoke(app, ["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "retention (365 days" in dry.output and "would purge" in dry.output
    assert "1 conversations whole, 1 trimmed" in dry.output and "2 NLU reviews" in dry.output
    assert texts(store, "old")
    shorter = cli.invoke(app, ["retention", "run", "--days", "30", "--json"])
    assert shorter.exit_code == 0, shorter.output
    report = json.loads(shorter.output)
    assert report["days"] == 30 and not report["dry_run"]
    assert (report["conversations_purged"], report["conversations_trimmed"]) == (1, 1)  # edge: one session
    assert texts(store, "old") == [] and texts(store, "edge") == ["edge start", "edge now"]
    assert cli.invoke(app, ["retention", "run", "--days", "0"]).exit_code != 0


def test_scheduler_runs_retention_again_and_again(store: Engine) -> None:
    scheduler = DailyRetention(lambda: run_retention(store, store, 365), interval_s=0.3)
    scheduler.start()
    deadline = time.monotonic() + 30
    while not scheduler.runs and time.monotonic() < deadline:
        time.sleep(0.05)
    assert scheduler.runs and scheduler.runs[0].conversations_purged == 1
    with store.begin() as conn:  # an old conversation turns up (e.g. restored from a backup)
        rasa.write(conn, turns("restored", NOW - 500 * DAY, ["from a backup"]))
    while texts(store, "restored") and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    scheduler.join(timeout=10)
    assert texts(store, "restored") == [] and len(scheduler.runs) >= 2
    never = DailyRetention(lambda: run_retention(store, store, 365), interval_s=0.1, wait_for=lambda: False)
    never.start()
    never.join(timeout=10)
    assert never.runs == [] and not never.is_alive()


def deployment(base_settings: Any, demo_db: Path, **more: Any) -> Any:
    """A deployment's settings on the demo store copy, keeping a year of conversations."""
    update = {"database_url": f"sqlite:///{demo_db}", "tracker_url": "", "tracker_db": ""}
    return base_settings.model_copy(update={**update, "retention_days": 365, **more})


def scheduled_once(settings: Any) -> list[str]:
    """What schedule_retention said after its first run (it is stopped then)."""
    said: list[str] = []
    scheduler = schedule_retention(settings, lambda: True, said.append)
    deadline = time.monotonic() + 60
    while not said and time.monotonic() < deadline:
        time.sleep(0.05)
    scheduler.stop()
    return said


def test_one_deployments_schedule_purges_its_store_and_says_so(
    store: Engine, demo_db: Path, base_settings: Any
) -> None:
    """schedule_retention (what `smartmkt run` and the cluster's supervisor start) waits for the
    services, purges the settings' store and reports the run; it never starts if they stay down."""
    settings = deployment(base_settings, demo_db)
    said = scheduled_once(settings)
    assert texts(store, "old") == [] and texts(store, "new") == ["just now"]
    assert len(said) == 1 and "retention (365 days" in said[0] and "next run in 24 h" in said[0], said
    blocked: list[str] = []
    never = schedule_retention(settings, lambda: False, blocked.append)
    never.join(timeout=10)
    assert blocked == [] and never.runs == [] and not never.is_alive()


def test_a_clusters_schedule_records_the_keys_the_consumer_dedupes_on(
    demo_db: Path, base_settings: Any
) -> None:
    """The cluster's supervisor runs retention for the cluster's settings (RabbitMQ set) from a
    process whose own environment has none. Its catch-up must record each event's key, else the
    consumer, delivered the same events from RabbitMQ, counts every customer message twice (a
    clean-clone CI caught the console index one to four turns ahead of the events table)."""
    engine = make_engine(f"sqlite:///{demo_db}")
    rows = turns("queued", NOW - 3600, ["first", "second"])
    with engine.begin() as conn:
        rasa.write(conn, rows)  # stored by Rasa; the consumer has not folded their messages yet
    settings = deployment(base_settings, demo_db, amqp_url="amqp://guest:guest@127.0.0.1:1/%2F")
    assert not index.broker_mode()  # this process's own settings: no RabbitMQ
    assert scheduled_once(settings), "retention did not run"  # it never connects to RabbitMQ
    published = [{"sender_id": r["sender_id"], **json.loads(r["data"])} for r in rows]
    delivered = index.fold_published(engine, published)  # RabbitMQ delivers them after all
    assert (delivered.folded, delivered.duplicates) == (0, len(rows))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT turns FROM console_conversations WHERE sender_id = 'queued'")) == 2
    engine.dispose()


@pytest.mark.e2e
def test_smartmkt_run_schedules_retention(tmp_path: Path, demo_db: Path) -> None:
    """`smartmkt run` (what `make run` starts) purges old conversations once the services are up."""
    engine = make_engine(f"sqlite:///{demo_db}")
    with engine.begin() as conn:
        rasa.write(conn, turns("forgotten", NOW - 45 * DAY, ["an old question"]))
    engine.dispose()
    env = {"SMARTMKT_DATABASE_URL": f"sqlite:///{demo_db}", "SMARTMKT_RETENTION_DAYS": "30"}
    # Rasa's tracker store in the store's database (the default), where the old turns were written
    with smartmkt_run(tmp_path, env, drop=("SMARTMKT_TRACKER_URL", "SMARTMKT_TRACKER_DB")) as running:
        deadline = time.monotonic() + 300
        while "retention (30 days" not in running.log():
            assert running.proc.poll() is None, running.log()[-3000:]
            assert time.monotonic() < deadline, running.log()[-3000:]
            time.sleep(1)
        time.sleep(0.5)
        said = running.log()
        assert "purged" in said and "1 conversations whole" in said and "next run in 24 h" in said
        engine = make_engine(f"sqlite:///{demo_db}")
        assert texts(engine, "forgotten") == []
        engine.dispose()
