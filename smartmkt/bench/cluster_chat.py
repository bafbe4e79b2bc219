"""``smartmkt bench chat --cluster``: the same timed chat load against a single stack and then
against a cluster (2 replicas of the app, the actions and Rasa behind HAProxy), in one run.

Each of ``users`` simulated customers holds one realistic conversation after another
(smartmkt.bench.chat.Conversation) for ``seconds``, pausing ``think_ms`` on average between
messages. Every message carries the client's own ``message_id`` (bot/replicas.py): a 502, 503,
504 or a transport error is sent again with the same id, for up to ``RETRY_WITHIN_S`` seconds,
as a client of a cluster does when a replica dies. A request is an error only if it never got a
200 with replies; its latency is what the customer waited, retries included.

The two runs are sequential (never both at once: they share the machine's cores). With
``faults``, one app, one action server and one Rasa replica are killed (SIGKILL to the process
group) about a third into the cluster's load; the cluster's supervisor starts them again.

After each load, the user events of every conversation in Rasa's tracker store (its ``events``
table) are compared with the messages the bench got answered: a message answered but not stored
is lost, a message id stored twice is a duplicate. The resident memory of every process (with
its workers, by process group) is read at the end of each load, and the CPU each spent per turn
(user + system, from /proc, before and after the load): the capacity model in
docs/benchmarks.md is built from these.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from smartmkt.bench.chat import (
    FALLBACKS,
    Sample,
    SessionFor,
    percentile,
    scratch_stack,
    signed_sessions,
    visit_of,
)
from smartmkt.settings import Settings

RETRY_STATUSES = frozenset({502, 503, 504})
RETRY_WITHIN_S = 120.0  # longer than a dead replica holds a conversation (the lock, 60 s)
RETRY_PAUSE_S = 0.5
VICTIMS = ("app1", "actions1", "rasa1")  # one replica of each kind
SECTION_KEYS = ("errors", "requests", "p50_ms", "p95_ms", "turns_per_s", "rss_mb")
NOTES = (
    "single and cluster ran one after the other on the same machine, sharing the same "
    "{cores} cores (the cluster's replicas, engines and HAProxy compete with each other and "
    "with the load generator); lost_messages counts both runs"
)

Say = Callable[[str], None]


@dataclass
class Answer:
    """What one message got: the customer's wait, a 200 with replies or not, and how often it
    had to be sent again."""

    ms: float
    ok: bool
    replies: list[dict[str, Any]]
    retries: int = 0


async def send_until_answered(
    client: httpx.AsyncClient,
    url: str,
    sender: str,
    message: str,
    message_id: str,
    metadata: Mapping[str, Any],
    within_s: float = RETRY_WITHIN_S,
    pause_s: float = RETRY_PAUSE_S,
) -> Answer:
    """``message`` under ``message_id``, sent again (same id) while the answer is a 502, 503 or
    504 or the connection fails, for up to ``within_s`` seconds. Any other status, or a 200 with
    no replies, ends it (an error)."""
    start = time.perf_counter()
    deadline = time.monotonic() + within_s
    body: dict[str, Any] = {"sender": sender, "message": message, "message_id": message_id}
    if metadata:
        body["metadata"] = dict(metadata)
    retries = 0
    while True:
        retry = False
        try:
            response = await client.post(url, json=body)
            if response.status_code == 200:
                replies = response.json()
                ok = isinstance(replies, list) and bool(replies)
                return Answer(_ms(start), ok, replies if ok else [], retries)
            retry = response.status_code in RETRY_STATUSES
        except (httpx.TransportError, ValueError):
            retry = True
        if not retry or time.monotonic() + pause_s > deadline:
            return Answer(_ms(start), False, [], retries)
        retries += 1
        await asyncio.sleep(pause_s)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


@dataclass
class LoadLog:
    """What a timed load sent and got."""

    samples: list[Sample] = field(default_factory=list)
    answered: dict[str, list[str]] = field(default_factory=dict)  # sender -> message ids answered
    retried: int = 0  # requests that needed more than one try
    elapsed_s: float = 0.0

    @property
    def senders(self) -> list[str]:
        return list(self.answered)


async def _customer(
    client: httpx.AsyncClient,
    url: str,
    user: int,
    until: float,
    think_s: float,
    log: LoadLog,
    session_for: SessionFor,
    tag: str,
) -> None:
    rng = random.Random(user)
    visit = 0
    await asyncio.sleep(rng.uniform(0, think_s or 0.1))  # customers do not all arrive at once
    while time.monotonic() < until:
        visit += 1
        ref, conversation = visit_of(user, visit)
        sender, metadata = session_for(ref)
        answered = log.answered.setdefault(sender, [])
        for number, (message, kind) in enumerate(conversation.messages()):
            if time.monotonic() >= until:
                return
            message_id = f"{tag}-{user}-{visit}-{number}"
            answer = await send_until_answered(client, url, sender, message, message_id, metadata)
            conversation.read(answer.replies)
            if answer.ok:
                answered.append(message_id)
            if answer.retries:
                log.retried += 1
            text = " ".join(str(r.get("text", "")) for r in answer.replies)
            log.samples.append(Sample(kind, answer.ms, answer.ok, any(f in text for f in FALLBACKS)))
            pause = rng.uniform(0.5, 1.5) * think_s  # the customer reads and types
            await asyncio.sleep(min(pause, max(0.0, until - time.monotonic())))  # no pause past the end


async def timed_load(
    url: str,
    users: int,
    seconds: float,
    think_s: float,
    session_for: SessionFor,
    during: Callable[[], Awaitable[None]] | None = None,
) -> LoadLog:
    """``users`` customers chatting for ``seconds`` (messages under way then are finished), after
    one unmeasured turn that warms the path; ``during`` runs beside them (the faults)."""
    log = LoadLog()
    tag = uuid.uuid4().hex[:8]  # message ids never repeat across runs
    limits = httpx.Limits(max_connections=users + 1, max_keepalive_connections=users + 1)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        sender, metadata = session_for("42")
        warm = await send_until_answered(client, url, sender, "recommend a comedy", f"{tag}-warm", metadata)
        if not warm.ok:
            raise RuntimeError("the first recommendation turn was not answered")
        start = time.monotonic()
        until = start + seconds
        jobs = [_customer(client, url, user, until, think_s, log, session_for, tag) for user in range(users)]
        await asyncio.gather(*jobs, *([during()] if during else []))
        log.elapsed_s = time.monotonic() - start
    return log


# --- what the tracker store holds ---------------------------------------------------------------
def stored_message_ids(database_url: str, senders: Iterable[str]) -> dict[str, list[str]]:
    """The ``message_id`` of every user event of each conversation in Rasa's ``events`` table."""
    from sqlalchemy import bindparam, text

    from smartmkt.store.db import make_engine

    wanted = list(senders)
    stored: dict[str, list[str]] = {sender: [] for sender in wanted}
    if not wanted:
        return stored
    query = text(
        "SELECT sender_id, data FROM events WHERE type_name = 'user' AND sender_id IN :senders ORDER BY id"
    ).bindparams(bindparam("senders", expanding=True))
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            for chunk in range(0, len(wanted), 500):
                for sender, data in conn.execute(query, {"senders": wanted[chunk : chunk + 500]}):
                    stored[sender].append(str(json.loads(data).get("message_id")))
    finally:
        engine.dispose()
    return stored


