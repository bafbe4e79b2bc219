"""``smartmkt bench chat``: concurrent simulated customers over Rasa's REST channel.

Runs against a scratch copy of the store (so benchmark offers and orders never reach the real
one) and, unless ``rasa_url`` is given, a stack started on free ports.

Two modes:
- ``turns``: each customer sends the fixed 8-message ``SCRIPT`` ``turns`` times over (latency and
  throughput at a given concurrency; no think time by default).
- ``minutes`` (load and soak): each customer holds one realistic conversation after another for a
  warm-up and then ``minutes`` (``Conversation``: greetings, recommendation requests with genres,
  prices, decades and recipients, refinements, price questions about "it" or a title just shown,
  offers answered yes or no, purchases, order history, goodbyes), pausing ``think_ms`` on average
  between messages (reading the reply and typing; 5 s by default in this mode). Only the
  measured period counts; an error is a non-200 answer, a transport error or an empty reply. The
  resident memory of every product process (with its workers) is read at the end of the warm-up
  and at the end: ``rss_growth_pct`` is the largest growth among them.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from smartmkt.runtime.stack import RunningStack, running_stack, with_free_ports
from smartmkt.settings import Settings
from smartmkt.store.migrate import upgrade

SCRIPT = (
    ("hi there", "chat"),
    ("recommend me a comedy under $10", "recommend"),
    ("nothing with horror please", "recommend"),
    ("how much is it?", "chat"),
    ("any deals for me?", "chat"),
    ("something from the 90s for my dad", "recommend"),
    ("what did I buy before?", "chat"),
    ("thanks, bye", "chat"),
)

GREETINGS = ("hi", "hello there", "hey!", "good evening", "hi, I'm looking for a movie")
GENRES = (
    "comedy",
    "drama",
    "sci-fi",
    "thriller",
    "romance",
    "action",
    "horror",
    "western",
    "animation",
    "documentary",
    "crime",
    "musical",
    "war movie",
    "mystery",
)
PRICES = ("under $10", "under 15 dollars", "for less than $8", "under $20", "cheap")
ASKS = (
    "recommend me a {genre} {price}",
    "any good {genre} movies?",
    "a {genre} for my kids {price}",
    "I'd like a {genre}",
    "something {price}",
    "something from the 90s for my dad",
    "what should I watch tonight?",
    "recommend me something",
    "a {genre} from the 80s",
)
REFINES = ("nothing with horror please", "something cheaper", "under $5 please", "no westerns", "older ones")
GOODBYES = ("thanks, bye", "thank you!", "bye", "that's all, thanks")
FALLBACKS = ("lost track", "say it another way", "isn't answering right now")


@dataclass
class Sample:
    kind: str
    ms: float
    ok: bool
    fallback: bool = False


@dataclass
class Conversation:
    """One customer's visit: what they say next depends on what the bot answered."""

    rng: random.Random
    shown: list[str] = field(default_factory=list)  # titles in the last recommendation
    offer: bool = False  # the last answer made an offer

    def messages(self) -> Iterator[tuple[str, str]]:
        rng = self.rng
        yield rng.choice(GREETINGS), "greet"
        ask = rng.choice(ASKS).format(genre=rng.choice(GENRES), price=rng.choice(PRICES))
        ask = ask.replace(" a a", " an a")  # "an action", "an animation"
        yield ask, "recommend"
        if ask in ("what should I watch tonight?", "recommend me something"):  # asked for a genre
            yield rng.choice(GENRES) + (f" {rng.choice(PRICES)}" if rng.random() < 0.5 else ""), "recommend"
        if rng.random() < 0.5:
            yield rng.choice(REFINES), "recommend"
        if self.shown and rng.random() < 0.6:
            title = rng.choice(self.shown)
            yield (f"how much is {title}?" if rng.random() < 0.5 else "how much is it?"), "price"
        if self.offer:
            yield (("yes", "purchase") if rng.random() < 0.4 else (rng.choice(("no", "no thanks")), "offer"))
        if rng.random() < 0.3:
            yield "any deals for me?", "offer"
            if self.offer:
                yield (("yes please", "purchase") if rng.random() < 0.3 else ("no", "offer"))
        if self.shown and rng.random() < 0.2:
            yield f"buy {rng.choice(self.shown)}", "purchase"
        if rng.random() < 0.3:
            yield "what did I order?", "history"
        yield rng.choice(GOODBYES), "bye"

    def read(self, replies: list[dict[str, Any]]) -> None:
        self.offer = False
        for reply in replies:
            custom = reply.get("custom") or {}
            if custom.get("type") == "recommendations":
                self.shown = [p["title"] for p in custom.get("products", [])]
                self.offer = bool(custom.get("offer"))
            elif custom.get("type") == "offers":
                self.offer = True


