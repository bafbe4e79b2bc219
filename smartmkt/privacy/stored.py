"""Mask the conversations Rasa stored before masking was switched on (``smartmkt privacy
mask-stored``): each conversation's events, in order, go through the same masking as a new turn
(``rasa_events.mask_events``), and a row whose JSON changes is written back. Rasa only appends to
``events`` and counts rows, never compares them, so rewriting a stored row's ``data`` changes
nothing for it. The console's index is rebuilt afterwards when anything changed, so its search
text and first messages are masked too.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, select, update

from smartmkt.console import index
from smartmkt.console.events import RASA_EVENTS
from smartmkt.privacy.erasure import chunks
from smartmkt.privacy.rasa_events import mask_events
from smartmkt.privacy.redact import Redactor


@dataclass
class MaskRun:
    conversations: int = 0
    events: int = 0  # events read
    masked: int = 0  # events rewritten (or, in a dry run, that would be)
    reindexed: bool = False


def mask_stored(store: Engine, tracker: Engine, redactor: Redactor, dry_run: bool = False) -> MaskRun:
    """Mask every stored conversation (module doc); returns what it read and changed."""
    run = MaskRun()
    if not redactor.enabled or not index.events_table_exists(tracker):
        return run
    e = RASA_EVENTS.c
    with tracker.connect() as conn:
        senders = [str(s) for s in conn.scalars(select(e.sender_id).distinct().order_by(e.sender_id))]
    run.conversations = len(senders)
    for batch in chunks(senders):
        with tracker.connect() as conn:
            rows = conn.execute(
                select(e.id, e.sender_id, e.data).where(e.sender_id.in_(batch)).order_by(e.sender_id, e.id)
            ).all()
        run.events += len(rows)
        by_sender: dict[str, list[Any]] = defaultdict(list)
        for row in rows:
            by_sender[row.sender_id].append(row)
        changed: list[dict[str, Any]] = []
        for mine in by_sender.values():
            stored = [_load(r.data) for r in mine]
            for row, before, after in zip(mine, stored, mask_events(stored, redactor), strict=True):
                if after != before:
                    changed.append({"b_id": row.id, "b_data": json.dumps(after)})
        run.masked += len(changed)
        if changed and not dry_run:
            with tracker.begin() as conn:
                conn.execute(
                    update(RASA_EVENTS).where(e.id == bindparam("b_id")).values(data=bindparam("b_data")),
                    changed,
                )
    if run.masked and not dry_run:
        index.rebuild(store, tracker)
        run.reindexed = True
    return run


def _load(data: str | None) -> dict[str, Any]:
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


__all__ = ["MaskRun", "mask_stored"]
