"""What every console API route stands on: the console's databases and who is asking.

``logged_in`` is the gate of every route but login: no live session cookie is a 401; an unsafe
method (POST, PUT, PATCH, DELETE) without the session's CSRF token in ``X-CSRF-Token`` is a 403.
``admin`` adds the role check (403 for marketers).
"""

from __future__ import annotations

import threading
from dataclasses import InitVar, dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Engine

from smartmkt.console import index, sessions
from smartmkt.settings import Settings
from smartmkt.store.db import make_engine, tracker_engine

CATCH_UP_BATCHES = 10  # at most 50,000 new events indexed inside one request; the rest next time


@dataclass
class ConsoleBackend:
    """The store and the tracker store (the same database by default), owned by one app."""

    settings: Settings
    shared_store: InitVar[Engine | None] = None  # the app's (AppState.store); None: one of its own
    store: Engine = field(init=False)
    tracker: Engine = field(init=False)

    def __post_init__(self, shared_store: Engine | None) -> None:
        self.store = shared_store or make_engine(self.settings.resolved_database_url)
        self.tracker = tracker_engine(self.store, self.settings)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.console_session_hours)

    def catch_up(self) -> index.IndexRun:
        """Fold Rasa's new events into the conversation index before a query reads it.

        In broker mode (``SMARTMKT_AMQP_URL`` set) this does nothing and reads nothing: Rasa
        publishes every event to RabbitMQ and the console consumer (smartmkt/console/consumer.py)
        folds them into the index; folding the events table here too would make each replica read
        it before every query, only to find every event already counted."""
        if self.settings.amqp_url:
            return index.IndexRun()
        return index.catch_up(self.store, self.tracker, max_batches=CATCH_UP_BATCHES)


_lock = threading.Lock()


def backend(request: Request) -> ConsoleBackend:
    state = request.app.state
    with _lock:
        if getattr(state, "console", None) is None:
            state.console = ConsoleBackend(state.smartmkt.settings, state.smartmkt.store)
    return state.console  # type: ignore[no-any-return]


Backend = Annotated[ConsoleBackend, Depends(backend)]


def logged_in(request: Request, console: Backend) -> sessions.LoggedIn:
    session = sessions.find(console.store, request.cookies.get(sessions.COOKIE))
    if session is None:
        raise HTTPException(401, "log in first")
    if request.method not in sessions.SAFE_METHODS and not session.csrf_matches(
        request.headers.get(sessions.CSRF_HEADER)
    ):
        raise HTTPException(403, f"missing or wrong {sessions.CSRF_HEADER} header")
    return session


LoggedIn = Annotated[sessions.LoggedIn, Depends(logged_in)]


def admin(session: LoggedIn) -> sessions.LoggedIn:
    if not session.user.is_admin:
        raise HTTPException(403, "only an admin can do this")
    return session


Admin = Annotated[sessions.LoggedIn, Depends(admin)]