def percentile(values: list[float], pct: float) -> float:
    """The nearest-rank ``pct`` percentile of ``values`` (an observed value, never an
    interpolated one; 0.0 for no values). Every latency bench reports with it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def _send(
    client: httpx.AsyncClient, url: str, sender: str, message: str, metadata: dict[str, Any]
) -> tuple[float, bool, list[dict[str, Any]]]:
    start = time.perf_counter()
    replies: list[dict[str, Any]] = []
    try:
        body: dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            body["metadata"] = metadata
        response = await client.post(url, json=body)
        if response.status_code == 200:
            replies = response.json()
        ok = response.status_code == 200 and bool(replies)
    except (httpx.HTTPError, ValueError):
        ok = False
    return (time.perf_counter() - start) * 1000, ok, replies


# who a customer is on the wire: (sender id, message metadata) for a customer reference
SessionFor = Callable[[str], tuple[str, dict[str, Any]]]


def signed_sessions(settings: Settings) -> SessionFor:
    """Each customer as the shop's site sends them: a chat session bound to them and their
    signed token in every message (smartmkt.security), a new session for each visit."""
    from smartmkt.security.secrets import signed_in

    def session_for(ref: str) -> tuple[str, dict[str, Any]]:
        session, token = signed_in(settings, ref, ttl_s=24 * 3600)
        return session, {"customer_token": token}

    return session_for


async def _customer(
    client: httpx.AsyncClient,
    url: str,
    sender: str,
    turns: int,
    think_s: float,
    samples: list[Sample],
    metadata: dict[str, Any],
) -> None:
    rng = random.Random(sender)
    for turn in range(turns):
        if think_s:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)  # the customer reads and types
        message, kind = SCRIPT[turn % len(SCRIPT)]
        ms, ok, _ = await _send(client, url, sender, message, metadata)
        samples.append(Sample(kind, ms, ok))


def _figures(samples: list[Sample], elapsed: float) -> dict[str, Any]:
    all_ms = [s.ms for s in samples]
    rec_ms = [s.ms for s in samples if s.kind == "recommend"]
    return {
        "turns": len(samples),
        "errors": sum(1 for s in samples if not s.ok),
        "p50_ms": round(statistics.median(all_ms), 1) if all_ms else None,
        "p95_ms": round(percentile(all_ms, 95), 1),
        "p99_ms": round(percentile(all_ms, 99), 1),
        "max_ms": round(max(all_ms), 1) if all_ms else None,
        "recommend_p50_ms": round(statistics.median(rec_ms), 1) if rec_ms else None,
        "recommend_p95_ms": round(percentile(rec_ms, 95), 1) if rec_ms else None,
        "turns_per_s": round(len(samples) / elapsed, 2) if elapsed else None,
        "elapsed_s": round(elapsed, 2),
    }


@dataclass
class FirstTurn:
    """The first recommendation turn a stack serves: on a stack just started, what the first
    customer after `smartmkt run` waits (``first_turn_ms``; the processes warm their models
    before they report healthy, so it should be close to a warm turn)."""

    ms: float = 0.0
    ok: bool = False


@asynccontextmanager
async def _warm_client(
    url: str, users: int, session_for: SessionFor, first: FirstTurn | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a connection per customer, after one turn outside the figures (a demo
    customer asking for a recommendation), timed into ``first``."""
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        sender, metadata = session_for("42")
        ms, ok, replies = await _send(client, url, sender, "recommend a comedy", metadata)
        if first is not None:
            first.ms, first.ok = ms, ok and any("custom" in r for r in replies)
        yield client


