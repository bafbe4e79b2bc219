"""Run a generator ahead of its consumer, so reading and cleaning the next chunk overlaps with
writing the current one: in a worker thread (polars releases the GIL while it works), or for
large files in a child process, which keeps the writer's Python work off the worker's GIL.

The queue is bounded, so at most ``depth`` prepared chunks wait in memory. An exception in the
worker is raised in the consumer; a consumer that stops early (an error, Ctrl-C) stops the
worker at its next step.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def prefetch(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(_Failure(exc))
            return
        put(_Done())

    worker = threading.Thread(target=work, name="import-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetch_process(
    produce: Callable[..., Iterable[T]], args: tuple[Any, ...], depth: int = 2
) -> Iterator[T]:
    """Like ``prefetch``, but ``produce(*args)`` runs in a child process (a fresh interpreter,
    so it has its own GIL and its own polars thread pool); items come back pickled."""
    context = multiprocessing.get_context("spawn")
    slots = context.Queue(maxsize=depth)
    child = context.Process(target=_produce, args=(produce, args, slots), name="import-prepare", daemon=True)
    child.start()
    try:
        while True:
            try:
                item = slots.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the preparing process died (exit code {child.exitcode})") from None
                continue
            if isinstance(item, _Done):
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join(timeout=5)
        slots.close()


class _Done:
    """The end of the items (a class, not a bare object(), so it survives pickling)."""


def _produce(produce: Callable[..., Iterable[Any]], args: tuple[Any, ...], slots: Any) -> None:
    try:
        for item in produce(*args):
            slots.put(item)
    except KeyboardInterrupt:  # the parent got it too and decides what happens
        return
    except BaseException as exc:
        slots.put(_Failure(exc))
        return
    slots.put(_Done())
