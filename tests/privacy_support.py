"""What the privacy tests share: the CLI on a private store, and reading back every row of every
table a database has (SQLAlchemy's inspection, so a table added later is read too)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text
from typer.testing import CliRunner

from smartmkt.privacy.erasure import table_treatment


@contextmanager
def cli_on(db: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[CliRunner]:
    """``smartmkt`` commands run in-process against the SQLite store ``db`` (events in it too)."""
    from smartmkt.settings import get_settings
    from smartmkt.store.db import get_engine

    monkeypatch.setenv("SMARTMKT_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.delenv("SMARTMKT_TRACKER_URL", raising=False)
    monkeypatch.delenv("SMARTMKT_TRACKER_DB", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    get_engine.cache_clear()
    try:
        yield CliRunner()
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()


def rows_of(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table the database has, by table."""
    tables = inspect(engine).get_table_names()
    with engine.connect() as conn:
        return {t: [dict(r._mapping) for r in conn.execute(text(f'SELECT * FROM "{t}"'))] for t in tables}


def assert_nothing_of_the_customer_left(
    engine: Engine, customer_ids: tuple[int, ...], refs: tuple[str, ...], words: tuple[str, ...]
) -> None:
    """No table the erasure does not know about; no row with one of ``customer_ids`` in a
    customer id column; no value holding one of ``refs`` (references, sender ids) or ``words``
    (what the customer said), whether text, JSON or bytes (SQLite's search index)."""
    everything = rows_of(engine)
    unknown = [t for t in everything if table_treatment(t) is None]
    assert unknown == [], f"tables an erasure does not know about: {unknown} (add them to erasure.TABLES)"
    for table, rows in everything.items():
        for row in rows:
            for column, value in row.items():
                if column.endswith("customer_id"):
                    assert value not in customer_ids, (table, row)
                if isinstance(value, bytes):
                    assert not any(w.encode() in value for w in (*refs, *words)), (table, column)
                    continue
                shown = value if isinstance(value, str) else json.dumps(value, default=str)
                assert not any(w in shown for w in (*refs, *words)), (table, row)


def without_chance_digits(stored: str) -> str:
    """``stored`` (JSON of event rows) without the values of row ids, timestamps and random ids.

    A float like 1796578673.9241507 or a hex id may hold "415" or "4111" by chance, which says
    nothing about a phone number or a card: a check that looks for such digits looks elsewhere.
    """
    noise = r'\\?"(id|timestamp|message_id|model_id)\\?": (\\?"[0-9a-f]+\\?"|[0-9.e+]+)'
    return re.sub(noise, "", stored)