async def _drive(url: str, users: int, turns: int, think_s: float, session_for: SessionFor) -> dict[str, Any]:
    samples: list[Sample] = []
    first = FirstTurn()
    async with _warm_client(url, users, session_for, first) as client:
        start = time.perf_counter()
        refs = [str(1 + (i * 37) % 943) if i % 2 == 0 else f"bench-new-{i}" for i in range(users)]
        sessions = [session_for(ref) for ref in refs]
        await asyncio.gather(
            *(_customer(client, url, s, turns, think_s, samples, meta) for s, meta in sessions)
        )
        elapsed = time.perf_counter() - start
    if not first.ok:
        raise RuntimeError("the first recommendation turn got no recommendations")
    return {
        "users": users,
        "think_ms": round(think_s * 1000),
        "first_turn_ms": round(first.ms, 1),
        **_figures(samples, elapsed),
    }


# --- load and soak -------------------------------------------------------------------------------
def group_usage(leader: int) -> tuple[float, float]:
    """(resident memory in MB, CPU seconds used so far) of a process and every process in its
    group (a server and its workers)."""
    rss_kb, ticks = 0, 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != leader:  # the process group id
                continue
            status = (stat.parent / "status").read_text()
        except (OSError, IndexError, ValueError):
            continue  # ended meanwhile
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss_kb += int(line.split()[1])
    return round(rss_kb / 1024, 1), ticks / os.sysconf("SC_CLK_TCK")


def visit_of(user: int, visit: int) -> tuple[str, Conversation]:
    """Who simulated customer ``user`` is on their ``visit``-th visit, and what they say: every
    other visit a demo customer with a purchase history, else a new one (the same for every load
    bench, so their figures compare)."""
    ref = str(1 + (user * 131 + visit * 17) % 943) if visit % 2 else f"bench-{user}-{visit}"
    return ref, Conversation(random.Random(f"{user}-{visit}"))


async def _visitor(
    client: httpx.AsyncClient,
    url: str,
    user: int,
    until: float,
    think_s: float,
    samples: list[Sample],
    measure_from: list[float],
    session_for: SessionFor,
) -> None:
    rng = random.Random(user)
    visit = 0
    await asyncio.sleep(rng.uniform(0, think_s or 0.1))  # customers do not all arrive at once
    while time.monotonic() < until:
        visit += 1
        ref, conversation = visit_of(user, visit)
        sender, metadata = session_for(ref)
        for message, kind in conversation.messages():
            if time.monotonic() >= until:
                return
            sent_at = time.monotonic()
            ms, ok, replies = await _send(client, url, sender, message, metadata)
            conversation.read(replies)
            text = " ".join(str(r.get("text", "")) for r in replies)
            if sent_at >= measure_from[0]:
                samples.append(Sample(kind, ms, ok, any(f in text for f in FALLBACKS)))
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)


