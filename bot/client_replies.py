"""What each socket.io client is sent of a reply (installed by run_rasa.py; bot environment).

A reply of the custom actions (actions/replies.py) holds two renderings of the same products:
smartmkt's own cards (``custom``: prices, offers, buy / more like this / no thanks buttons) and
Rasa's standard generic-template carousel (``attachment``). A client renders one of them:

- smartmkt's chat page and widget declare ``CARDS_CAPABILITY`` in every message's
  ``metadata.capabilities``: they get the ``custom`` payload and no carousel.
- Any other client (the stock rasa-webchat, Rasa's chatroom, a shop's own socket.io client) gets
  the carousel and no ``custom`` payload: a client that does not know it renders an empty
  bubble (rasa-webchat also keeps its typing indicator on for ever). When the reply also asks a
  question with buttons (an offer's yes/no), the carousel comes before the question, so the
  buttons end the turn.

Each message sent to smartmkt's own clients carries an ``id``. Every socket of a chat session
gets the bot's messages (they share its room): the ids let the tabs of one browser that show the
same conversation keep it once each, whichever tab a message reached first (storage.js).

The REST channel returns every part (it is JSON for programs; POST /voice and the tests read
``custom`` from it). Rasa stores the whole reply either way: the console reads the offers a
reply showed from its ``custom`` payload.
"""

import uuid
from typing import Any

CARDS_CAPABILITY = "smartmkt-cards"


def renders_cards(metadata: Any) -> bool:
    """Whether the client that sent a message with this metadata renders smartmkt's cards."""
    capabilities = metadata.get("capabilities") if isinstance(metadata, dict) else None
    return isinstance(capabilities, list) and CARDS_CAPABILITY in capabilities


def install() -> None:
    from rasa.core.channels.socketio import SocketIOOutput
    from rasa.core.processor import MessageProcessor

    handle_message = MessageProcessor.handle_message
    send_response = SocketIOOutput.send_response
    send_message = SocketIOOutput._send_message

    async def handle_message_for_client(self: Any, message: Any) -> Any:
        if isinstance(message.output_channel, SocketIOOutput):
            message.output_channel.renders_cards = renders_cards(message.metadata)
        return await handle_message(self, message)

    async def send_response_for_client(self: Any, recipient_id: str, message: dict[str, Any]) -> None:
        if getattr(self, "renders_cards", False):
            await send_response(self, recipient_id, {k: v for k, v in message.items() if k != "attachment"})
            return
        message = {k: v for k, v in message.items() if k != "custom"}
        attachment, text = message.get("attachment"), message.get("text")
        if attachment and text and (message.get("buttons") or message.get("quick_replies")):
            *before, question = str(text).strip().split("\n\n")
            if before:
                await self.send_text_message(recipient_id, "\n\n".join(before))
            await self.send_attachment(recipient_id, attachment)
            message = {**{k: v for k, v in message.items() if k != "attachment"}, "text": question}
        await send_response(self, recipient_id, message)

    async def send_message_for_client(self: Any, socket_id: str, response: Any) -> None:
        if getattr(self, "renders_cards", False) and isinstance(response, dict):
            response = {**response, "id": uuid.uuid4().hex}
        await send_message(self, socket_id, response)

    MessageProcessor.handle_message = handle_message_for_client
    SocketIOOutput.send_response = send_response_for_client
    SocketIOOutput._send_message = send_message_for_client
