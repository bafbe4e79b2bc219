"""`smartmkt privacy mask-stored`: conversations stored before masking was on are masked in
place, the console's index is rebuilt from them, and a second run finds nothing left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from privacy_support import cli_on
from sqlalchemy import text

from smartmkt.bench import rasa_events as rasa
from smartmkt.cli.main import app
from smartmkt.console import index
from smartmkt.store.db import make_engine

T0 = 1_772_445_600.0


def test_mask_stored_masks_old_conversations_in_place(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_engine(f"sqlite:///{demo_db}")
    said = "a comedy, and mail jane.doe@example.com or call 415-555-0132"
    old = rasa.Conversation("before-masking", T0).turn(
        said,
        "ask_recommendation",
        entities=[{"entity": "product", "value": "doe", "start": 24, "end": 27}],
        replies=[('I couldn\'t find "doe"', None)],
    )
    old.rows.append(rasa.slot("before-masking", T0 + 9, "product", "doe"))
    clean = rasa.Conversation("nothing-personal", T0).turn("a western please", "ask_recommendation")
    with store.begin() as conn:
        rasa.write(conn, old.rows + clean.rows)
    index.catch_up(store, store)
    with store.connect() as conn:
        before = {r.id: r.data for r in conn.execute(text("SELECT id, data FROM events"))}

    with cli_on(demo_db, monkeypatch) as cli:
        dry = cli.invoke(app, ["privacy", "mask-stored", "--dry-run", "--json"])
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.output) == {
            "conversations": 2,
            "events": len(before),
            "masked": 3,
            "reindexed": False,
        }
        with store.connect() as conn:
            assert {r.id: r.data for r in conn.execute(text("SELECT id, data FROM events"))} == before

        done = cli.invoke(app, ["privacy", "mask-stored"])
        assert done.exit_code == 0, done.output
        assert "masked 3 of" in done.output and "console index rebuilt" in done.output
        again = cli.invoke(app, ["privacy", "mask-stored", "--json"])
        assert json.loads(again.output)["masked"] == 0

    with store.connect() as conn:
        stored = json.dumps([r.data for r in conn.execute(text("SELECT data FROM events"))])
        search = list(conn.scalars(text("SELECT search_text FROM console_conversations ORDER BY sender_id")))
    for secret in ("jane", "example.com", "415-555", "doe"):
        assert secret not in stored, secret
    assert search == ["a comedy, and mail [EMAIL] or call [PHONE]", "a western please"]
    store.dispose()
