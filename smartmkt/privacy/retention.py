"""Conversations are kept ``retention_days`` (SMARTMKT_RETENTION_DAYS, default 365), then purged:
``smartmkt retention run`` and, under ``smartmkt run``, once at start and every 24 hours
(``DailyRetention``).

What goes, for a cut-off of N days before now:
- a conversation whose newest event is older than the cut-off: all of its events, its rows in the
  console's index (and search) and the NLU reviews of its messages;
- a conversation still going: its events older than the cut-off that belong to an earlier
  conversation session (before its latest ``session_started``), the NLU reviews of those messages;
  its index rows are folded again from the events it has left. Events of the session in progress
  are never touched, so Rasa's count of the session's stored events stays right.

Offers, orders and customers are the shop's records, not conversations: retention leaves them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, and_, delete, func, select

from smartmkt.console import index
from smartmkt.console.events import RASA_EVENTS
from smartmkt.periodic import Periodic
from smartmkt.privacy.erasure import chunks, compact, delete_reviews, secure_delete
from smartmkt.store.clock import utcnow

if TYPE_CHECKING:
    from smartmkt.settings import Settings

log = logging.getLogger(__name__)

DAY_S = 86_400.0
SESSION_START = "action_session_start"


@dataclass
class RetentionRun:
    """What one retention run purged (or, with ``dry_run``, would purge)."""

    days: int
    cutoff: str  # ISO time: events before it are old
    dry_run: bool
    conversations_purged: int = 0  # every event older than the cut-off: gone whole
    conversations_trimmed: int = 0  # still going: their earlier, old sessions gone
    events: int = 0
    nlu_reviews: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verb = "would purge" if self.dry_run else "purged"
        return (
            f"retention ({self.days} days, before {self.cutoff[:19]}Z): {verb} {self.events:,} events: "
            f"{self.conversations_purged:,} conversations whole, {self.conversations_trimmed:,} "
            f"trimmed of older sessions; {self.nlu_reviews:,} NLU reviews"
        )


def _old_conversations(conn: Connection, cutoff: float) -> list[str]:
    e = RASA_EVENTS.c
    query = select(e.sender_id).group_by(e.sender_id).having(func.max(e.timestamp) < cutoff)
    return [str(s) for s in conn.scalars(query)]


def _old_sessions(conn: Connection, cutoff: float) -> dict[str, float]:
    """Conversations still going with events older than the cut-off before their latest session
    start: sender -> the time before which events may go (the earlier of the two). A session
    starts where Rasa logs ``action_session_start``, just before its ``session_started`` event
    (from which on Rasa counts the session's stored events)."""
    e = RASA_EVENTS.c
    latest = (
        select(e.sender_id, func.max(e.timestamp).label("started"))
        .where(e.type_name == "action", e.action_name == SESSION_START)
        .group_by(e.sender_id)
        .subquery()
    )
    query = (
        select(latest.c.sender_id, latest.c.started)
        .where(
            select(RASA_EVENTS.c.id)
            .where(
                e.sender_id == latest.c.sender_id,
                e.timestamp < cutoff,
                e.timestamp < latest.c.started,
            )
            .exists()
        )
        .where(
            select(RASA_EVENTS.c.id).where(e.sender_id == latest.c.sender_id, e.timestamp >= cutoff).exists()
        )
    )
    return {str(s): min(float(started), cutoff) for s, started in conn.execute(query)}


def _purge(
    store: Engine, tracker: Engine, run: RetentionRun, senders: list[str], old: list[Any], whole: bool
) -> None:
    """One batch of conversations: the events matching ``old`` go (or are counted), then the NLU
    reviews of their messages, then the index: whole conversations leave it, trimmed ones are
    folded again from what they have left."""
    e = RASA_EVENTS.c
    user_ids: list[int] = []
    with tracker.begin() as conn:
        secure_delete(conn)
        for condition in old:
            user_ids += conn.scalars(select(e.id).where(condition, e.type_name == "user"))
            if run.dry_run:
                run.events += conn.scalar(select(func.count()).select_from(RASA_EVENTS).where(condition)) or 0
            else:
                run.events += conn.execute(delete(RASA_EVENTS).where(condition)).rowcount
    with store.begin() as conn:
        secure_delete(conn)
        run.nlu_reviews += delete_reviews(conn, senders if whole else [], user_ids, not run.dry_run)
        if run.dry_run:
            return
        if whole:
            index.forget_in(conn, senders)
        else:
            index.refold_in(conn, tracker, senders)


def run_retention(
    store: Engine,
    tracker: Engine,
    days: int,
    dry_run: bool = False,
    now: datetime | None = None,
    dedupe: bool | None = None,
) -> RetentionRun:
    """Purge (or with ``dry_run`` count) the conversations older than ``days`` days (module doc).
    ``dedupe``: whether the deployment's index is fed by the broker (``index.catch_up``; default:
    this process's settings). A scheduler running for another deployment's settings must say so,
    else its catch-up folds events without their keys and the consumer counts them again."""
    if days < 1:
        raise ValueError("retention needs at least 1 day")
    started = time.perf_counter()
    cutoff_at = (now or utcnow()) - timedelta(days=days)
    cutoff = cutoff_at.timestamp()
    run = RetentionRun(days, cutoff_at.isoformat(), dry_run)
    if not index.events_table_exists(tracker):
        return run
    if not dry_run:
        index.catch_up(store, tracker, dedupe=dedupe)  # everything indexed: the folds below see every event
    e = RASA_EVENTS.c
    with tracker.connect() as conn:
        whole = _old_conversations(conn, cutoff)
        trimmed = _old_sessions(conn, cutoff)
    run.conversations_purged, run.conversations_trimmed = len(whole), len(trimmed)
    for senders in chunks(whole):
        _purge(store, tracker, run, list(senders), [e.sender_id.in_(senders)], whole=True)
    for senders in chunks(sorted(trimmed)):
        older = [and_(e.sender_id == s, e.timestamp < trimmed[s]) for s in senders]
        _purge(store, tracker, run, list(senders), older, whole=False)
    if not dry_run and (whole or trimmed):
        compact(store)
        if tracker is not store:
            compact(tracker)
    run.seconds = round(time.perf_counter() - started, 3)
    return run


class DailyRetention(Periodic):
    """Runs ``job`` once ``wait_for()`` says so (if given; False ends the thread), then every
    ``interval_s`` (24 h) until ``stop()``; each run's report is kept in ``runs``, a failed run
    is logged and tried at the next interval (smartmkt.periodic)."""

    def __init__(
        self,
        job: Callable[[], RetentionRun],
        interval_s: float = DAY_S,
        wait_for: Callable[[], bool] | None = None,
    ) -> None:
        self.runs: list[RetentionRun] = []
        super().__init__(
            "smartmkt-retention",
            interval_s,
            lambda: self.runs.append(job()),
            "retention run failed",
            at_start=True,
            ready=wait_for,
        )


def schedule_retention(
    settings: Settings, wait_for: Callable[[], bool], say: Callable[[str], Any]
) -> DailyRetention:
    """Start the retention schedule of one deployment: conversations older than
    SMARTMKT_RETENTION_DAYS purged once ``wait_for()`` says the services are up (Rasa has made its
    events table by then), then every SMARTMKT_RETENTION_INTERVAL_HOURS. One process runs it
    (`smartmkt run`, or the cluster's supervisor, never every replica); ``say`` reports each run."""
    from smartmkt.store.db import make_engine, tracker_engine
    from smartmkt.store.migrate import upgrade

    def job() -> RetentionRun:
        upgrade(settings.resolved_database_url)
        store = make_engine(settings.resolved_database_url)
        try:
            tracker = tracker_engine(store, settings)
            run = run_retention(store, tracker, settings.retention_days, dedupe=bool(settings.amqp_url))
        finally:
            store.dispose()
        say(f"{run.summary()}; next run in {settings.retention_interval_hours:g} h")
        return run

    scheduler = DailyRetention(job, settings.retention_interval_hours * 3600, wait_for=wait_for)
    scheduler.start()
    return scheduler


__all__ = ["DailyRetention", "RetentionRun", "run_retention", "schedule_retention"]
