"""``smartmkt bench chat``: concurrent simulated customers over Rasa's REST channel.

Runs against a scratch copy of the store (so benchmark offers and orders never reach the real
one) and, unless ``rasa_url`` is given, a stack started on free ports.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from smartmkt.settings import Settings
from smartmkt.stack import RunningStack, running_stack, with_free_ports

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


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


async def _customer(
    client: httpx.AsyncClient,
    url: str,
    sender: str,
    turns: int,
    think_s: float,
    samples: list[tuple[str, float, bool]],
) -> None:
    rng = random.Random(sender)
    for turn in range(turns):
        if think_s:
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)  # the customer reads and types
        message, kind = SCRIPT[turn % len(SCRIPT)]
        start = time.perf_counter()
        ok = False
        try:
            response = await client.post(url, json={"sender": sender, "message": message})
            ok = response.status_code == 200 and bool(response.json())
        except (httpx.HTTPError, ValueError):
            ok = False
        samples.append((kind, (time.perf_counter() - start) * 1000, ok))


async def _drive(url: str, users: int, turns: int, think_s: float = 0.0) -> dict[str, Any]:
    samples: list[tuple[str, float, bool]] = []
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        # one warm-up turn so model loading is not measured
        await client.post(url, json={"sender": "bench-warmup", "message": "recommend a comedy"})
        start = time.perf_counter()
        senders = [str(1 + (i * 37) % 943) if i % 2 == 0 else f"bench-new-{i}" for i in range(users)]
        await asyncio.gather(*(_customer(client, url, s, turns, think_s, samples) for s in senders))
        elapsed = time.perf_counter() - start
    all_ms = [ms for _, ms, _ in samples]
    rec_ms = [ms for kind, ms, _ in samples if kind == "recommend"]
    return {
        "users": users,
        "think_ms": round(think_s * 1000),
        "turns": len(samples),
        "errors": sum(1 for *_, ok in samples if not ok),
        "p50_ms": round(statistics.median(all_ms), 1),
        "p95_ms": round(_percentile(all_ms, 95), 1),
        "recommend_p50_ms": round(statistics.median(rec_ms), 1) if rec_ms else None,
        "recommend_p95_ms": round(_percentile(rec_ms, 95), 1) if rec_ms else None,
        "turns_per_s": round(len(samples) / elapsed, 2),
        "elapsed_s": round(elapsed, 2),
    }


def run_chat_bench(
    settings: Settings,
    users: int = 10,
    turns: int = 8,
    think_ms: int = 0,
    rasa_url: str | None = None,
) -> dict[str, Any]:
    """Figures for ``users`` customers of ``turns`` turns each, ``think_ms`` apart on average."""
    think_s = think_ms / 1000
    if rasa_url:
        return asyncio.run(_drive(f"{rasa_url.rstrip('/')}/webhooks/rest/webhook", users, turns, think_s))
    with scratch_stack(settings) as stack:
        return asyncio.run(_drive(stack.rest_url, users, turns, think_s))


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
        else:
            bench_settings = settings
        with running_stack(with_free_ports(bench_settings), scratch / "logs") as stack:
            yield stack
