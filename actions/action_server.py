"""Start the action server (``python -m actions.action_server --actions actions ...``, any ``rasa_sdk``
arguments) with the actions' ``run`` methods on worker threads.

rasa-sdk calls a synchronous ``run`` on its event loop, so one action server ran one action at a
time: a recommendation (text encoder, FAISS, the offer policy, a database write that may wait
for SQLite's write lock) held up every other customer's greeting or price question behind it.
Here each synchronous ``run`` goes to the loop's thread pool (``asyncio.to_thread``), so other
requests are served meanwhile; torch, FAISS and SQLite release the GIL while they work or wait.
The actions are safe to run side by side: each call opens its own database session, and the
served models are read-only (swapped under a lock; smartmkt.lifecycle.hot_swap). Coroutine actions (form
validation) are unchanged.

Each worker loads and exercises every model it serves (``ShopAssistant.warm_up``) before it
listens, so ``/health`` answers only once the first customer would be served warm; a model that
fails to load is logged by name and the worker does not start (the supervisor reports it).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import warnings
from collections.abc import Callable
from typing import Any

from rasa_sdk import endpoint as _endpoint
from sanic.response import json as sanic_json

# rasa-sdk 3.21 warns (in each worker, on Rasa's first call) that Rasa 3.6 "might not be
# compatible"; it serves Rasa 3.6.21's action protocol correctly (every action is tested through
# the running product), so the warning is only noise a new user would read as a problem.
warnings.filterwarnings("ignore", message="Your versions of rasa and rasa_sdk might not be compatible")
# rasa-sdk's own factory, taken before install() replaces it (workers import this module afresh)
_rasa_create_app_for_serve = _endpoint.create_app_for_serve


class Threaded:
    """A synchronous ``run`` as a coroutine function that runs it on a worker thread. A class,
    not a closure: rasa-sdk pickles the executor into its Sanic worker process."""

    def __init__(self, run: Callable[..., Any]) -> None:
        self.run = run

    async def __call__(self, dispatcher: Any, tracker: Any, domain: Any) -> Any:
        return await asyncio.to_thread(self.run, dispatcher, tracker, domain)


def threaded(run: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` unchanged if it is a coroutine function, else ``Threaded(run)``."""
    return run if inspect.iscoroutinefunction(run) else Threaded(run)


def warm_up(_app: Any) -> None:
    """A ``before_server_start`` listener: the worker serves nothing until its models are warm."""
    from smartmkt.assistant import WarmUpError, served_assistant

    try:
        timings = served_assistant().warm_up()
    except (WarmUpError, FileNotFoundError) as exc:
        print(f"model not ready: {exc}", flush=True)
        # Sanic's primary process would wait for this worker for ever (and hangs on SIGTERM
        # while it does): end the whole server, so its supervisor sees it exit and reports why
        os.kill(os.getppid(), signal.SIGKILL)
        os._exit(3)
    # printed, not logged: a Sanic worker starts with no logging configured for smartmkt
    print(f"models loaded and warmed (ms): {timings}", flush=True)


def create_app_for_serve(*args: Any, **kwargs: Any) -> Any:
    """rasa-sdk's app factory (run in the primary process and in each worker) plus the warm-up,
    and the served model versions in ``/health``."""
    app = _rasa_create_app_for_serve(*args, **kwargs)
    app.register_listener(warm_up, "before_server_start")
    app.register_middleware(with_model_versions, "response")
    return app


async def with_model_versions(request: Any, response: Any) -> Any:
    """rasa-sdk's ``/health`` ({"status": "ok"}) plus ``models``: the versions this worker serves
    (a promotion reaches every replica: each names the new one once it has loaded it)."""
    if request.path != "/health" or response.status != 200:
        return None
    from smartmkt.assistant import served_versions

    body = json.loads(response.body or b"{}")
    body["models"] = await asyncio.to_thread(served_versions)
    return sanic_json(body)


def install() -> None:
    from rasa_sdk import endpoint
    from rasa_sdk.executor import ActionExecutor

    register = ActionExecutor.register_function

    def register_function(self: ActionExecutor, action_name: str, f: Callable[..., Any]) -> None:
        register(self, action_name, threaded(f))

    ActionExecutor.register_function = register_function  # type: ignore[method-assign]
    # rasa_sdk.endpoint.run builds its AppLoader from the module's name at call time
    endpoint.create_app_for_serve = create_app_for_serve


if __name__ == "__main__":
    from rasa_sdk.__main__ import main

    install()
    main()
