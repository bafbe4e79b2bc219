"""Start the action server (``python -m actions.serve --actions actions ...``, any ``rasa_sdk``
arguments) with the actions' ``run`` methods on worker threads.

rasa-sdk calls a synchronous ``run`` on its event loop, so one action server ran one action at a
time: a recommendation (text encoder, FAISS, the offer policy, a database write that may wait
for SQLite's write lock) held up every other customer's greeting or price question behind it.
Here each synchronous ``run`` goes to the loop's thread pool (``asyncio.to_thread``), so other
requests are served meanwhile; torch, FAISS and SQLite release the GIL while they work or wait.
The actions are safe to run side by side: each call opens its own database session, and the
served models are read-only (swapped under a lock; smartmkt.serving). Coroutine actions (form
validation) are unchanged.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


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


def install() -> None:
    from rasa_sdk.executor import ActionExecutor

    register = ActionExecutor.register_function

    def register_function(self: ActionExecutor, action_name: str, f: Callable[..., Any]) -> None:
        register(self, action_name, threaded(f))

    ActionExecutor.register_function = register_function  # type: ignore[method-assign]


if __name__ == "__main__":
    from rasa_sdk.__main__ import main

    install()
    main()
