"""``smartmkt bench console``: the marketer console with 100,000 conversations in the store.

1. Seed: a scratch SQLite store (migrated; a synthetic catalog, one customer per conversation)
   and Rasa's ``events`` table filled as Rasa's SQL tracker store fills it (smartmkt.bench.
   rasa_events): conversations spread over 90 days, interleaved in time order, 1-7 customer
   messages each; 15% spoken, 5% mixing voice and text; greetings, recommendations with genre,
   price and recipient entities, offers (made on ~40% of recommendations, then accepted,
   declined or left open), prices, order history, goodbyes, out-of-scope and unsure messages
   (NLU fallback, low confidence). Bulk-inserted through the DB-API in time order.
2. Index: ``smartmkt.console.index.rebuild`` (what ``smartmkt console reindex`` runs).
3. Serve: the real app alone (the console needs no Rasa), started by smartmkt.runtime.stack on
   a free port, on that store; a console user logs in over HTTP and every request carries the
   session cookie.
4. Measure, one request at a time: the list's first page, deeper keyset pages (following
   next_cursor, and one page 50,000 rows down), every filter alone, filters combined, text
   search (common, rare and several words, with and without filters), a filtered list paged
   deep; transcripts of random conversations; the dashboard. p50/p95 per case and pooled.
"""

from __future__ import annotations

import heapq
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, text

from smartmkt.bench import rasa_events as rasa
from smartmkt.bench.chat import percentile
from smartmkt.console import index
from smartmkt.console.conversations import encode_cursor
from smartmkt.console.index import CONVERSATIONS
from smartmkt.console.users import create_user
from smartmkt.runtime.stack import running_stack, with_free_ports
from smartmkt.settings import Settings
from smartmkt.store.clock import utcnow
from smartmkt.store.db import make_engine
from smartmkt.store.migrate import upgrade
from smartmkt.store.models import Customer, Offer, Product

TARGET_P95_MS = 300.0
DAYS = 90
PRODUCTS = 2_000
PASSWORD = "bench password 123"
RARE_WORD = "zanzibar"  # in about 1 conversation in 1,000
GENRES = ("comedy", "drama", "horror", "western", "thriller", "romance", "animation", "documentary", "sci-fi")
RECIPIENTS = ("my kids", "my dad", "my wife", "a friend", "my grandma")
WORDS = (
    "summer",
    "night",
    "river",
    "city",
    "love",
    "war",
    "star",
    "ghost",
    "road",
    "island",
    "king",
    "dream",
)
Progress = Callable[[str, int, int | None], None]
# A customer turn answered by one action and one reply: (share among the "other" turns, text,
# intent, confidence range, action, reply); {title} and {words} are filled in per turn.
Turn = tuple[float, str, str, tuple[float, float], str, str]
OTHER_TURNS: tuple[Turn, ...] = (
    (0.25, "how much is {title}?", "ask_price", (0.7, 0.99), "action_price", "{title} is $9.99."),
    (
        0.20,
        "any deals for me?",
        "ask_offers",
        (0.8, 0.99),
        "action_show_offers",
        "No offers for you right now.",
    ),
    (
        0.15,
        "what did I order before?",
        "ask_order_history",
        (0.8, 0.99),
        "action_order_history",
        "Nothing yet.",
    ),
    (
        0.15,
        "what's the weather in paris?",
        "out_of_scope",
        (0.6, 0.95),
        "utter_out_of_scope",
        "I can't help there.",
    ),
    (0.13, "{words}", "nlu_fallback", (0.2, 0.54), "utter_please_rephrase", "Could you say it another way?"),
    (
        0.09,
        "talk to a human",
        "human_handoff",
        (0.8, 0.99),
        "action_handoff",
        "You can reach the shop's team at help@shop.example.",
    ),
    (0.03, "delete my data", "delete_my_data", (0.8, 0.99), "erasure_form", "This cannot be undone. Sure?"),
)
GREET: Turn = (1.0, "hi there", "greet", (0.85, 0.99), "action_greet", "Hello! Want a recommendation?")
ACCEPT: Turn = (1.0, "yes please", "affirm", (0.8, 0.99), "action_purchase", "Done! Enjoy the movie!")
DECLINE: Turn = (1.0, "no thanks", "deny", (0.8, 0.99), "action_decline_offer", "No problem.")
GOODBYE: Turn = (1.0, "thanks, bye", "goodbye", (0.85, 0.99), "utter_goodbye", "Bye! Come back soon.")


