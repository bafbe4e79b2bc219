"""Rich progress bars behind the plain ``progress(label, done, total)`` callbacks."""

from __future__ import annotations

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