def count_lost(answered: Mapping[str, Sequence[str]], stored: Mapping[str, Sequence[str]]) -> tuple[int, int]:
    """(lost, duplicates): messages answered that their conversation does not hold, and the
    extra copies of message ids a conversation holds more than once."""
    lost = duplicates = 0
    for sender, ids in answered.items():
        held = Counter(stored.get(sender, ()))
        lost += sum(1 for message_id in set(ids) if not held[message_id])
    for ids in stored.values():
        duplicates += sum(count - 1 for count in Counter(ids).values() if count > 1)
    return lost, duplicates


# --- figures ------------------------------------------------------------------------------------
Table = Mapping[int, tuple[int, int, int, int]]  # pid -> (parent pid, group, resident kB, CPU ticks)


def rss_by_process(leaders: Mapping[str, int]) -> dict[str, float]:
    """Resident MB of each process with its workers, by name: its process group and whatever
    descends from it in a group of its own (PostgreSQL's backends each lead one)."""
    table = _process_table()
    return {name: tree_rss_mb(table, pid) for name, pid in leaders.items() if pid > 0}


def cpu_by_process(leaders: Mapping[str, int]) -> dict[str, float]:
    """CPU seconds each process with its workers has used so far (user + system, with the
    children it has waited for), by name; the load generator itself as ``bench``."""
    table = _process_table()
    used = {name: tree_cpu_s(table, pid) for name, pid in leaders.items() if pid > 0}
    mine = os.times()
    return used | {"bench": round(mine.user + mine.system, 2)}