def _catalog(rng: random.Random) -> list[dict[str, Any]]:
    products = []
    for i in range(1, PRODUCTS + 1):
        title = " ".join(rng.choice(WORDS).title() for _ in range(rng.randint(1, 3)))
        products.append(
            {
                "id": i,
                "external_ref": f"p{i}",
                "title": f"{title} {i}",
                "year": rng.randint(1950, 2024),
                "genres": "|".join(sorted({rng.choice(GENRES).title(), rng.choice(GENRES).title()})),
                "price_cents": rng.randint(299, 2499),
                "currency": "USD",
                "active": True,
            }
        )
    return products


class _Seeder:
    """Writes conversations' events in time order, and the offers they made."""

    def __init__(self, rng: random.Random, products: list[dict[str, Any]], now: float) -> None:
        self.rng = rng
        self.products = products
        self.now = now
        self.offers: list[dict[str, Any]] = []

    def _offer(self, customer_id: int, product: dict[str, Any], ts: float, channel: str) -> dict[str, Any]:
        pct = self.rng.choice((10, 10, 15, 20))
        created = datetime.fromtimestamp(ts, UTC)
        roll = self.rng.random()
        status = "accepted" if roll < 0.15 else "declined" if roll < 0.45 else "shown"
        offer = {
            "id": len(self.offers) + 1,
            "customer_id": customer_id,
            "product_id": product["id"],
            "percent_off": pct,
            "reason": "bench",
            "rule": "nudge",
            "scores": {},
            "channel": channel,
            "created_at": created,
            "expires_at": created + timedelta(days=7),
            "status": status,
            "decided_at": created + timedelta(minutes=1) if status != "shown" else None,
        }
        self.offers.append(offer)
        return offer

    def _simple(self, conv: rasa.Conversation, turn: Turn, channel: str) -> None:
        rng = self.rng
        _share, text, intent, (low, high), action, reply = turn
        title = rng.choice(self.products)["title"] if "{title}" in text + reply else ""
        words = " ".join(rng.choice(WORDS) for _ in range(3))
        conv.turn(
            text.format(title=title, words=words),
            intent,
            rng.uniform(low, high),
            channel=channel,
            actions=[action],
            replies=[(reply.format(title=title), {"type": "order"} if action == "action_purchase" else None)],
            pause=rng.uniform(3, 40),
        )

    def conversation(self, n: int, start: float) -> rasa.Conversation:
        rng = self.rng
        conv = rasa.Conversation(f"c{n:06d}", start)
        roll = rng.random()
        voice = "all" if roll < 0.15 else "some" if roll < 0.20 else "none"

        def channel() -> str:
            return "voice" if voice == "all" or (voice == "some" and rng.random() < 0.5) else "text"

        def pause() -> float:
            return rng.uniform(3, 40)

        if rng.random() < 0.4:
            self._simple(conv, GREET, channel())
        offer: dict[str, Any] | None = None
        for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3))):
            genre, recipient = rng.choice(GENRES), rng.choice(RECIPIENTS)
            extra = f" about {RARE_WORD}" if rng.random() < 0.001 else ""
            ask = f"a {genre} for {recipient} under ${rng.randint(5, 25)}{extra}"
            entities = [
                {"entity": "category", "value": genre, "start": 2, "end": 2 + len(genre)},
                {
                    "entity": "recipient",
                    "value": recipient,
                    "start": 7 + len(genre),
                    "end": 7 + len(genre) + len(recipient),
                },
            ]
            picks = rng.sample(self.products, 5)
            ch = channel()
            offer = self._offer(n, picks[0], conv.ts, ch) if rng.random() < 0.4 else None
            payload = rasa.recommendations(
                [
                    {
                        "id": p["id"],
                        "title": p["title"],
                        "year": p["year"],
                        "genres": p["genres"].split("|"),
                        "price": p["price_cents"] / 100,
                        "currency": "USD",
                    }
                    for p in picks
                ],
                None
                if offer is None
                else {
                    "id": offer["id"],
                    "product_id": offer["product_id"],
                    "percent_off": offer["percent_off"],
                    "price": picks[0]["price_cents"] / 100,
                    "offer_price": round(picks[0]["price_cents"] * (100 - offer["percent_off"]) / 100) / 100,
                    "expires_at": offer["expires_at"].isoformat(timespec="minutes"),
                    "reason": "bench",
                },
            )
            titles = "\n".join(f"{i}. {p['title']}" for i, p in enumerate(picks, 1))
            conv.turn(
                ask,
                "ask_recommendation",
                rng.uniform(0.6, 0.99),
                entities,
                ch,
                ["recommendation_form", "action_recommend"],
                [(f"Here are my picks for you:\n{titles}", payload)],
                pause(),
            )
            if offer and offer["status"] in ("accepted", "declined"):
                self._simple(conv, ACCEPT if offer["status"] == "accepted" else DECLINE, channel())
        weights = [t[0] for t in OTHER_TURNS]
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            self._simple(conv, rng.choices(OTHER_TURNS, weights)[0], channel())
        self._simple(conv, GOODBYE, channel())
        return conv

    def rows(self, conversations: int) -> Iterator[tuple[Any, ...]]:
        """Every conversation's events, in time order across conversations (ids follow time, as
        in Rasa's table); sender numbers are shuffled so they say nothing about time."""
        starts = sorted(self.now - self.rng.random() * DAYS * 86_400 for _ in range(conversations))
        numbers = list(range(1, conversations + 1))
        self.rng.shuffle(numbers)
        pending: list[tuple[float, int, tuple[Any, ...]]] = []
        seq = 0
        for start, n in zip(starts, numbers, strict=True):
            while pending and pending[0][0] < start:  # nothing later can come before these
                yield heapq.heappop(pending)[2]
            for row in self.conversation(n, start).rows:
                seq += 1
                columns = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")
                heapq.heappush(pending, (row["timestamp"], seq, tuple(row[c] for c in columns)))
        while pending:
            yield heapq.heappop(pending)[2]


