"""Engine and session factory. Nothing connects at import time: callers ask for an engine."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from smartmkt.settings import Settings, get_settings

log = logging.getLogger(__name__)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers (the app, the action server) work while one writer commits."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _connect_with_retries(budget_s: float) -> Callable[..., Any]:
    """A database server that is briefly down (restarting, failing over) is connected to again
    with exponential backoff (0.1 s doubling to 2 s) for up to ``budget_s`` before the error."""

    def do_connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        deadline, delay = time.monotonic() + budget_s, 0.1
        while True:
            try:
                return dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("database unreachable (%s); connecting again in %.1f s", exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    return do_connect


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their folder created and WAL mode (a locked
    database is waited for, up to the busy timeout); a server database's pooled connections are
    pinged before use and a refused connection is tried again (``db_connect_retry_s``)."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "do_connect", _connect_with_retries(get_settings().db_connect_retry_s))
    return engine


@lru_cache(maxsize=8)
def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    return make_engine(url or get_settings().resolved_database_url)


def tracker_engine(store: Engine, settings: Settings | None = None) -> Engine:
    """Rasa's tracker store as smartmkt reads it (the console's index, erasure, retention):
    ``store`` itself unless the settings point the tracker at another database
    (SMARTMKT_TRACKER_URL / _DB), then that database with its URL whole (query string included:
    a SQLite timeout or a PostgreSQL sslmode is kept)."""
    settings = settings or get_settings()
    if settings.resolved_tracker_url.split("?")[0] == settings.resolved_database_url:
        return store
    return get_engine(settings.resolved_tracker_url)


def session_factory(engine: Engine | None = None) -> sessionmaker[Session]:
    return sessionmaker(bind=engine or get_engine(), expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on any error so nothing is half-written."""
    session = session_factory(engine)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# PostgreSQL advisory lock ids: one per kind of decision that must not interleave (any 64-bit int).
DECISION_LOCKS = {  # "SMOFFERS", "SMLOGINS", "SMWEBHKS"
    "offers": 0x534D4F4646455253,
    "logins": 0x534D4C4F47494E53,
    "webhooks": 0x534D5745424B4B53,
}


def hold_decision_lock(session: Session, decision: str) -> None:
    """Take the decision's lock for the rest of ``session``'s transaction, so what it reads from
    now on (a budget, a cap) is still true when it writes: two threads, processes or replicas
    deciding at once take turns instead of both spending the last of a budget. Reads before the
    lock take no lock, so a decision that writes nothing never waits. SQLite: BEGIN IMMEDIATE
    (the database's one write lock, waited for up to the busy timeout; a transaction that has
    already written holds it); PostgreSQL: a transaction-scoped advisory lock named by
    ``decision`` (DECISION_LOCKS), released at commit or rollback."""
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        # pysqlite opens a transaction only before its first write: reads so far ran outside one
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN IMMEDIATE")
    elif connection.dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(DECISION_LOCKS[decision])))


def dialect_insert(conn: Connection | Session, target: Any) -> Any:
    """The database's own INSERT for ``target`` (a model or table): it knows ON CONFLICT, on
    SQLite and on PostgreSQL."""
    from sqlalchemy.dialects import postgresql, sqlite

    name = conn.bind.dialect.name if isinstance(conn, Session) else conn.dialect.name  # type: ignore[union-attr]
    return (postgresql if name == "postgresql" else sqlite).insert(target)
