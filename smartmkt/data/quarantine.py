"""The quarantine: rows an import set aside, to list, export for fixing, and retry."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, func, select

from smartmkt.store.db import session_scope
from smartmkt.store.models import QuarantinedRow


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    kind: str
    source_file: str
    line_number: int
    rule: str
    detail: str
    raw: str
    created_at: datetime


def list_quarantine(
    engine: Engine,
    kind: str | None = None,
    rule: str | None = None,
    limit: int = 50,
    include_resolved: bool = False,
) -> list[QuarantineEntry]:
    query = select(QuarantinedRow).order_by(QuarantinedRow.id)
    if kind:
        query = query.where(QuarantinedRow.kind == kind)
    if rule:
        query = query.where(QuarantinedRow.rule == rule)
    if not include_resolved:
        query = query.where(QuarantinedRow.resolved_at.is_(None))
    with session_scope(engine) as session:
        return [
            QuarantineEntry(q.id, q.kind, q.source_file, q.line_number, q.rule, q.detail, q.raw, q.created_at)
            for q in session.scalars(query.limit(limit))
        ]


def counts_by_rule(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        rows = session.execute(
            select(QuarantinedRow.rule, func.count())
            .where(QuarantinedRow.resolved_at.is_(None))
            .group_by(QuarantinedRow.rule)
        )
        return {rule: int(n) for rule, n in rows}


EXPORT_COLUMNS: Sequence[str] = ("id", "kind", "source_file", "line_number", "rule", "detail", "raw")


def export_quarantine(engine: Engine, path: Path, kind: str | None = None) -> int:
    """Write open quarantined rows to CSV (one row each, with the reason); returns the count.

    To fix rows: put each corrected row, in the original file's columns, in a file with a
    ``quarantine_id`` column naming the entry it fixes, and run
    ``smartmkt data quarantine retry --fixed FILE``."""
    entries = list_quarantine(engine, kind=kind, limit=10_000_000)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        for e in entries:
            writer.writerow([e.id, e.kind, e.source_file, e.line_number, e.rule, e.detail, e.raw])
    return len(entries)
