"""Customer identity inside Rasa (installed by run_rasa.py): every customer message is checked
before Rasa reads or writes its conversation.

- ``MessageProcessor.handle_message`` (REST, socket.io, POST /voice through REST): the message's
  ``metadata.customer_token`` is verified against its sender id with
  ``smartmkt.security.identity.customer_for``. The token is removed from the metadata (never
  stored) and ``metadata.customer = {"ref", "verified"}`` is set in its place; whatever a client
  put under ``customer`` is dropped. The actions take the customer from there, never from the
  sender id. A refused message is not processed: the conversation is neither read nor written;
  REST gets one reply saying so, socket.io nothing.
- socket.io ``session_request``: a socket joins a session's room (and so receives its replies)
  only with a token for that session's customer; otherwise it gets ``session_refused``.

The secret is ``SMARTMKT_CUSTOMER_TOKEN_SECRET`` (``smartmkt run`` and the test stacks set it).
"""

import logging
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # smartmkt.security (stdlib only)

from smartmkt.security.identity import Refused, customer_for

log = logging.getLogger("smartmkt.identity")
REFUSED_REPLY = "This chat session isn't valid any more. Please reload the page to continue."


def _secret() -> str:
    secret = os.environ.get("SMARTMKT_CUSTOMER_TOKEN_SECRET", "")
    if len(secret) < 32:
        raise SystemExit(
            "SMARTMKT_CUSTOMER_TOKEN_SECRET is not set (32+ characters); start with `smartmkt run`"
        )
    return secret


def install() -> None:
    from rasa.core.channels.socketio import SocketIOInput
    from rasa.core.processor import MessageProcessor

    secret = _secret()
    handle_message = MessageProcessor.handle_message

    async def checked_handle_message(self: Any, message: Any) -> Any:
        metadata = dict(message.metadata or {}) if isinstance(message.metadata, dict) else {}
        token = metadata.pop("customer_token", None)
        metadata.pop("customer", None)  # only this hook says who the customer is
        try:
            customer = customer_for(secret, message.sender_id, token)
        except Refused as exc:
            log.warning("refused a %s message to %r: %s", message.input_channel, message.sender_id, exc)
            if message.input_channel != SocketIOInput.name():  # socket.io: the room is not theirs
                await message.output_channel.send_text_message(message.sender_id, REFUSED_REPLY)
            return None
        metadata["customer"] = customer.as_metadata()
        message.metadata = metadata
        return await handle_message(self, message)

    MessageProcessor.handle_message = checked_handle_message

    blueprint = SocketIOInput.blueprint

    def checked_blueprint(self: Any, on_new_message: Any) -> Any:
        webhook = blueprint(self, on_new_message)
        sio, namespace = self.sio, self.namespace or "/"
        session_request = sio.handlers[namespace]["session_request"]

        async def checked_session_request(sid: str, data: Any) -> None:
            data = dict(data) if isinstance(data, dict) else {}
            token = data.pop("customer_token", None)
            if data.get("session_id"):
                try:
                    customer_for(secret, data["session_id"], token)
                except Refused as exc:
                    log.warning("refused socket.io session %r: %s", data["session_id"], exc)
                    await sio.emit("session_refused", {"error": str(exc)}, room=sid)
                    return
            await session_request(sid, data)

        sio.handlers[namespace]["session_request"] = checked_session_request
        return webhook

    SocketIOInput.blueprint = checked_blueprint
