"""The one clock: every timestamp smartmkt stores or compares is UTC and comes from here, so a
test (or a replayed benchmark) has one place to look and the store never mixes naive and aware
datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime: SQLite hands back naive datetimes, and everything
    stored is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
