"""Start Rasa (``rasa run ...``) with one performance fix and three socket.io channel fixes;
runs in the bot environment.

Rasa 3.6 validates every action-server response with ``jsonschema.validate(result, schema)``,
which re-checks the (large, constant) events schema against the JSON-Schema meta-schema on
every call: measured with py-spy, that was 47% of the Rasa server's CPU per chat turn. Here the
schema is checked once and one validator is reused; responses are validated exactly as before
and an invalid response still raises the same ValidationError with Rasa's message.

The socket.io channel (the web chat) does not work as shipped on this Python and these libraries:
- python-socketio 5.18 made ``AsyncServer.enter_room`` a coroutine, which Rasa 3.6 calls without
  ``await``: with ``session_persistence`` the socket never joins its session's room, so no reply
  reaches the browser. Here it joins at once (and stays awaitable).
- Rasa sends a custom payload as ``sio.emit(event, **json_message)``, a TypeError for any
  payload that is not ``{"data": ...}`` (ours: ``{"type": "recommendations", ...}``). Here it is
  sent as ``{"custom": payload}``, the shape the REST channel (and POST /voice) return.
- Sanic 21.12 passes bare coroutines to ``asyncio.wait``, which Python 3.11 refuses: every
  websocket upgrade failed. Its websocket module gets a ``wait`` that wraps them in tasks.

Usage: python serve.py run --model ... (any ``rasa`` arguments).
"""

from typing import Any


def _install_cached_action_validation() -> None:
    from jsonschema import ValidationError
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    validator_class = validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    original = RemoteAction._validate_action_result

    def validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            validator.validate(result)
        except ValidationError:
            return original(self, result)  # Rasa's own path builds its error message
        return True

    RemoteAction._validate_action_result = validate_action_result


def _install_socketio_fixes() -> None:
    import asyncio
    import types

    import socketio
    from rasa.core.channels.socketio import SocketIOOutput
    from sanic.server.websockets import impl

    def enter_room(self: Any, sid: str, room: str, namespace: Any = None) -> "asyncio.Future[None]":
        self.manager.basic_enter_room(sid, namespace or "/", room)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    socketio.AsyncServer.enter_room = enter_room

    async def send_custom_json(self: Any, recipient_id: str, json_message: dict[str, Any], **_: Any) -> None:
        await self.sio.emit(self.bot_message_evt, {"custom": json_message}, room=recipient_id)

    SocketIOOutput.send_custom_json = send_custom_json

    async def wait(aws: Any, **kwargs: Any) -> Any:
        return await asyncio.wait([asyncio.ensure_future(a) for a in aws], **kwargs)

    patched = types.ModuleType("asyncio")
    patched.__dict__.update(asyncio.__dict__)
    patched.wait = wait  # type: ignore[attr-defined]
    impl.asyncio = patched


if __name__ == "__main__":
    from rasa.__main__ import main

    _install_cached_action_validation()
    _install_socketio_fixes()
    main()
