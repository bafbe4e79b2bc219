"""Console sessions in the database (no process keeps any), with a CSRF token each.

Login makes a random 256-bit token for the cookie and keeps only its SHA-256, so a copy of the
table logs nobody in. Each session has its own random CSRF token: the logged-in page reads it
(login and ``/me`` return it) and sends it back in ``X-CSRF-Token`` on every unsafe request, which
a page on another site cannot do. Sessions end at a fixed time after login, or at logout.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from smartmkt.console.users import User
from smartmkt.store.clock import as_utc, utcnow
from smartmkt.store.db import session_scope
from smartmkt.store.models import ConsoleSession, ConsoleUser

COOKIE = "smartmkt_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoggedIn:
    """A live session: whose it is, its CSRF token and when it ends."""

    user: User
    csrf_token: str
    expires_at: datetime

    def csrf_matches(self, header: str | None) -> bool:
        return header is not None and hmac.compare_digest(header.encode(), self.csrf_token.encode())


def start(engine: Engine, user: User, lifetime: timedelta) -> tuple[str, LoggedIn]:
    """A new session for ``user``: (the cookie's token, the session). Expired ones are purged."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    with session_scope(engine) as session:
        session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
        session.add(
            ConsoleSession(
                token_hash=token_hash(token),
                user_id=user.id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
    return token, LoggedIn(user, csrf, now + lifetime)


def find(engine: Engine, token: str | None) -> LoggedIn | None:
    """The live session of a cookie token (None when unknown, expired or the user is disabled)."""
    if not token or len(token) > 256:
        return None
    with session_scope(engine) as session:
        row = session.execute(
            select(ConsoleSession, ConsoleUser)
            .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
            .where(ConsoleSession.token_hash == token_hash(token))
        ).first()
        if row is None:
            return None
        stored, user = row
        expires_at = as_utc(stored.expires_at)
        if expires_at <= utcnow() or user.disabled:
            session.delete(stored)
            return None
        return LoggedIn(
            User(user.id, user.email, user.role, as_utc(user.created_at)), stored.csrf_token, expires_at
        )


def end(engine: Engine, token: str | None) -> None:
    if token:
        with session_scope(engine) as session:
            session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash(token)))
