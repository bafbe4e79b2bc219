"""Start Rasa (``rasa run ...``) with one performance fix, three socket.io channel fixes and the
reliability fixes below; runs in the bot environment.

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
- Rasa's socket.io accepted a browser from any site; it now checks the page's Origin against
  ``SMARTMKT_ALLOWED_ORIGINS`` (smartmkt's settings).
- What a client is sent of a reply: smartmkt's cards or Rasa's standard carousel
  (bot/client_replies.py).
- Sanic 21.12 passes bare coroutines to ``asyncio.wait``, which Python 3.11 refuses: every
  websocket upgrade failed. Its websocket module gets a ``wait`` that wraps them in tasks.

Reliability (the faults are tested in tests/test_faults.py):
- Action server down, restarting, hanging or failing: Rasa 3.6 logs the error and says nothing, so
  the customer met silence. Here a connection refused is tried again twice (0.2 s, then 0.5 s:
  the request never reached the server, so nothing can run twice), a call gets
  ``SMARTMKT_ACTION_TIMEOUT_S`` (default 20 s; Rasa's was 5 minutes), and when any custom action
  failed while handling a message, the bot ends its answer with the domain's
  ``utter_service_unavailable`` (once). The next message calls the action server again, so the
  bot recovers by itself.
- A message or sender id holding a lone UTF-16 surrogate is made well formed on arrival.
- NLU app down or hanging: Rasa answers its fallback (``utter_default``); its parse request gets
  ``SMARTMKT_NLU_TIMEOUT_S`` (default 10 s; Rasa's aiohttp session waited 5 minutes).
- Tracker store briefly unavailable (PostgreSQL restarting, SQLite locked past its busy
  timeout): Rasa reads and writes are retried with exponential backoff for up to
  ``SMARTMKT_DB_RETRY_S`` (default 30 s). Without this Rasa's FailSafeTrackerStore answered a
  failed read with an empty conversation (slots forgotten) and kept a failed write in memory,
  never in the database (events lost); a write that fails for good now fails the turn (a 503 on
  the REST channel), as does a turn another one interleaved with (bot/redacting_store.py).
  Pooled PostgreSQL connections are pinged before use, so connections a database restart killed
  are replaced rather than failing a turn.

Usage: python run_rasa.py run --model ... (any ``rasa`` arguments).
"""

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

log = logging.getLogger("smartmkt.serve")
T = TypeVar("T")

SERVICE_UNAVAILABLE = "utter_service_unavailable"
CONNECT_RETRIES_S = (0.2, 0.5)


