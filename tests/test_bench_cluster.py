"""`smartmkt bench chat --cluster`'s pure parts, with no service started (the real run is a
benchmark, not a test): lost and duplicate message counting, retries with the same message id,
the figures' and the report's keys, and the command's option checks."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from smartmkt.bench.chat import Sample
from smartmkt.bench.cluster_chat import (
    SECTION_KEYS,
    LoadLog,
    count_lost,
    cpu_by_process,
    cpu_ms_per_turn,
    report,
    rss_by_process,
    section,
    send_until_answered,
    stored_message_ids,
    tree_cpu_s,
    tree_rss_mb,
)
from smartmkt.cli.main import app


def test_an_answered_message_missing_from_its_conversation_is_lost() -> None:
    answered = {"s1": ["a-1", "a-2", "a-3"], "s2": ["b-1"], "s3": []}
    stored = {"s1": ["a-1", "a-3"], "s2": ["b-1", "b-2"], "s3": []}  # b-2: sent, never answered
    assert count_lost(answered, stored) == (1, 0)
    assert count_lost(answered, {}) == (4, 0)


def test_a_message_id_stored_twice_is_a_duplicate_not_a_loss() -> None:
    answered = {"s1": ["a-1", "a-2"], "s2": ["b-1"]}
    stored = {"s1": ["a-1", "a-1", "a-2", "a-1"], "s2": ["b-1", "b-1"]}
    assert count_lost(answered, stored) == (0, 3)


def test_the_message_ids_are_read_from_rasas_events_table(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    url = f"sqlite:///{tmp_path / 'events.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id TEXT, type_name TEXT, data TEXT)")
        )
        rows = [
            ("s1", "user", {"message_id": "m-1"}),
            ("s1", "bot", {"text": "hi"}),
            ("s1", "user", {"message_id": "m-2"}),
            ("s2", "user", {"message_id": "n-1"}),
            ("other", "user", {"message_id": "x"}),
        ]
        for sender, kind, data in rows:
            conn.execute(
                text("INSERT INTO events (sender_id, type_name, data) VALUES (:s, :t, :d)"),
                {"s": sender, "t": kind, "d": json.dumps(data)},
            )
    engine.dispose()
    assert stored_message_ids(url, ["s1", "s2", "s3"]) == {"s1": ["m-1", "m-2"], "s2": ["n-1"], "s3": []}


def test_a_process_counts_its_group_and_everything_it_started() -> None:
    kb = 1024
    tick = os.sysconf("SC_CLK_TCK")
    table = {
        10: (1, 10, 100 * kb, 3 * tick),  # postgres, leading its group
        11: (10, 11, 5 * kb, 2 * tick),  # a backend in a session of its own
        12: (11, 12, 1 * kb, 0),  # and what it started
        13: (1, 10, 2 * kb, tick // 2),  # in the group, however started
        20: (1, 20, 50 * kb, 7 * tick),  # another service
        21: (20, 20, 7 * kb, tick),
    }
    assert tree_rss_mb(table, 10) == 108.0
    assert tree_rss_mb(table, 20) == 57.0
    assert tree_rss_mb(table, 99) == 0.0
    assert tree_cpu_s(table, 10) == 5.5 and tree_cpu_s(table, 20) == 8.0 and tree_cpu_s(table, 99) == 0.0


def test_cpu_per_turn_is_what_each_process_spent_between_two_readings() -> None:
    before = {"rasa1": 10.0, "actions1": 4.0, "bench": 1.0}
    after = {"rasa1": 13.0, "actions1": 3.5, "bench": 1.5, "consumer": 2.0}
    # actions1 went backwards (started again), the consumer was not there before: not counted
    assert cpu_ms_per_turn(before, after, 100) == {
        "rasa1": 30.0,
        "actions1": None,
        "bench": 5.0,
        "consumer": None,
    }
    assert cpu_ms_per_turn(before, before, 0) == {"rasa1": None, "actions1": None, "bench": None}


def test_this_process_is_read_from_proc() -> None:
    """The reading of a live process: this one, which burns some CPU in between."""
    me = {"me": os.getpgid(0)}
    first = cpu_by_process(me)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    second = cpu_by_process(me)
    assert second["me"] >= first["me"] + 0.2 and second["bench"] >= first["bench"] + 0.2
    assert rss_by_process(me)["me"] > 10


def _load(oks: list[bool]) -> LoadLog:
    samples = [Sample("chat", 100.0 + i, ok) for i, ok in enumerate(oks)]
    return LoadLog(samples, {"s1": ["m-1"]}, retried=1, elapsed_s=10.0)


def test_each_run_reports_the_issues_figures_first() -> None:
    figures = section(_load([True] * 19 + [False]), {"rasa": 400.0, "app": 300.5}, 0, 0, users=5)
    assert list(figures)[: len(SECTION_KEYS)] == list(SECTION_KEYS)
    assert figures["errors"] == 1 and figures["requests"] == 20
    assert figures["p50_ms"] == 109.5 and figures["p95_ms"] == 119.0
    assert figures["turns_per_s"] == 2.0
    assert figures["rss_mb"] == {"rasa": 400.0, "app": 300.5} and figures["rss_total_mb"] == 700.5
    assert figures["cpu_ms_per_turn"] == {}
    measured = section(_load([True] * 4), {}, 0, 0, users=1, cpu_ms={"rasa": 28.0, "app": None})
    assert measured["cpu_ms_per_turn"] == {"rasa": 28.0, "app": None}
    empty = section(LoadLog(), {}, 0, 0, users=1)
    assert empty["requests"] == 0 and empty["p95_ms"] is None and empty["turns_per_s"] is None


def test_the_report_is_one_object_with_both_runs() -> None:
    single = section(_load([True] * 4), {"rasa": 1.0}, 0, 0, users=1)
    cluster = section(_load([True] * 4), {"rasa1": 1.0, "rasa2": 1.0}, 2, 1, users=1)
    plain = report(single, cluster, faults=False)
    assert set(plain) == {"single", "cluster", "lost_messages", "faults", "notes"}
    assert plain["lost_messages"] == 2 and plain["faults"] is False
    assert "same" in plain["notes"] and "cores" in plain["notes"]
    faulty = report(single, cluster, faults=True, killed=["app1", "actions1", "rasa1"])
    assert set(faulty) == {"single", "cluster", "lost_messages", "faults", "notes", "faults_killed"}
    assert faulty["faults_killed"] == ["app1", "actions1", "rasa1"]
    json.dumps(faulty)


def _answer(replies: list[Any]) -> Any:
    async def run() -> Any:
        async with httpx.AsyncClient(transport=httpx.MockTransport(replies.pop(0))) as client:
            return await send_until_answered(client, "http://rasa/webhook", "s", "hi", "m-1", {}, 5, 0.0)

    return asyncio.run(run())


def test_a_failed_turn_is_sent_again_with_the_same_message_id() -> None:
    seen: list[dict[str, Any]] = []
    statuses = [503, 502, None, 200]  # None: the connection fails

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        status = statuses.pop(0)
        if status is None:
            raise httpx.ConnectError("refused", request=request)
        body = [{"text": "hello"}] if status == 200 else {"error": "x", "retry": True}
        return httpx.Response(status, json=body)

    answer = _answer([handler])
    assert answer.ok and answer.replies == [{"text": "hello"}] and answer.retries == 3
    assert [body["message_id"] for body in seen] == ["m-1"] * 4


@pytest.mark.parametrize("status, body", [(500, {"error": "x"}), (400, {"error": "x"}), (200, [])])
def test_other_failures_are_errors_at_once(status: int, body: Any) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json=body)

    answer = _answer([handler])
    assert not answer.ok and answer.retries == 0 and len(calls) == 1


def test_retries_stop_after_the_bound() -> None:
    async def run() -> Any:
        transport = httpx.MockTransport(lambda request: httpx.Response(503, json={"retry": True}))
        async with httpx.AsyncClient(transport=transport) as client:
            return await send_until_answered(client, "http://rasa/webhook", "s", "hi", "m-1", {}, 0.3, 0.05)

    answer = asyncio.run(run())
    assert not answer.ok and 2 <= answer.retries <= 6


@pytest.mark.parametrize(
    "args, message",
    [
        (["--faults"], "--faults only applies with --cluster"),
        (["--seconds", "30"], "--seconds only applies with --cluster"),
        (["--cluster", "--minutes", "1"], "not with --rasa-url or --minutes"),
    ],
)
def test_the_cluster_options_are_refused_where_they_do_not_apply(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", "chat", *args])
    assert result.exit_code == 1
    assert message in result.output


@pytest.mark.parametrize("seconds", ["9", "3601"])
def test_seconds_is_bounded(seconds: str) -> None:
    result = CliRunner().invoke(app, ["bench", "chat", "--cluster", "--seconds", seconds])
    assert result.exit_code == 2