def cpu_ms_per_turn(
    before: Mapping[str, float], after: Mapping[str, float], turns: int
) -> dict[str, float | None]:
    """What each process spent per turn between two readings of cpu_by_process; None for a
    process that was not there both times or started again in between (its counter restarted)."""
    per_turn: dict[str, float | None] = {}
    for name, end in after.items():
        spent = end - before[name] if name in before else -1.0
        per_turn[name] = round(spent * 1000 / turns, 2) if turns and spent >= 0 else None
    return per_turn


def _tree(table: Table, leader: int) -> set[int]:
    """``leader``'s process group and everything descending from it."""
    members = {pid for pid, (_, group, _, _) in table.items() if group == leader}
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    pending = list(members)
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in members:
                members.add(child)
                pending.append(child)
    return members


def tree_rss_mb(table: Table, leader: int) -> float:
    """MB of the processes of ``leader``'s group and their descendants in ``table``."""
    return round(sum(table[pid][2] for pid in _tree(table, leader)) / 1024, 1)


def tree_cpu_s(table: Table, leader: int) -> float:
    """CPU seconds of the processes of ``leader``'s group and their descendants in ``table``."""
    return round(sum(table[pid][3] for pid in _tree(table, leader)) / os.sysconf("SC_CLK_TCK"), 2)