def seed(engine: Engine, conversations: int, progress: Progress, seed: int = 7) -> dict[str, Any]:
    """Catalog, customers, offers and Rasa events for ``conversations`` conversations."""
    rng = random.Random(seed)
    products = _catalog(rng)
    now = time.time()
    created = datetime.fromtimestamp(now - DAYS * 86_400, UTC)
    with engine.begin() as conn:
        conn.execute(insert(Product), products)
        conn.execute(
            insert(Customer),
            [
                {"id": n, "external_ref": f"c{n:06d}", "created_at": created, "source": "chat"}
                for n in range(1, conversations + 1)
            ],
        )
        rasa.write(conn, [])
    seeder = _Seeder(rng, products, now)
    raw = engine.raw_connection()
    events = 0
    try:
        cursor = raw.cursor()
        cursor.execute("PRAGMA synchronous=OFF")  # a scratch store: no need to survive a power cut
        batch: list[tuple[Any, ...]] = []
        sql = (
            "INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data) "
            "VALUES (?, ?, ?, ?, ?, ?)"
        )
        for row in seeder.rows(conversations):
            batch.append(row)
            if len(batch) == 50_000:
                cursor.executemany(sql, batch)
                events += len(batch)
                batch.clear()
                progress("seed events", events, None)
        cursor.executemany(sql, batch)
        events += len(batch)
        progress("seed events", events, events)
        raw.commit()
    finally:
        raw.close()
    with engine.begin() as conn:
        conn.execute(insert(Offer), seeder.offers)
    return {"events": events, "offers": len(seeder.offers)}


def _figures(samples: list[float]) -> dict[str, Any]:
    return {
        "requests": len(samples),
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(percentile(samples, 95), 1),
        "max_ms": round(max(samples), 1),
    }


def _timed(client: httpx.Client, path: str, params: dict[str, Any] | None = None) -> tuple[float, Any]:
    started = time.perf_counter()
    r = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if r.status_code != 200:
        raise RuntimeError(f"GET {path} {params}: {r.status_code} {r.text[:200]}")
    return elapsed, r.json()


