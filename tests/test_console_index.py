"""The conversation index: incremental catch-up gives what a rebuild gives, concurrent catch-ups
apply each event once, gaps in event ids are waited for and then passed, and the CLI commands
(`smartmkt console reindex`, `smartmkt nlu export-reviewed`) do what they say."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, text
from typer.testing import CliRunner

from smartmkt.bench import rasa_events as rasa
from smartmkt.console import index
from smartmkt.console.events import RASA_EVENTS
from smartmkt.console.reviews import save
from smartmkt.lifecycle.kinds import bot_python
from smartmkt.nlu.data import load_nlu_file
from smartmkt.settings import Settings

DAY = 1_772_445_600.0  # 2026-03-02 10:00 UTC


def conversations(n: int, start: float = DAY) -> list[dict[str, Any]]:
    """``n`` interleaved conversations: each turn of each conversation in time order."""
    convs = [rasa.Conversation(f"s{i}", start + i) for i in range(n)]
    for turn in range(3):
        for i, conv in enumerate(convs):
            conv.turn(
                f"message {turn} of conversation {i}",
                ("greet", "nlu_fallback", "ask_price")[turn],
                0.5 + 0.1 * turn,
                channel="voice" if i % 3 == 0 else "text",
                actions=["action_default_fallback"] if (i + turn) % 5 == 0 else ["action_price"],
                replies=[
                    (f"reply {turn}", rasa.recommendations([], {"id": 1000 + i}) if turn == 2 else None)
                ],
            )
    rows = [row for conv in convs for row in conv.rows]
    return sorted(rows, key=lambda r: r["timestamp"])


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The index's contents, without surrogate ids."""
    queries = {
        "conversations": "SELECT sender_id, customer_ref, started_at, last_event_at, last_event_id, turns,"
        " voice_turns, fallback_turns, min_confidence, offers_made, first_message, search_text"
        " FROM console_conversations",
        "days": "SELECT c.sender_id, d.day, d.turns, d.voice_turns, d.fallback_turns"
        " FROM console_conversation_days d JOIN console_conversations c ON c.id = d.conversation_id",
        "intents": "SELECT c.sender_id, i.intent, i.day, i.turns FROM console_conversation_intents i"
        " JOIN console_conversations c ON c.id = i.conversation_id",
        "intent_days": "SELECT day, intent, turns FROM console_intent_days WHERE turns > 0",
        "offers": "SELECT c.sender_id, o.offer_id, o.shown_at, o.event_id FROM console_conversation_offers o"
        " JOIN console_conversations c ON c.id = o.conversation_id",
    }
    with engine.connect() as conn:
        return {name: sorted(tuple(r) for r in conn.execute(text(q))) for name, q in queries.items()}


@pytest.fixture
def store(demo_engine: Engine) -> Iterator[Engine]:
    with demo_engine.begin() as conn:
        RASA_EVENTS.create(conn)
    yield demo_engine


def test_catching_up_in_small_batches_equals_a_rebuild(store: Engine) -> None:
    rows = conversations(12)
    for part in (rows[:100], rows[100:101], rows[101:]):  # events keep arriving between catch-ups
        with store.begin() as conn:
            rasa.write(conn, part)
        index.catch_up(store, store, batch_size=17)
    incremental = snapshot(store)
    run = index.rebuild(store, store)
    assert run.events == len(rows) and snapshot(store) == incremental
    s0 = next(r for r in incremental["conversations"] if r[0] == "s0")
    assert s0[5:8] == (3, 3, 2)  # turns, voice turns, fallbacks: a default fallback, an nlu_fallback
    assert s0[8] == pytest.approx(0.5) and s0[9] == 1 and s0[10] == "message 0 of conversation 0"
    assert index.catch_up(store, store).events == 0  # nothing new: nothing done


def test_concurrent_catch_ups_apply_each_event_once(store: Engine, demo_db: Path) -> None:
    from smartmkt.store.db import make_engine

    with store.begin() as conn:
        rasa.write(conn, conversations(30))
    engines = [make_engine(f"sqlite:///{demo_db}") for _ in range(4)]  # four app processes
    errors: list[BaseException] = []

    def work(engine: Engine) -> None:
        try:
            index.catch_up(engine, engine, batch_size=25)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    concurrent = snapshot(store)
    index.rebuild(store, store)
    assert snapshot(store) == concurrent
    for engine in engines:
        engine.dispose()


def test_a_gap_in_event_ids_is_waited_for_then_passed(store: Engine) -> None:
    now = time.time()
    rows = conversations(2, start=now - 30)
    with store.begin() as conn:
        rasa.write(conn, rows)
        ids = list(conn.scalars(select(RASA_EVENTS.c.id).order_by(RASA_EVENTS.c.id)))
        # an event still committing elsewhere: its id is taken but the row is not visible yet
        conn.execute(delete(RASA_EVENTS).where(RASA_EVENTS.c.id == ids[10]))
    run = index.catch_up(store, store)
    assert run.last_event_id == ids[9]  # stops before the fresh gap
    with store.begin() as conn:  # the gap grows old (a rolled-back or deleted row)
        conn.execute(RASA_EVENTS.update().values(timestamp=RASA_EVENTS.c.timestamp - index.GAP_GRACE_S - 60))
    assert index.catch_up(store, store).last_event_id == ids[-1]