async def _soak(
    url: str,
    users: int,
    minutes: float,
    think_s: float,
    warmup_s: float,
    processes: dict[str, int],
    session_for: SessionFor,
) -> dict[str, Any]:
    samples: list[Sample] = []
    async with _warm_client(url, users, session_for) as client:
        now = time.monotonic()
        measure_from = [now + warmup_s]
        until = measure_from[0] + minutes * 60
        usage: dict[str, list[tuple[float, float]]] = {}

        async def snapshot_after_warmup() -> None:
            await asyncio.sleep(max(0.0, measure_from[0] - time.monotonic()))
            for name, pid in processes.items():
                usage[name] = [group_usage(pid)]

        await asyncio.gather(
            snapshot_after_warmup(),
            *(
                _visitor(client, url, user, until, think_s, samples, measure_from, session_for)
                for user in range(users)
            ),
        )
        for name, pid in processes.items():
            usage[name].append(group_usage(pid))
        elapsed = time.monotonic() - measure_from[0]
    kinds = sorted({s.kind for s in samples})
    rss = {name: (start[0], end[0]) for name, (start, end) in usage.items()}
    growth = {name: round((end - start) / start * 100, 2) for name, (start, end) in rss.items() if start}
    cpu = {name: end[1] - start[1] for name, (start, end) in usage.items()}
    return {
        "users": users,
        "minutes": minutes,
        "warmup_s": warmup_s,
        "think_ms": round(think_s * 1000),
        **_figures(samples, elapsed),
        "fallback_replies": sum(1 for s in samples if s.fallback),
        "by_kind": {
            kind: {
                "turns": len(ms := [s.ms for s in samples if s.kind == kind]),
                "p95_ms": round(percentile(ms, 95), 1),
            }
            for kind in kinds
        },
        # CPU the product used while measured: per process, as a share of one core and per turn
        "cpu_cores_by_process": {name: round(c / elapsed, 2) for name, c in cpu.items()},
        "cpu_ms_per_turn_by_process": {name: round(c * 1000 / len(samples), 1) for name, c in cpu.items()}
        if samples
        else {},
        "rss_mb": {name: {"after_warmup": start, "end": end} for name, (start, end) in rss.items()},
        "rss_growth_pct_by_process": growth,
        "rss_growth_pct": max(growth.values()) if growth else None,
    }


def run_chat_bench(
    settings: Settings,
    users: int = 10,
    turns: int = 8,
    think_ms: int | None = None,
    rasa_url: str | None = None,
    minutes: float | None = None,
    warmup_s: float = 30.0,
) -> dict[str, Any]:
    """Figures for ``users`` customers: ``turns`` turns each (think time 0 by default), or
    conversations for ``minutes`` after ``warmup_s`` (think time 5 s by default)."""
    think_s = (think_ms if think_ms is not None else (5000 if minutes else 0)) / 1000

    session_for = signed_sessions(settings)

    def drive(url: str, processes: dict[str, int]) -> dict[str, Any]:
        if minutes:
            return asyncio.run(_soak(url, users, minutes, think_s, warmup_s, processes, session_for))
        return asyncio.run(_drive(url, users, turns, think_s, session_for))

    if rasa_url:
        return drive(f"{rasa_url.rstrip('/')}/webhooks/rest/webhook", {})  # no process to measure
    with scratch_stack(settings) as stack:
        return drive(stack.rest_url, {name: proc.pid for name, proc in stack.processes.items()})


@contextmanager
def scratch_stack(settings: Settings) -> Iterator[RunningStack]:
    """The product on free ports against a scratch copy of the store, so benchmark offers and
    orders never reach the real one."""
    with tempfile.TemporaryDirectory(prefix="smartmkt-bench-") as tmp:
        scratch = Path(tmp)
        db = settings.var_dir / "smartmkt.db"
        if not settings.database_url and db.exists():
            shutil.copy(db, scratch / "smartmkt.db")
            # Rasa's tracker store follows the store into the scratch database
            bench_settings = settings.model_copy(
                update={"database_url": f"sqlite:///{scratch / 'smartmkt.db'}"}
            )
            upgrade(bench_settings.resolved_database_url)  # a copy of an older store: as every command
        else:
            bench_settings = settings
        with running_stack(with_free_ports(bench_settings), scratch / "logs") as stack:
            yield stack