def _env_seconds(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


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
        await self._send_message(recipient_id, {"custom": json_message})

    SocketIOOutput.send_custom_json = send_custom_json

    # Rasa makes its socket.io server with cors_allowed_origins=[] ("no CORS handling"), which
    # also skips Engine.IO's Origin check: any site's page could open the chat's socket. Here it
    # answers the origins smartmkt's settings allow (SMARTMKT_ALLOWED_ORIGINS, as `smartmkt run`
    # passes them) and refuses a browser from any other with a 400 ("Not an accepted origin").
    # A client that sends no Origin (not a browser: the tests, a shop's server) is not refused.
    from rasa.core.channels.socketio import SocketIOInput

    origins = [o for o in os.environ.get("SMARTMKT_ALLOWED_ORIGINS", "").split(",") if o]
    blueprint = SocketIOInput.blueprint

    def blueprint_for_allowed_origins(self: Any, on_new_message: Any) -> Any:
        webhook = blueprint(self, on_new_message)
        if origins:
            self.sio.eio.cors_allowed_origins = origins
            # Rasa's Sanic-CORS (--cors, the same list) writes the CORS headers: Engine.IO's own
            # would double them, and a browser refuses a doubled Access-Control-Allow-Origin
            self.sio.eio._cors_headers = lambda environ: []
        return webhook

    SocketIOInput.blueprint = blueprint_for_allowed_origins

    async def wait(aws: Any, **kwargs: Any) -> Any:
        return await asyncio.wait([asyncio.ensure_future(a) for a in aws], **kwargs)

    patched = types.ModuleType("asyncio")
    patched.__dict__.update(asyncio.__dict__)
    patched.wait = wait  # type: ignore[attr-defined]
    impl.asyncio = patched


def _install_action_server_fallback() -> None:
    import contextvars

    import aiohttp
    from rasa.core.actions import action as rasa_action
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction, create_bot_utterance
    from rasa.core.processor import MessageProcessor

    rasa_action.DEFAULT_REQUEST_TIMEOUT = _env_seconds("SMARTMKT_ACTION_TIMEOUT_S", 20)  # read per call
    # the custom actions that failed while Rasa handles one customer message
    failed: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("failed", default=None)
    run_action, prediction_loop = RemoteAction.run, MessageProcessor._run_prediction_loop

    def never_connected(exc: BaseException | None) -> bool:
        while exc is not None:
            if isinstance(exc, aiohttp.ClientConnectorError):
                return True
            exc = exc.__cause__ or exc.__context__
        return False

    async def run(self: Any, output_channel: Any, nlg: Any, tracker: Any, domain: Any) -> list[Any]:
        for delay in (*CONNECT_RETRIES_S, None):
            try:
                return await run_action(self, output_channel, nlg, tracker, domain)
            except ActionExecutionRejection:
                raise  # the action server's own "not now" (e.g. a form rejecting a slot)
            except Exception as exc:
                if delay is not None and never_connected(exc):
                    await asyncio.sleep(delay)
                    continue
                log.error("custom action %s failed (%s: %s)", self.name(), type(exc).__name__, exc)
                failures = failed.get()
                if failures is not None:
                    failures.append(self.name())
                return []
        raise AssertionError("unreachable")

    async def _run_prediction_loop(self: Any, output_channel: Any, tracker: Any) -> None:
        """Rasa's loop; then, if a custom action failed on the way, one apology (a form's
        validation can fail and then be rejected, so the apology is said here, at the end)."""
        token = failed.set([])
        try:
            await prediction_loop(self, output_channel, tracker)
            failures = failed.get()
        finally:
            failed.reset(token)
        if not failures:
            return
        draft = await self.nlg.generate(SERVICE_UNAVAILABLE, tracker, output_channel.name())
        if not draft:  # a model trained before the response existed
            draft = {"text": "Sorry, part of the shop isn't answering right now. Please try again soon."}
        draft["utter_action"] = SERVICE_UNAVAILABLE
        apology = create_bot_utterance(draft)
        tracker.update(apology)
        await output_channel.send_response(tracker.sender_id, apology.message())
        log.warning("told %s the service is unavailable (%s failed)", tracker.sender_id, ", ".join(failures))

    RemoteAction.run = run
    MessageProcessor._run_prediction_loop = _run_prediction_loop


def _install_well_formed_messages() -> None:
    """Every customer message's text and sender id without lone UTF-16 surrogates (JSON can
    spell one, "\\ud800"): the NLU's tokenizer, the actions' database and the console cannot take
    them (found by tests/test_fuzz_web.py). Each becomes U+FFFD, as smartmkt.wellformed does."""
    import re

    from rasa.core.channels.channel import UserMessage

    surrogate = re.compile("[\ud800-\udfff]")
    init = UserMessage.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if isinstance(self.text, str):
            self.text = surrogate.sub("\ufffd", self.text)
        if isinstance(self.sender_id, str):
            self.sender_id = surrogate.sub("\ufffd", self.sender_id)

    UserMessage.__init__ = __init__


def _install_nlu_timeout() -> None:
    import aiohttp
    from rasa.core import constants
    from rasa.core.http_interpreter import RasaNLUHttpInterpreter
    from rasa.utils.endpoints import EndpointConfig

    timeout = aiohttp.ClientTimeout(total=_env_seconds("SMARTMKT_NLU_TIMEOUT_S", 10))

    def __init__(self: Any, endpoint_config: Any = None) -> None:
        self.session = aiohttp.ClientSession(timeout=timeout)
        self.endpoint_config = endpoint_config or EndpointConfig(constants.DEFAULT_SERVER_URL)

    RasaNLUHttpInterpreter.__init__ = __init__


async def _retrying(what: str, attempt: Callable[[], Awaitable[T]], budget_s: float) -> T:
    """``attempt()`` again with exponential backoff (0.1 s doubling to 2 s) while the database
    is unreachable or locked, for up to ``budget_s``; then the last error."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError

    deadline, delay, failures = time.monotonic() + budget_s, 0.1, 0
    while True:
        try:
            result = await attempt()
        except (DBAPIError, DisconnectionError) as exc:  # not e.g. an IntegrityError: that is no outage
            transient = isinstance(exc, (OperationalError, InterfaceError, DisconnectionError)) or bool(
                getattr(exc, "connection_invalidated", False)
            )
            failures += 1
            if not transient or time.monotonic() + delay > deadline:
                log.error("tracker store: %s failed %d times, giving up: %s", what, failures, exc)
                raise
            log.warning("tracker store: %s failed (%s); retrying in %.1f s", what, type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        else:
            if failures:
                log.warning("tracker store: %s succeeded after %d retries", what, failures)
            return result


def _install_tracker_store_retries() -> None:
    import json

    from rasa.core import tracker_store
    from rasa.core.tracker_store import FailSafeTrackerStore, SQLTrackerStore
    from rasa.shared.nlu.constants import INTENT_NAME_KEY

    budget = _env_seconds("SMARTMKT_DB_RETRY_S", 30)
    engine_kwargs = tracker_store.create_engine_kwargs

    def create_engine_kwargs(url: Any) -> dict[str, Any]:
        return {**engine_kwargs(url), "pool_pre_ping": True}

    tracker_store.create_engine_kwargs = create_engine_kwargs
    retrieve, keys = SQLTrackerStore._retrieve, SQLTrackerStore.keys

    async def _retrieve(self: Any, sender_id: str, fetch_events_from_all_sessions: bool) -> Any:
        def read() -> Awaitable[Any]:
            return retrieve(self, sender_id, fetch_events_from_all_sessions)

        return await _retrying(f"reading {sender_id!r}", read, budget)

    async def keys_retrying(self: Any) -> Any:
        return await _retrying("listing conversations", lambda: keys(self), budget)

    def store_new_events(self: Any, tracker: Any) -> list[dict[str, Any]]:
        """Rasa 3.6.21's SQLTrackerStore.save without the event broker: one transaction that
        adds the events the database does not hold yet (so it can simply run again). Returns
        the events it wrote, as written (masked by redacting_store)."""
        written: list[dict[str, Any]] = []
        with self.session_scope() as session:
            for event in self._additional_events(session, tracker):
                data = event.as_dict()
                session.add(
                    self.SQLEvent(
                        sender_id=tracker.sender_id,
                        type_name=event.type_name,
                        timestamp=data.get("timestamp"),
                        intent_name=data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
                        action_name=data.get("name"),
                        data=json.dumps(data),
                    )
                )
                written.append(data)
            session.commit()
        return written

    async def save(self: Any, tracker: Any) -> None:
        """Write the turn (retried while the database is away), then publish what was written.
        Rasa publishes first: a write that then failed left events in RabbitMQ that the table
        never held, and the console counted a turn the client was told had failed (and counted
        it again when the client resent it). Published after the commit, a failed write
        publishes nothing; a replica killed between the commit and the publish leaves events
        only the consumer's sweep of the table finds (smartmkt/console/consumer.py). This also
        spares Rasa's extra read of the whole conversation to diff what is new."""

        async def write() -> list[dict[str, Any]]:
            return store_new_events(self, tracker)

        written = await _retrying(f"saving {tracker.sender_id!r}", write, budget)
        if self.event_broker is not None:
            for data in written:
                self.event_broker.publish({"sender_id": tracker.sender_id, **data})

    SQLTrackerStore._retrieve = _retrieve
    SQLTrackerStore.keys = keys_retrying
    SQLTrackerStore.save = save

    async def save_or_fail(self: Any, tracker: Any) -> None:
        """A write that failed for good (the retries above ran out, or the store refused a turn
        another one interleaved with: redacting_store.ConcurrentTurn) fails the turn: the REST
        channel answers 503 and the client sends the message again. Rasa's FailSafeTrackerStore
        kept such a turn in memory only and answered as if it were stored."""
        await self._tracker_store.save(tracker)

    FailSafeTrackerStore.save = save_or_fail


if __name__ == "__main__":
    import replicas  # beside this file: several replicas behind a balancer (issue 17)

    replicas.set_lock_lifetime()  # before Rasa's lock store module is imported
    from rasa.__main__ import main

    _install_cached_action_validation()
    _install_socketio_fixes()
    _install_action_server_fallback()
    _install_well_formed_messages()
    _install_nlu_timeout()
    _install_tracker_store_retries()
    replicas.install()
    import customer_identity  # beside this file: every customer message checked (issue 7)

    customer_identity.install()
    import client_replies  # beside this file: cards to smartmkt's clients, standard parts to others

    client_replies.install()
    main()
