"""Rasa's SQL tracker store, writing the customer's personal data masked (bot/endpoints.yml
``tracker_store: type: redacting_store.RedactingSQLTrackerStore``); runs in the bot environment.

Rasa keeps the turn in memory while it runs: the NLU, the policies and the custom actions see the
message exactly as the customer wrote it. Only when Rasa stores the turn (``SQLTrackerStore.save``
writes ``event.as_dict()`` of each event the table does not hold yet, counted per conversation
session; rasa/core/tracker_store.py) does this store hand it masked copies instead
(``smartmkt.privacy.rasa_events.mask_events``: what a message held is masked in the turn's
slots and replies too): the ``events`` row's ``data`` JSON, and the
``intent_name``/``action_name`` columns beside it, come from the masked copy. The count of stored
events is unchanged, so Rasa's bookkeeping is too. An event broker, if one is configured, gets
the same masked copies. The next turn reads the conversation back masked.

Erasure: when a turn holds ``action_erase_data`` followed by its slot reset (the customer
confirmed), the action has already erased the customer's data and the conversation's events
(smartmkt.privacy.erasure); this store then deletes whatever rows of the conversation are left
and writes none of the turn, so nothing of it comes back.

Interleaving: a turn whose conversation another turn saved meanwhile is refused
(``ConcurrentTurn``) instead of being stored as a wrong slice; see ``_refuse_interleaving``.

Configuration (environment, as ``smartmkt run`` passes it): ``SMARTMKT_REDACT`` (kinds:
``email,card,phone,address``, ``all`` or ``none``) and ``SMARTMKT_REDACT_PHONE_REGIONS``
(``US``: the home region first), or the same as ``redact`` / ``phone_regions`` in endpoints.yml.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # smartmkt.privacy: the standard library and phonenumbers only
    sys.path.append(str(ROOT))

from smartmkt.privacy.rasa_events import erasure_confirmed, mask_events  # noqa: E402
from smartmkt.privacy.redact import DEFAULT_KINDS, DEFAULT_PHONE_REGIONS, Redactor  # noqa: E402


class _StoredEvent:
    """An event as the tracker store writes it: its type and its (masked) JSON."""

    def __init__(self, type_name: str, data: dict[str, Any]) -> None:
        self.type_name = type_name
        self._data = data

    def as_dict(self) -> dict[str, Any]:
        return self._data


class ConcurrentTurn(RuntimeError):
    """Another turn of the conversation was saved while this one ran: this one is not saved."""

    def __init__(self, sender_id: str, stored: int, held: int) -> None:
        super().__init__(
            f"conversation {sender_id!r}: {stored} events stored meanwhile, this turn holds {held}; "
            "another turn ran at the same time, so this one is not saved (the client may resend it)"
        )


class RedactingSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that never writes a customer's personal data (module doc)."""

    def __init__(
        self, *args: Any, redact: str | None = None, phone_regions: str | None = None, **kwargs: Any
    ):
        self.redactor = Redactor.from_spec(
            redact if redact is not None else os.environ.get("SMARTMKT_REDACT", DEFAULT_KINDS),
            phone_regions or os.environ.get("SMARTMKT_REDACT_PHONE_REGIONS") or DEFAULT_PHONE_REGIONS,
        )
        super().__init__(*args, **kwargs)

    def _additional_events(self, session: Any, tracker: Any) -> Iterator[Any]:
        self._refuse_interleaving(session, tracker)
        new = list(super()._additional_events(session, tracker))
        data = [event.as_dict() for event in new]
        if erasure_confirmed(data):
            if session.bind.dialect.name == "sqlite":
                session.execute(_sql("PRAGMA secure_delete = ON"))  # deleted rows are zeroed on disk
            session.query(self.SQLEvent).filter(self.SQLEvent.sender_id == tracker.sender_id).delete(
                synchronize_session=False
            )
            return iter(())
        masked = mask_events(data, self.redactor)
        return iter(_StoredEvent(event.type_name, d) for event, d in zip(new, masked, strict=True))

    def _refuse_interleaving(self, session: Any, tracker: Any) -> None:
        """Rasa saves the events past the number the table holds for the conversation's session.
        If another turn saved meanwhile (two replicas ran the conversation at once, after the
        conversation's lock ran out), that count points into this turn's own events, and Rasa
        would store a wrong slice and lose the rest without a word. The newest stored event must
        be the one this tracker has at that position, else ``ConcurrentTurn``: the turn fails, the
        REST channel answers 503 (bot/replicas.py), and the client sends the message again. On
        PostgreSQL the check holds the conversation's advisory lock until the save commits, so
        two saves cannot both pass it."""
        if session.bind.dialect.name == "postgresql":
            session.execute(
                _sql("SELECT pg_advisory_xact_lock(hashtext(:sender))"), {"sender": tracker.sender_id}
            )
        query = self._event_query(session, tracker.sender_id, fetch_events_from_all_sessions=False)
        count = query.count()
        if not count:
            return
        newest = query.order_by(None).order_by(self.SQLEvent.id.desc()).first()
        events = list(tracker.events)
        mine = events[count - 1] if count <= len(events) else None
        if (
            mine is None
            or mine.type_name != newest.type_name
            or abs(mine.timestamp - newest.timestamp) > 1e-6
        ):
            raise ConcurrentTurn(tracker.sender_id, count, len(events))

    async def _stream_new_events(self, event_broker: Any, new_events: list[Any], sender_id: str) -> None:
        for masked in mask_events([event.as_dict() for event in new_events], self.redactor):
            event_broker.publish({"sender_id": sender_id, **masked})


def _sql(statement: str) -> Any:
    import sqlalchemy as sa

    return sa.text(statement)
