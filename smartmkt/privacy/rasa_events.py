"""Rasa events as JSON (``Event.as_dict()``, what the SQL tracker store writes to ``events.data``
and an event broker publishes), with the customer's personal data masked.

What holds words a customer typed or said, per event type (Rasa 3.6, rasa/shared/core/events.py):
- ``user``: ``text``; ``parse_data.text``; ``parse_data.entities[*].value`` (with ``start``/``end``
  moved onto the masked text); ``metadata`` and ``parse_data.metadata`` (a voice turn's ASR
  details, anything a channel adds);
- ``bot``: ``text`` (a reply may quote the customer: 'I couldn't find "..."'); its ``data`` holds the
  action's buttons and custom payload, built from the catalog, and is left as it is;
- ``slot``: ``value`` (slots filled from entities);
- ``entities``: ``entities[*].value``;
- ``action``: ``action_text`` (end-to-end training's bot text);
- every event: ``metadata``.
Identifiers in metadata (``model_id``, ``assistant_id``, ``message_id``, ``customer.ref``...) are
kept as they are. ``mask_events`` masks a turn's events together: what a customer message held is
masked in the slots and replies of the same turn that repeat it, even a piece the NLU cut out of it.

The standard library only (and ``redact``): used by Rasa's tracker store in the bot environment.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smartmkt.privacy.redact import Redactor

# The action that erases a customer's data (actions/actions.py ActionEraseData). When it has
# erased (the customer confirmed), it returns AllSlotsReset; when the customer cancelled, it
# does not. The tracker store then drops the conversation's events (bot/redacting_store.py).
ERASURE_ACTION = "action_erase_data"
_KEPT_KEYS = frozenset(
    {
        "event",
        "model_id",
        "assistant_id",
        "message_id",
        "sender_id",
        "input_channel",
        "channel",
        "name",
        "intent",
        "entity",
        "role",
        "group",
        "extractor",
        "processors",
        "utter_action",
        "template_name",
        "policy",
        "timestamp",
        "ref",  # the customer a session is bound to (metadata.customer.ref): an identifier
        "customer_ref",
    }
)


def _metadata(value: Any, redactor: Redactor) -> Any:
    """Strings in a metadata tree masked, identifiers kept."""
    if isinstance(value, Mapping):
        return {k: v if k in _KEPT_KEYS else _metadata(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_metadata(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor.redact(value)
    return value


def _parse_data(parse: dict[str, Any], text: str | None, redactor: Redactor) -> None:
    """``parse_data`` in place: its text and entities masked as the event's text is."""
    original = parse.get("text") if isinstance(parse.get("text"), str) else text
    redaction = redactor.redaction(original or "")
    if isinstance(parse.get("text"), str):
        parse["text"] = redaction.text
    if isinstance(parse.get("entities"), list):
        parse["entities"] = redactor.mask_entities(redaction, parse["entities"])
    if "metadata" in parse:
        parse["metadata"] = _metadata(parse["metadata"], redactor)


def mask_event(data: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A copy of one event's JSON with the customer's personal data masked (the module doc says
    where); the event itself is left as it was."""
    masked = copy.deepcopy(dict(data))
    if not redactor.enabled:
        return masked
    kind = masked.get("event")
    if isinstance(masked.get("text"), str) and kind in ("user", "bot"):
        masked["text"] = redactor.redact(masked["text"])
    if kind == "user" and isinstance(masked.get("parse_data"), dict):
        _parse_data(masked["parse_data"], data.get("text"), redactor)
    elif kind == "slot" and "value" in masked:
        masked["value"] = redactor.value(masked["value"])
    elif kind == "entities" and isinstance(masked.get("entities"), list):
        masked["entities"] = [
            {**e, "value": redactor.value(e.get("value"))} if isinstance(e, dict) else e
            for e in masked["entities"]
        ]
    elif kind == "action" and isinstance(masked.get("action_text"), str):
        masked["action_text"] = redactor.redact(masked["action_text"])
    if "metadata" in masked:
        masked["metadata"] = _metadata(masked["metadata"], redactor)
    return masked


def _leaks(user: Mapping[str, Any], redactor: Redactor) -> dict[str, str]:
    """What of a user event could show up again in later events of the turn: each piece of
    personal data found in its text, and each entity value the NLU cut from one ("doe" out of
    "jane.doe@example.com", which a slot or a reply may repeat), with the mask it stands for."""
    parse: Mapping[str, Any] = user["parse_data"] if isinstance(user.get("parse_data"), Mapping) else {}
    text = user.get("text") if isinstance(user.get("text"), str) else parse.get("text")
    if not isinstance(text, str):
        return {}
    redaction = redactor.redaction(text)
    leaks = {text[s.start : s.end]: s.mask for s in redaction.spans}
    for entity in parse.get("entities") or []:
        if not isinstance(entity, Mapping):
            continue
        start, end, value = entity.get("start"), entity.get("end"), entity.get("value")
        if isinstance(start, int) and isinstance(end, int) and isinstance(value, str) and len(value) > 1:
            masks = [s.mask for s in redaction.spans if s.start < end and start < s.end]
            if masks:
                leaks[value] = " ".join(masks)
    return leaks


def _without(value: Any, leaks: Mapping[str, str]) -> Any:
    """``value`` with every whole-word occurrence of a leaked piece replaced by its mask."""
    if isinstance(value, str):
        for piece, mask in sorted(leaks.items(), key=lambda kv: -len(kv[0])):
            if piece in value:
                value = re.sub(rf"(?<!\w){re.escape(piece)}(?!\w)", mask.replace("\\", "\\\\"), value)
        return value
    if isinstance(value, list):
        return [_without(v, leaks) for v in value]
    if isinstance(value, dict):
        return {k: _without(v, leaks) for k, v in value.items()}
    return value


def mask_events(events: Sequence[Mapping[str, Any]], redactor: Redactor) -> list[dict[str, Any]]:
    """A turn's events (in order) masked as ``mask_event`` does, and more: what a customer message
    held that later events of the turn repeat (a slot filled from an entity cut out of an e-mail
    address, a reply quoting it) is masked there too."""
    leaks: dict[str, str] = {}
    masked = []
    for data in events:
        if data.get("event") == "user" and redactor.enabled:
            leaks.update(_leaks(data, redactor))
        event = mask_event(data, redactor)
        kind = event.get("event")
        if leaks and kind in ("slot", "entities", "bot", "action"):
            field = {"slot": "value", "entities": "entities", "bot": "text", "action": "action_text"}[kind]
            if field in event:
                event[field] = _without(event[field], leaks)
        masked.append(event)
    return masked


def erasure_confirmed(events: Iterable[Mapping[str, Any]]) -> bool:
    """True when these events (a turn's, as dicts) hold the erasure action followed, before the
    next action, by its slot reset: the customer's data was erased in this turn."""
    in_erasure = False
    for event in events:
        kind = event.get("event")
        if kind == "action":
            in_erasure = event.get("name") == ERASURE_ACTION
        elif kind == "reset_slots" and in_erasure:
            return True
    return False


__all__ = ["ERASURE_ACTION", "erasure_confirmed", "mask_event", "mask_events"]
