"""Rich progress bars behind the plain ``progress(label, done, total)`` callbacks."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
# A message written to a pipe or a log is one line: Rich would otherwise wrap it at 80 columns
# (or $COLUMNS) and split a path or a phrase in two. A terminal still wraps at its width.
console.soft_wrap = not console.is_terminal


class _LoggedStatus:
    """What ``status`` gives when stderr is a pipe or a log: each message on its own line, with
    the time since the start, so a run left in the background for hours shows where it is."""

    def __init__(self, message: str) -> None:
        self.started = time.monotonic()
        self.update(message)

    def update(self, message: str) -> None:
        elapsed = int(time.monotonic() - self.started)
        console.print(
            f"[{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {message}",
            markup=False,
            highlight=False,
        )


@contextmanager
def status(message: str) -> Iterator[Any]:
    """A spinner with ``message`` on a terminal (``.update(message)`` replaces it); elsewhere, one
    timestamped line per message (a spinner written to a log shows nothing)."""
    if console.is_terminal:
        with console.status(message, spinner="dots") as spinner:
            yield spinner
    else:
        yield _LoggedStatus(message)


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Any]:
    """Yields ``update(label, done, total)``; one bar per label, drawn on stderr."""
    if not enabled:
        yield lambda *_args: None
        return
    with Progress(
        TextColumn("[bold]{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as bars:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int | None) -> None:
            if label not in tasks:
                tasks[label] = bars.add_task(label, total=total)
            bars.update(tasks[label], completed=done, total=total)

        yield update


@contextmanager
def counting_bars(enabled: bool = True, totals: dict[str, int] | None = None) -> Iterator[Any]:
    """Yields ``advance(label, n)`` for callbacks that report increments rather than totals."""
    done: dict[str, int] = {}
    with progress_bars(enabled) as update:

        def advance(label: str, n: int) -> None:
            done[label] = done.get(label, 0) + n
            update(label, done[label], (totals or {}).get(label))

        yield advance
