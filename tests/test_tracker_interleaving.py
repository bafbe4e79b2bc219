"""Two turns of one conversation run at once (two Rasa replicas, after the conversation's lock
ran out): Rasa 3.6's SQL tracker store saves by counting stored events, so the second save would
store a wrong slice and drop the rest of its turn without a word. bot/redacting_store.py refuses
that save (ConcurrentTurn: the REST channel answers 503 and the client resends); the first
turn's events stay whole, and the turn sent again is stored whole. Rasa's own store, in the bot
environment, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from smartmkt.lifecycle.kinds import bot_python
from smartmkt.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = r"""
import asyncio, json, sys
import redacting_store
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

store = redacting_store.RedactingSQLTrackerStore(domain=Domain.load("domain.yml"), host=sys.argv[1])

def turn(tracker, text, reply):
    tracker.update(UserUttered(text, {"name": "greet", "confidence": 0.9}))
    tracker.update(ActionExecuted("utter_greet"))
    tracker.update(BotUttered(reply))
    tracker.update(ActionExecuted("action_listen"))

first = asyncio.run(store.retrieve("c-1"))
first = first or store.init_tracker("c-1")
turn(first, "hello", "hi there")
asyncio.run(store.save(first))
one = asyncio.run(store.retrieve("c-1"))   # two replicas read the same conversation
two = asyncio.run(store.retrieve("c-1"))
turn(one, "one", "reply one")
turn(two, "two", "reply two")
asyncio.run(store.save(one))
refused = None
try:
    asyncio.run(store.save(two))
except redacting_store.ConcurrentTurn as exc:
    refused = str(exc)
again = asyncio.run(store.retrieve("c-1"))  # the client sends "two" again: a fresh turn
turn(again, "two", "reply two")
asyncio.run(store.save(again))
asyncio.run(store.save(again))  # nothing new: nothing written, nothing refused
said = [e.text for e in asyncio.run(store.retrieve("c-1")).events if e.type_name == "user"]
print(json.dumps({"refused": refused, "said": said}))
"""


def run_script(url: str) -> dict[str, object]:
    done = subprocess.run(
        [str(bot_python(Settings())), "-c", SCRIPT, url],
        cwd=ROOT / "bot",
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SQLALCHEMY_SILENCE_UBER_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_turn_saved_over_another_is_refused_not_cut(store_url: str) -> None:
    url = store_url.replace("postgresql+psycopg://", "postgresql://")  # Rasa's SQLAlchemy 1.4, psycopg2
    result = run_script(url)
    assert result["refused"] and "another turn ran at the same time" in str(result["refused"])
    assert result["said"] == ["hello", "one", "two"]  # every message once, none cut