def _process_table() -> dict[int, tuple[int, int, int, int]]:
    """pid -> (parent pid, process group, resident kB, CPU ticks) of every process (/proc; the
    ticks are utime + stime + cutime + cstime)."""
    table: dict[int, tuple[int, int, int, int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError):
            continue  # ended meanwhile
        rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
        ticks = sum(int(value) for value in fields[11:15])
        table[int(stat.parent.name)] = (int(fields[1]), int(fields[2]), rss, ticks)
    return table


def section(
    log: LoadLog,
    rss_mb: Mapping[str, float],
    lost: int,
    duplicates: int,
    users: int,
    cpu_ms: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """One run's figures: the issue's keys first, then what explains them."""
    samples = log.samples
    all_ms = [s.ms for s in samples]
    return {
        "errors": sum(1 for s in samples if not s.ok),
        "requests": len(samples),
        "p50_ms": round(statistics.median(all_ms), 1) if all_ms else None,
        "p95_ms": round(percentile(all_ms, 95), 1) if all_ms else None,
        "turns_per_s": round(len(samples) / log.elapsed_s, 2) if log.elapsed_s else None,
        "rss_mb": dict(rss_mb),
        "rss_total_mb": round(sum(rss_mb.values()), 1),
        "cpu_ms_per_turn": dict(cpu_ms or {}),
        "p99_ms": round(percentile(all_ms, 99), 1) if all_ms else None,
        "max_ms": round(max(all_ms), 1) if all_ms else None,
        "retried_requests": log.retried,
        "fallback_replies": sum(1 for s in samples if s.fallback),
        "lost_messages": lost,
        "duplicate_messages": duplicates,
        "conversations": len(log.answered),
        "users": users,
        "elapsed_s": round(log.elapsed_s, 1),
    }


def report(
    single: dict[str, Any], cluster: dict[str, Any], faults: bool, killed: Sequence[str] = ()
) -> dict[str, Any]:
    """The one JSON object the command prints."""
    body: dict[str, Any] = {
        "single": single,
        "cluster": cluster,
        "lost_messages": int(single["lost_messages"]) + int(cluster["lost_messages"]),
        "faults": faults,
        "notes": NOTES.format(cores=os.cpu_count() or "?"),
    }
    if faults:
        body["faults_killed"] = list(killed)
    return body


# --- the two runs -------------------------------------------------------------------------------
def _measure(
    url: str,
    database_url: str,
    leaders: Callable[[], Mapping[str, int]],
    users: int,
    seconds: float,
    think_s: float,
    session_for: SessionFor,
    during: Callable[[], Awaitable[None]] | None = None,
) -> dict[str, Any]:
    at_start = leaders()
    cpu_before = cpu_by_process(at_start)
    log = asyncio.run(timed_load(url, users, seconds, think_s, session_for, during))
    at_end = leaders()
    cpu_after = cpu_by_process({name: pid for name, pid in at_end.items() if at_start.get(name) == pid})
    rss = rss_by_process(at_end)
    lost, duplicates = count_lost(log.answered, stored_message_ids(database_url, log.senders))
    cpu = cpu_ms_per_turn(cpu_before, cpu_after, len(log.samples))
    return section(log, rss, lost, duplicates, users, cpu | {n: None for n in at_end if n not in cpu})


def cluster_run_dir(base: Settings) -> tuple[Path, Settings]:
    """A run dir the postgres user can reach, and ``base`` with a var dir of its own there (the
    downloaded wheels shared, so loading the demo data downloads nothing)."""
    run_dir = Path(tempfile.mkdtemp(prefix="smartmkt-bench-cluster-", dir="/tmp"))
    os.chmod(run_dir, 0o755)  # PostgreSQL runs as its own user and keeps its data below
    var = run_dir / "var"
    (var / "cache").mkdir(parents=True)
    wheels = base.var_dir / "cache" / "wheels"
    if wheels.is_dir():
        (var / "cache" / "wheels").symlink_to(wheels)
    return run_dir, base.model_copy(update={"var_dir": var})


def run_cluster_chat_bench(
    settings: Settings,
    users: int = 50,
    seconds: float = 300,
    think_ms: int | None = None,
    faults: bool = False,
    replicas: int = 2,
    say: Say = lambda _message: None,
) -> dict[str, Any]:
    """The timed load against a single stack, then against a cluster; the one report."""
    import shutil

    from smartmkt.runtime.cluster import Layout, running_cluster

    think_s = (think_ms if think_ms is not None else 5000) / 1000
    session_for = signed_sessions(settings)

    say("single stack: starting on free ports ...")
    with scratch_stack(settings) as stack:
        say(f"single stack: {users} customers for {seconds:g} s ...")
        single = _measure(
            stack.rest_url,
            stack.settings.resolved_database_url,
            lambda: {name: proc.pid for name, proc in stack.processes.items()},
            users,
            seconds,
            think_s,
            session_for,
        )
    say(f"single stack: {single['requests']} requests, {single['errors']} errors, p95 {single['p95_ms']} ms")

    run_dir, base = cluster_run_dir(settings)
    killed: list[str] = []
    done = False
    try:
        say(f"cluster: starting {replicas} replicas of each service (engines, store, HAProxy) ...")
        with running_cluster(Layout.on_free_ports(run_dir, replicas), base, timeout=900) as cluster:
            cluster_sessions = signed_sessions(cluster.settings)

            async def kill_one_of_each() -> None:
                await asyncio.sleep(seconds / 3)
                for name in VICTIMS:
                    try:
                        os.killpg(cluster.pid(name), signal.SIGKILL)
                    except (ProcessLookupError, KeyError):
                        continue
                    killed.append(name)
                say(f"cluster: killed {', '.join(killed)} (SIGKILL to the process group)")

            def leaders() -> dict[str, int]:
                return {name: int(s.get("pid") or 0) for name, s in cluster.state().services.items()}

            before = {name: cluster.pid(name) for name in VICTIMS}
            with_faults = " with faults" if faults else ""
            say(f"cluster: {users} customers for {seconds:g} s through HAProxy{with_faults} ...")
            clustered = _measure(
                cluster.rest_url,
                cluster.settings.resolved_database_url,
                leaders,
                users,
                seconds,
                think_s,
                cluster_sessions,
                kill_one_of_each if faults else None,
            )
            if faults:
                clustered["restarted"] = [name for name in killed if cluster.pid(name) != before[name]]
        say(
            f"cluster: {clustered['requests']} requests, {clustered['errors']} errors, "
            f"p95 {clustered['p95_ms']} ms"
        )
        done = True
    finally:
        if done:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            say(f"cluster: its run dir (logs) is kept in {run_dir}")
    return report(single, clustered, faults, killed)
