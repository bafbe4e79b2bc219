"""Rows of Rasa's ``events`` table as Rasa 3.6's SQL tracker store writes them, for the console
benchmark and tests (which play Rasa's part without running it).

The shapes are copied from rows the running bot wrote (``event.as_dict()`` as JSON in ``data``,
the intent and action names in their own columns): a session start, then per customer message a
user event (parse_data with intent, ranking, entities; ``metadata.channel`` "voice" for spoken
turns), the actions the policy ran, the bot's messages (the actions' json_message in
``data.custom``), slot events, and ``action_listen``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, insert

from smartmkt.console.events import FALLBACK_INTENT, RASA_EVENTS

METADATA = {"model_id": "b3b2c799be4c49e191ae66318cfccc9f", "assistant_id": "smartmkt"}


def _row(
    sender: str,
    kind: str,
    ts: float,
    data: dict[str, Any],
    intent: str | None = None,
    action: str | None = None,
) -> dict[str, Any]:
    return {
        "sender_id": sender,
        "type_name": kind,
        "timestamp": ts,
        "intent_name": intent,
        "action_name": action,
        "data": json.dumps({"event": kind, "timestamp": ts, "metadata": METADATA, **data}),
    }


def action(sender: str, ts: float, name: str, policy: str | None = "RulePolicy") -> dict[str, Any]:
    return _row(
        sender,
        "action",
        ts,
        {"name": name, "policy": policy, "confidence": 1.0, "action_text": None, "hide_rule_turn": False},
        action=name,
    )


def session_start(sender: str, ts: float) -> list[dict[str, Any]]:
    return [
        action(sender, ts, "action_session_start", None),
        _row(sender, "session_started", ts + 0.0001, {}),
        action(sender, ts + 0.0002, "action_listen", None),
    ]


def user(
    sender: str,
    ts: float,
    text: str,
    intent: str,
    confidence: float,
    entities: Sequence[dict[str, Any]] = (),
    channel: str = "text",
    runner_up: str = "out_of_scope",
) -> dict[str, Any]:
    """A customer message. For ``nlu_fallback``, ``confidence`` is the model's best real intent's
    (the app's NLU puts the fallback first and keeps the real ranking after it)."""
    metadata = {"channel": "voice"} if channel == "voice" else {}
    if intent == FALLBACK_INTENT:
        top = {"name": FALLBACK_INTENT, "confidence": 0.55}
        ranking = [top, {"name": runner_up, "confidence": confidence}]
    else:
        top = {"name": intent, "confidence": confidence}
        ranking = [top, {"name": runner_up, "confidence": round((1 - confidence) / 2, 6)}]
    parse = {
        "intent": top,
        "entities": [
            {**e, "confidence_entity": 0.999, "extractor": "SmartmktTransformerNLU"} for e in entities
        ],
        "text": text,
        "message_id": f"{sender}-{ts:.6f}",
        "metadata": metadata,
        "intent_ranking": ranking,
    }
    row = _row(
        sender,
        "user",
        ts,
        {"text": text, "parse_data": parse, "input_channel": "rest", "message_id": parse["message_id"]},
        intent=intent,
    )
    if metadata:  # Rasa merges the message metadata into the event's
        data = json.loads(row["data"])
        data["metadata"] = {**metadata, **METADATA}
        row["data"] = json.dumps(data)
    return row


def bot(sender: str, ts: float, text: str, custom: dict[str, Any] | None = None) -> dict[str, Any]:
    buttons = {"elements": None, "quick_replies": None, "buttons": None, "attachment": None, "image": None}
    return _row(sender, "bot", ts, {"text": text, "data": {**buttons, "custom": custom}})


def slot(sender: str, ts: float, name: str, value: Any) -> dict[str, Any]:
    return _row(sender, "slot", ts, {"name": name, "value": value}, action=name)


def recommendations(products: Sequence[dict[str, Any]], offer: dict[str, Any] | None) -> dict[str, Any]:
    """The json_message of action_recommend (actions/replies.py)."""
    return {"type": "recommendations", "products": list(products), "offer": offer}


@dataclass
class Conversation:
    """Builds one sender's events turn by turn, as the bot would have logged them."""

    sender: str
    ts: float
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows += session_start(self.sender, self.ts)

    def _tick(self, seconds: float = 0.01) -> float:
        self.ts += seconds
        return self.ts

    def turn(
        self,
        text: str,
        intent: str,
        confidence: float = 0.93,
        entities: Sequence[dict[str, Any]] = (),
        channel: str = "text",
        actions: Sequence[str] = (),
        replies: Sequence[tuple[str, dict[str, Any] | None]] = (),
        pause: float = 5.0,
    ) -> Conversation:
        """One customer message, the actions run for it, the bot's replies, back to listening."""
        self.rows.append(user(self.sender, self._tick(pause), text, intent, confidence, entities, channel))
        self.rows.append(
            _row(self.sender, "user_featurization", self._tick(), {"use_text_for_featurization": False})
        )
        for name in actions:
            self.rows.append(action(self.sender, self._tick(), name))
        for reply, custom in replies:
            self.rows.append(bot(self.sender, self._tick(), reply, custom))
        if intent == FALLBACK_INTENT or "action_default_fallback" in actions:
            self.rows.append(_row(self.sender, "rewind", self._tick(), {}))
        self.rows.append(action(self.sender, self._tick(), "action_listen"))
        return self


def write(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows to ``events`` (creating the table as Rasa would if it is not there)."""
    RASA_EVENTS.create(conn, checkfirst=True)
    if rows:
        conn.execute(insert(RASA_EVENTS), list(rows))
