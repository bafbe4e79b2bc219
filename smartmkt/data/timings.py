"""Where an import's time goes, by stage: seconds summed per name, so ``bench import`` can say
which stage bounds it. Plain data (a dict), so it travels with a prepared chunk from the
preparing process to the writer."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
_END = object()


class Timings(dict[str, float]):
    """Seconds per stage name ("read", "clean.money", "write" ...), added up across chunks."""

    def add(self, name: str, seconds: float) -> None:
        self[name] = self.get(name, 0.0) + seconds

    def merge(self, other: Mapping[str, float]) -> None:
        for name, seconds in other.items():
            self.add(name, seconds)

    @contextmanager
    def time(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - start)

    def each(self, items: Iterable[T], name: str) -> Iterator[T]:
        """``items``, each ``next`` timed as ``name`` (what waiting for the next one costs)."""
        iterator = iter(items)
        while True:
            with self.time(name):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item  # type: ignore[misc]

    def rounded(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in sorted(self.items())}