def test_forget_drops_a_conversation(store: Engine) -> None:
    with store.begin() as conn:
        rasa.write(conn, conversations(3))
    index.catch_up(store, store)
    assert index.forget(store, "s1") and not index.forget(store, "nobody")
    assert {r[0] for r in snapshot(store)["conversations"]} == {"s0", "s2"}
    left = snapshot(store)
    assert all(r[0] != "s1" for name in ("days", "intents", "offers") for r in left[name])
    totals: dict[tuple[Any, Any], int] = {}
    for _sender, intent, day, turns in left["intents"]:
        totals[(day, intent)] = totals.get((day, intent), 0) + turns
    assert {(day, intent): n for day, intent, n in left["intent_days"]} == totals  # s1's turns left too


def test_no_events_table_yet_is_an_empty_index(demo_engine: Engine) -> None:
    assert index.catch_up(demo_engine, demo_engine).events == 0


# --- commands ------------------------------------------------------------------------------------
@pytest.fixture
def cli_env(store: Engine, demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    from smartmkt.settings import get_settings
    from smartmkt.store.db import get_engine

    monkeypatch.setenv("SMARTMKT_DATABASE_URL", f"sqlite:///{demo_db}")
    monkeypatch.delenv("SMARTMKT_TRACKER_URL", raising=False)
    monkeypatch.delenv("SMARTMKT_TRACKER_DB", raising=False)
    get_settings.cache_clear()
    get_engine.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()
    get_engine.cache_clear()


def test_reindex_command(store: Engine, cli_env: CliRunner) -> None:
    from smartmkt.cli.main import app

    rows = conversations(5)
    with store.begin() as conn:
        rasa.write(conn, rows)
    result = cli_env.invoke(app, ["console", "reindex"])
    assert result.exit_code == 0, result.output
    assert f"indexed {len(rows)} events" in result.output
    assert len(snapshot(store)["conversations"]) == 5
    again = cli_env.invoke(app, ["console", "reindex", "--catch-up"])
    assert again.exit_code == 0 and "indexed 0 events" in again.output


def test_export_reviewed_writes_rasa_nlu_yaml(
    store: Engine, cli_env: CliRunner, base_settings: Settings, tmp_path: Path
) -> None:
    from smartmkt.cli.main import app

    texts = ["a scary film for my dad", 'the "best" film from the 90s', "hola, algo de comedia", "hi"]
    conv = rasa.Conversation("r1", DAY)
    for t in texts:
        conv.turn(t, "nlu_fallback", 0.3)
    with store.begin() as conn:
        rasa.write(conn, conv.rows)
        ids = dict(
            conn.execute(
                text("SELECT json_extract(data, '$.text'), id FROM events WHERE type_name='user'")
            ).all()
        )
    empty = cli_env.invoke(app, ["nlu", "export-reviewed", "--out", str(tmp_path / "none.yml")])
    assert (
        empty.exit_code == 0
        and "no reviewed messages" in empty.output
        and not (tmp_path / "none.yml").exists()
    )
    bot_dir = base_settings.bot_dir
    save(
        store,
        store,
        bot_dir,
        ids[texts[0]],
        texts[0],
        "ask_recommendation",
        [
            {"entity": "category", "value": "horror", "start": 2, "end": 7},
            {"entity": "recipient", "value": "my dad", "start": 17, "end": 23},
        ],
        None,
    )
    save(
        store,
        store,
        bot_dir,
        ids[texts[1]],
        texts[1],
        "ask_recommendation",
        [{"entity": "year", "value": "1990-1999", "start": texts[1].index("90s"), "end": len(texts[1])}],
        None,
    )
    save(
        store,
        store,
        bot_dir,
        ids[texts[2]],
        texts[2],
        "out_of_scope",
        [{"entity": "category", "value": "comedy", "start": 14, "end": 21, "role": "exclude"}],
        None,
    )
    save(store, store, bot_dir, ids[texts[3]], texts[3], "goodbye", [], None)  # bot/data/nlu: "hi" is greet
    out = tmp_path / "reviewed.yml"
    result = cli_env.invoke(app, ["nlu", "export-reviewed", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported 3 reviewed example(s) of 2 intent(s)" in result.output
    assert "left out" in result.output and "'hi'" in result.output and "greet" in result.output
    written = out.read_text()
    assert written.startswith('version: "3.1"\nnlu:\n- intent: ask_recommendation\n  examples: |\n')
    assert '- a [scary]{"entity": "category", "value": "horror"} film for [my dad](recipient)' in written
    examples = {(e.text, e.intent): e for e in load_nlu_file(out)}  # what the NLU training reads
    assert set(examples) == {
        (texts[0], "ask_recommendation"),
        (texts[1], "ask_recommendation"),
        (texts[2], "out_of_scope"),
    }
    spans = {(s.start, s.end, s.entity, s.role) for s in examples[(texts[2], "out_of_scope")].entities}
    assert spans == {(14, 21, "category", "exclude")}
    assert {(s.start, s.end) for s in examples[(texts[1], "ask_recommendation")].entities} == {(25, 28)}
    stdout = cli_env.invoke(app, ["nlu", "export-reviewed"])
    assert stdout.exit_code == 0 and 'version: "3.1"' in stdout.stdout

    # Rasa itself accepts the bot's data with the export added (warnings fail, as in make test)
    project = tmp_path / "bot"
    shutil.copytree(bot_dir / "data", project / "data")
    for name in ("domain.yml", "config.yml"):
        shutil.copy(bot_dir / name, project / name)
    shutil.copy(out, project / "data" / "nlu" / "reviewed.yml")
    validate = [str(bot_python(base_settings)), "-m", "rasa", "data", "validate", "--domain", "domain.yml"]
    validate += ["--data", "data", "--config", "config.yml", "--fail-on-warnings"]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    checked = subprocess.run(validate, cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
