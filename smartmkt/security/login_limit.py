"""The console's login rate limit: after ``SMARTMKT_LOGIN_MAX_FAILURES`` (5) failed logins for
one e-mail from one client address within ``SMARTMKT_LOGIN_WINDOW_S`` (15 min), further attempts
get a 429 until the oldest failure leaves the window, before any password is checked. Failures
live in the database (``login_failures``), so every app replica shares them; each attempt is
counted before its password is checked, under a lock (``take_attempt``), so replicas racing
cannot check more; a successful login clears its key. Only a SHA-256 of e-mail + address is stored.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from smartmkt.store.clock import utcnow
from smartmkt.store.db import hold_decision_lock
from smartmkt.store.models import LoginFailure


def login_key(email: str, address: str) -> str:
    return hashlib.sha256(f"{email.strip().lower()}\n{address}".encode()).hexdigest()


def take_attempt(
    engine: Engine, key: str, max_failures: int, window_s: int, now: datetime | None = None
) -> int:
    """Seconds until ``key`` may try again (0: this attempt may check its password).

    An allowed attempt is counted as a failure at once, in the transaction that counted the
    failures before it, under the logins' decision lock: concurrent attempts on several app
    replicas take turns, so no more than ``max_failures`` passwords are ever checked in a window.
    A successful login then clears the key."""
    now = now or utcnow()
    since = now - timedelta(seconds=window_s)
    with Session(engine) as session, session.begin():
        hold_decision_lock(session, "logins")
        count, oldest = session.execute(
            select(func.count(), func.min(LoginFailure.failed_at)).where(
                LoginFailure.key_hash == key, LoginFailure.failed_at > since
            )
        ).one()
        if count < max_failures or oldest is None:
            session.execute(delete(LoginFailure).where(LoginFailure.failed_at <= since))
            session.execute(insert(LoginFailure).values(key_hash=key, failed_at=now))
            return 0
    if oldest.tzinfo is None:  # SQLite returns naive UTC
        oldest = oldest.replace(tzinfo=UTC)
    return max(1, int((oldest + timedelta(seconds=window_s) - now).total_seconds()) + 1)


def clear(engine: Engine, key: str) -> None:
    with engine.begin() as conn:
        conn.execute(delete(LoginFailure).where(LoginFailure.key_hash == key))