def measure(client: httpx.Client, engine: Engine, requests: int, rng: random.Random) -> dict[str, Any]:
    """p50/p95 of the list (per case and pooled), transcripts and the dashboard."""
    today = utcnow().date()
    week = {"from": (today - timedelta(days=37)).isoformat(), "to": (today - timedelta(days=31)).isoformat()}
    with engine.connect() as conn:
        senders = list(conn.scalars(select(CONVERSATIONS.c.sender_id)))
        deep = conn.execute(
            select(CONVERSATIONS.c.last_event_at, CONVERSATIONS.c.sender_id)
            .order_by(CONVERSATIONS.c.last_event_at.desc(), CONVERSATIONS.c.sender_id.desc())
            .offset(min(50_000, len(senders) - 1))
            .limit(1)
        ).one()
    cases: dict[str, list[dict[str, Any]]] = {
        "first page": [{}],
        "page 50,000 rows down": [{"cursor": encode_cursor(deep[0], deep[1])}],
        "channel=voice": [{"channel": "voice"}],
        "channel=text": [{"channel": "text"}],
        "intent=ask_price": [{"intent": "ask_price"}],
        "intent=delete_my_data (rare)": [{"intent": "delete_my_data"}],
        "offer=made": [{"offer": "made"}],
        "offer=accepted": [{"offer": "accepted"}],
        "offer=declined": [{"offer": "declined"}],
        "low_confidence=true": [{"low_confidence": "true"}],
        "fallback=true": [{"fallback": "true"}],
        "a week, 5 weeks ago": [week],
        "customer=ID": [{"customer": s} for s in rng.sample(senders, min(len(senders), requests))],
        "voice+offer=made+intent": [{"channel": "voice", "offer": "made", "intent": "ask_recommendation"}],
        "q=<genre>": [{"q": g} for g in GENRES],
        f"q={RARE_WORD} (rare)": [{"q": RARE_WORD}],
        "q=two words": [{"q": f"{g} {r.split()[-1]}"} for g in GENRES for r in RECIPIENTS],
        "q+channel=voice+week": [{"q": g, "channel": "voice", **week} for g in GENRES],
    }
    report: dict[str, Any] = {"cases": {}}
    pooled: list[float] = []
    client.get("/console/api/conversations")  # warm-up: connections, caches
    for name, variants in cases.items():
        samples = [
            _timed(client, "/console/api/conversations", variants[i % len(variants)])[0]
            for i in range(requests)
        ]
        report["cases"][name] = _figures(samples)
        pooled += samples
    for name, params in (
        ("deeper pages (next_cursor)", {}),
        ("offer=declined, deeper pages", {"offer": "declined"}),
    ):
        samples, cursor = [], None
        for _ in range(requests):
            elapsed, body = _timed(
                client, "/console/api/conversations", {**params, **({"cursor": cursor} if cursor else {})}
            )
            samples.append(elapsed)
            cursor = body["next_cursor"] or None
        report["cases"][f"{name}: pages 1-{requests}"] = _figures(samples)
        pooled += samples
    report["list"] = _figures(pooled)
    transcripts = [
        _timed(client, f"/console/api/conversations/{s}")[0]
        for s in rng.sample(senders, min(len(senders), requests * 3))
    ]
    report["transcript"] = _figures(transcripts)
    report["dashboard_30_days"] = _figures(
        [_timed(client, "/console/api/dashboard")[0] for _ in range(max(5, requests // 4))]
    )
    ninety = {"from": (today - timedelta(days=DAYS)).isoformat(), "to": today.isoformat()}
    report["dashboard_90_days"] = _figures(
        [_timed(client, "/console/api/dashboard", ninety)[0] for _ in range(max(5, requests // 4))]
    )
    return report


def run_console_bench(
    settings: Settings,
    conversations: int = 100_000,
    requests: int = 40,
    workdir: Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = progress or (lambda *_args: None)
    with tempfile.TemporaryDirectory(prefix="smartmkt-console-bench-", dir=workdir) as tmp:
        path = Path(tmp) / "console.db"
        url = f"sqlite:///{path}"
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        seeded = seed(engine, conversations, say)
        seed_s = time.perf_counter() - started
        run = index.rebuild(engine, engine, progress=lambda done, total: say("index events", done, total))
        create_user(engine, "bench@shop.example", PASSWORD, "marketer")
        with engine.connect() as conn:
            indexed = conn.scalar(text("SELECT count(*) FROM console_conversations"))
        bench_settings = settings.model_copy(
            update={"database_url": url, "tracker_url": "", "tracker_db": ""}
        )
        with (
            running_stack(with_free_ports(bench_settings), Path(tmp), services=["app"]) as app,
            httpx.Client(base_url=app.settings.app_url, timeout=60) as client,
        ):
            login = client.post(
                "/console/api/login", json={"email": "bench@shop.example", "password": PASSWORD}
            )
            login.raise_for_status()
            figures = measure(client, engine, requests, random.Random(11))
        engine.dispose()
        size_mb = path.stat().st_size / 1e6
    return {
        "conversations": int(indexed or 0),
        "events": seeded["events"],
        "offers": seeded["offers"],
        "seed_s": round(seed_s, 1),
        "index_s": round(run.seconds, 1),
        "index_events_per_s": round(run.events / run.seconds) if run.seconds else None,
        "db_mb": round(size_mb),
        "target_p95_ms": TARGET_P95_MS,
        "list_p95_ms": figures["list"]["p95_ms"],
        "transcript_p95_ms": figures["transcript"]["p95_ms"],
        "meets_target": figures["list"]["p95_ms"] <= TARGET_P95_MS
        and figures["transcript"]["p95_ms"] <= TARGET_P95_MS,
        **figures,
    }
