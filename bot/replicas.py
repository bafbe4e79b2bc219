"""What Rasa needs to run as one of several replicas behind a balancer; runs in the bot
environment (installed by bot/run_rasa.py, the REST channel named in bot/credentials.yml).

A replica can die in the middle of a turn (``kill -9``, a crash, a host lost). The client then
gets no answer, or HAProxy's 502, and must be able to send the same message again without it
being handled twice. So:

- **Messages sent again are answered, not handled again.** A REST client may name its message
  (``"message_id"`` beside ``"message"``, 1-64 characters). Rasa keeps that id on the message's
  event. When a message comes with an id the conversation already holds, the turn is not run
  again: the replies stored after it are sent back (as stored: masked if the customer's personal
  data was masked). The check runs inside the conversation's lock, so the first copy's turn has
  finished, or its lock has expired, before the second copy looks (Rasa's lock store in Redis).
- **A turn that fails is a 503 with a JSON reason, never a 200 with no reply.** Rasa 3.6's REST
  channel logs any error and answers ``[]``. The client cannot tell a failure from silence.
  Here the lock store, the tracker store or anything else failing ends in
  ``503 {"error": ..., "retry": true}``, and the client may send the same message id again.
- **A dead replica's lock does not hold a conversation for ever.** A replica killed mid-turn
  leaves its ticket behind, and the conversation's next message waits for it to expire:
  ``SMARTMKT_CONVERSATION_LOCK_S`` (``TICKET_LOCK_LIFETIME``, default 60 s, Rasa's own). A
  ticket's life counts from the message's arrival, so a message's wait plus its turn must stay
  under it: an expired ticket lets the next message in while the turn still runs (30 s was too
  short for 24 clients on 2 cores in CI).
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request

log = logging.getLogger("smartmkt.replicas")

MAX_MESSAGE_ID = 64
CLIENT_NAMED = "_smartmkt_client_message_id"  # set on a UserMessage whose id the client chose


def set_lock_lifetime() -> None:
    """Rasa reads ``TICKET_LOCK_LIFETIME`` when its lock store module is first imported."""
    os.environ.setdefault("TICKET_LOCK_LIFETIME", os.environ.get("SMARTMKT_CONVERSATION_LOCK_S", "60"))


class ReliableRestInput(RestInput):
    """Rasa's REST channel (same URL, same body) with client message ids and 503 on failure."""

    @classmethod
    def name(cls) -> str:
        return "rest"

    def blueprint(self, on_new_message: Any) -> Blueprint:
        webhook = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(_request: Request) -> Any:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> Any:
            body = request.json if isinstance(request.json, dict) else {}
            message_id = body.get("message_id")
            if message_id is not None and not (
                isinstance(message_id, str) and 0 < len(message_id) <= MAX_MESSAGE_ID
            ):
                return response.json(
                    {"error": f"message_id must be 1-{MAX_MESSAGE_ID} characters"}, status=400
                )
            collector = CollectingOutputChannel()
            message = UserMessage(
                self._extract_message(request),
                collector,
                await self._extract_sender(request),
                input_channel=self._extract_input_channel(request),
                metadata=self.get_metadata(request),
                message_id=message_id,
            )
            setattr(message, CLIENT_NAMED, message_id is not None)
            try:
                await on_new_message(message)
            except Exception as exc:  # the client may send the same message id again
                log.exception("message from %r failed", message.sender_id)
                reason = f"{type(exc).__name__}: {exc}"[:300]
                return response.json(
                    {"error": "the message could not be handled", "reason": reason, "retry": True}, status=503
                )
            return response.json(collector.messages)

        return webhook


# The id of the client-named message being handled in this task, until the turn's own tracker
# read has looked for it (handle_once sets it, fetch_checking consumes it).
_client_message_id: ContextVar[str | None] = ContextVar("smartmkt_client_message_id", default=None)


class _AlreadyHandled(Exception):
    """The conversation already holds the message: ``after`` are the events that followed it."""

    def __init__(self, after: list[Any]) -> None:
        super().__init__("message handled before")
        self.after = after


def install() -> None:
    """Messages the conversation already holds (by client message id) are answered from it.

    The check looks at the tracker the turn reads anyway (``fetch_tracker_and_update_session``,
    inside the conversation's lock): a message sent with an id costs no second read."""
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.events import BotUttered, UserUttered

    handle_message = MessageProcessor.handle_message
    fetch = MessageProcessor.fetch_tracker_and_update_session

    async def fetch_checking(
        self: Any, sender_id: str, output_channel: Any = None, metadata: Any = None
    ) -> Any:
        tracker = await fetch(self, sender_id, output_channel, metadata)
        message_id = _client_message_id.get()
        if message_id is not None:
            _client_message_id.set(None)  # the turn's own read only
            events = list(tracker.events)
            for index, event in enumerate(events):
                if isinstance(event, UserUttered) and event.message_id == message_id:
                    raise _AlreadyHandled(events[index + 1 :])
        return tracker

    async def handle_once(self: Any, message: Any) -> Any:
        named = message.message_id if getattr(message, CLIENT_NAMED, False) else None
        token = _client_message_id.set(named)
        try:
            return await handle_message(self, message)
        except _AlreadyHandled as handled:
            log.info("message %s of %r was handled before: its replies sent again", named, message.sender_id)
            return await _replay(message, handled.after, UserUttered, BotUttered)
        finally:
            _client_message_id.reset(token)

    MessageProcessor.fetch_tracker_and_update_session = fetch_checking
    MessageProcessor.handle_message = handle_once


async def _replay(message: Any, after: list[Any], user_type: type, bot_type: type) -> Any:
    """The replies stored after a message (up to the next one), sent to its output channel."""
    output = message.output_channel
    for event in after:
        if isinstance(event, user_type):
            break
        if isinstance(event, bot_type):
            reply = {key: value for key, value in event.message().items() if value and key != "recipient_id"}
            await output.send_response(message.sender_id, reply)  # as Rasa sent it: text, then custom
    return output.messages if isinstance(output, CollectingOutputChannel) else None
