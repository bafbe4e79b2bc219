"""The console consumer: RabbitMQ's queue of Rasa events folded into the conversation index.

``python -m smartmkt.console.consumer --queue smartmkt_events --health-port 8090``

With several replicas (``SMARTMKT_AMQP_URL`` set) Rasa publishes every stored event to the fanout
exchange ``rasa-exchange``, which copies it into the durable queue ``smartmkt_events`` (a
persistent message per event: ``{"sender_id": ..., **event.as_dict()}``, masked like the tracker
store's rows by bot/redacting_store.py). This process declares the exchange and the queue exactly
as Rasa's pika broker does (a fanout exchange with RabbitMQ's defaults, a durable queue bound to
it: declaring them with other arguments is refused with PRECONDITION_FAILED), so whichever starts
first, no event is lost; a consumer that was down catches up from the queue.

Messages are read in batches (up to ``BATCH`` messages, or what came before ``IDLE_S`` without
one), each batch is folded into the index in one store transaction (``index.fold_published``) and
acknowledged (``multiple=True``) only after that transaction committed. A crash between the commit
and the ack means RabbitMQ delivers the batch again: the keys ``fold_published`` records with the
events (``console_seen_events``; see smartmkt/console/index.py for what a key is made of, since
Rasa's events have no id of their own) make the second delivery count nothing.

A message that is not an event (not JSON, no sender_id, event or timestamp) is logged, counted and
acknowledged: it would fail the same way every time. When RabbitMQ goes away (restarted) the
consumer connects again with backoff; when the store cannot be written the batch is given back
unacknowledged (requeued) and tried again after a backoff. Neither ends the process; SIGTERM or
SIGINT does, after the batch in hand.

Rasa (as bot/run_rasa.py runs it) publishes a turn's events after it committed them, and
without waiting for RabbitMQ (its pika broker hands the message to a background task; while
RabbitMQ is away it logs the event and drops it): a Rasa replica killed between the commit and
the publish, or one whose broker was down, has written events that never reach the queue. A
write that failed publishes nothing, so the index never counts a turn the client was told had
failed. So every ``SWEEP_S`` seconds the consumer also reads Rasa's
events table past the index's mark (``index.catch_up`` with the same keys), up to the events
``SWEEP_AFTER_S`` old: an event the queue already delivered is skipped, one it never will is
folded (``swept`` counts them). The queue
keeps the index current; the sweep keeps it complete.

``GET /health`` on 127.0.0.1:PORT: ``{"status": "ok", "connected": bool, "folded": n,
"duplicates": n, "dropped": n}``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pika
import pika.exceptions
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from smartmkt.console import index
from smartmkt.settings import get_settings
from smartmkt.store.db import make_engine, tracker_engine

log = logging.getLogger("smartmkt.console.consumer")

EXCHANGE = "rasa-exchange"  # Rasa's pika broker (rasa/core/brokers/pika.py, RABBITMQ_EXCHANGE)
QUEUE = "smartmkt_events"
BATCH = 500  # messages per transaction, and RabbitMQ's prefetch
IDLE_S = 0.3  # a batch is folded once no message came for this long
BACKOFF_S = (0.5, 5.0)  # first and longest wait before connecting or writing again
SWEEP_S = 10.0  # how often Rasa's events table is read for events the queue never got
SWEEP_AFTER_S = 20.0  # ... once they are this old: the queue brings an event in well under a second


@dataclass
class Stats:
    """What /health reports."""

    connected: bool = False
    folded: int = 0
    duplicates: int = 0
    dropped: int = 0
    batches: int = 0
    failures: int = 0  # batches given back because the store could not be written
    swept: int = 0  # events found in Rasa's table that never came through the queue

    def as_json(self) -> bytes:
        return json.dumps({"status": "ok", **asdict(self)}).encode()


def parse(body: bytes) -> Any:
    """A message's JSON, or None when it is not JSON (``fold_published`` drops what is not an
    event)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def serve_health(stats: Stats, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """``GET /health`` in a daemon thread."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/health":
                self.send_error(404)
                return
            body = stats.as_json()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((host, port), Health)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server


class Consumer:
    """Reads ``queue`` and folds it into the index of ``store`` (module doc)."""

    def __init__(self, amqp_url: str, queue: str, store: Engine, stats: Stats | None = None) -> None:
        self.amqp_url = amqp_url
        self.queue = queue
        self.store = store
        self.stats = stats or Stats()
        self.stopping = threading.Event()
        self._store_delay = BACKOFF_S[0]

    def stop(self, *_: Any) -> None:
        self.stopping.set()

    def sweep(self, tracker: Engine, every_s: float = SWEEP_S) -> None:
        """Until stopped: fold what Rasa wrote but never published (module doc)."""
        while not self.stopping.wait(every_s):
            try:
                run = index.catch_up(self.store, tracker, dedupe=True, older_than_s=SWEEP_AFTER_S)
            except DBAPIError as exc:
                log.warning("sweeping Rasa's events failed (%r); trying again in %.0f s", exc, every_s)
                continue
            if run.folded:
                self.stats.swept += run.folded
                log.info("swept %d events Rasa wrote but never published", run.folded)

    def run(self) -> None:
        """Consume until stopped, connecting again whenever RabbitMQ goes away."""
        delay = BACKOFF_S[0]
        while not self.stopping.is_set():
            connection: pika.BlockingConnection | None = None
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
                channel = connection.channel()
                self._declare(channel)
                self.stats.connected = True
                log.info("consuming %s from %s", self.queue, EXCHANGE)
                delay = BACKOFF_S[0]
                self._consume(channel)
            except (pika.exceptions.AMQPError, OSError) as exc:
                log.warning("RabbitMQ unreachable or gone (%r); connecting again in %.1f s", exc, delay)
            finally:
                self.stats.connected = False
                if connection is not None and connection.is_open:
                    with contextlib.suppress(pika.exceptions.AMQPError, OSError):
                        connection.close()  # unacknowledged messages go back to the queue
            if self.stopping.wait(delay):
                break
            delay = min(delay * 2, BACKOFF_S[1])

    def _declare(self, channel: Any) -> None:
        """The exchange and queue as Rasa declares them (module doc)."""
        channel.exchange_declare(EXCHANGE, exchange_type="fanout")
        channel.queue_declare(self.queue, durable=True)
        channel.queue_bind(self.queue, EXCHANGE, routing_key="")
        channel.basic_qos(prefetch_count=BATCH)

    def _consume(self, channel: Any) -> None:
        batch: list[tuple[int, bytes]] = []
        for method, _properties, body in channel.consume(self.queue, inactivity_timeout=IDLE_S):
            if method is not None:
                batch.append((method.delivery_tag, body))
            if batch and (method is None or len(batch) >= BATCH):
                self._fold(channel, batch)
                batch = []
            if self.stopping.is_set() and not batch:
                channel.cancel()
                return

    def _fold(self, channel: Any, batch: Sequence[tuple[int, bytes]]) -> None:
        """Fold one batch and acknowledge it after the commit. When the store cannot be written
        the batch goes back to the queue (requeued, delivered again) after a pause that doubles
        up to ``BACKOFF_S[1]`` while the store stays out of reach."""
        last_tag = batch[-1][0]
        try:
            run = index.fold_published(self.store, [parse(body) for _tag, body in batch])
        except DBAPIError as exc:
            self.stats.failures += 1
            log.warning(
                "the store could not be written (%r); %d messages requeued in %.1f s",
                exc,
                len(batch),
                self._store_delay,
            )
            self.stopping.wait(self._store_delay)
            self._store_delay = min(self._store_delay * 2, BACKOFF_S[1])
            channel.basic_nack(delivery_tag=last_tag, multiple=True, requeue=True)
            return
        self._store_delay = BACKOFF_S[0]
        channel.basic_ack(delivery_tag=last_tag, multiple=True)
        self.stats.batches += 1
        self.stats.folded += run.folded
        self.stats.duplicates += run.duplicates
        self.stats.dropped += run.dropped
        if run.dropped:
            log.warning("dropped %d messages that are not Rasa events", run.dropped)
        log.debug("folded %d events (%d duplicates)", run.folded, run.duplicates)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m smartmkt.console.consumer", description=__doc__)
    parser.add_argument("--queue", default=QUEUE)
    parser.add_argument("--health-port", type=int, required=True)
    parser.add_argument("--health-host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)  # its reconnect errors: ours say it once
    settings = get_settings()
    if not settings.amqp_url:
        parser.error("SMARTMKT_AMQP_URL is not set: without a broker the console reads Rasa's events itself")
    store = make_engine(settings.resolved_database_url)
    consumer = Consumer(settings.amqp_url, args.queue, store)
    server = serve_health(consumer.stats, args.health_port, args.health_host)
    threading.Thread(target=consumer.sweep, args=(tracker_engine(store, settings),), daemon=True).start()
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    try:
        consumer.run()
    finally:
        server.shutdown()
        store.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
