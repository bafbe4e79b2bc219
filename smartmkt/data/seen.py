"""What an import has already read, in bounded memory: 128-bit hashes in sorted numpy runs.

A 5-million-row file needs 80 MB here, where a Python set of the rows would need gigabytes.
Runs are merged like an LSM tree (a new run is merged into the last while it is at least half
its size), so a lookup is a binary search in a few sorted arrays. Past ``memory_rows`` hashes
(a file larger than memory) they move to a SQLite table in a temporary file, and lookups
continue there.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

SEEDS = (0x5EED_0001, 0x5EED_0002)


def row_hashes(frame: pl.DataFrame, columns: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Two independent 64-bit hashes of each row's values in ``columns`` (nulls distinguished)."""
    if not columns:
        zeros = np.zeros(frame.height, dtype=np.uint64)
        return zeros, zeros
    row = pl.struct([pl.col(c) for c in columns])
    first, second = (frame.select(row.hash(seed=s)).to_series().to_numpy() for s in SEEDS)
    return first, second


MEMORY_ROWS = 20_000_000  # 320 MB of hashes before they go to disk


class SeenHashes:
    def __init__(self, memory_rows: int = MEMORY_ROWS) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []
        self.memory_rows = memory_rows
        self._disk: sqlite3.Connection | None = None
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._on_disk = 0

    def __len__(self) -> int:
        return self._on_disk + sum(len(a) for a, _ in self._runs)

    def close(self) -> None:
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None

    def first_sight(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        """For each hash pair: True if it was never seen before (in earlier calls or earlier in
        this one); all of them are remembered."""
        order = np.lexsort((second, first))  # stable: equal pairs stay in file order
        a, b = first[order], second[order]
        new_in_batch = np.ones(len(a), dtype=bool)
        new_in_batch[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        fresh = new_in_batch & ~self._contains(a, b)
        if self._disk is not None:
            fresh[fresh] = ~self._on_disk_contains(a[fresh], b[fresh])
        result = np.empty(len(a), dtype=bool)
        result[order] = fresh
        self._add(a[fresh], b[fresh])
        if sum(len(run) for run, _ in self._runs) > self.memory_rows:
            self._spill()
        return result

    def _spill(self) -> None:
        if self._disk is None:
            self._folder = tempfile.TemporaryDirectory(prefix="smartmkt-seen-")
            self._disk = sqlite3.connect(Path(self._folder.name) / "seen.db", isolation_level=None)
            self._disk.execute("PRAGMA journal_mode=OFF")  # a scratch file: nothing to recover
            self._disk.execute("PRAGMA synchronous=OFF")
            self._disk.execute("CREATE TABLE seen (a INTEGER, b INTEGER, PRIMARY KEY (a, b)) WITHOUT ROWID")
        self._disk.execute("BEGIN")
        for run_a, run_b in self._runs:
            pairs = zip(run_a.view(np.int64).tolist(), run_b.view(np.int64).tolist(), strict=True)
            self._disk.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", pairs)
            self._on_disk += len(run_a)
        self._disk.execute("COMMIT")
        self._runs = []

    def _on_disk_contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        assert self._disk is not None
        found = np.zeros(len(a), dtype=bool)
        self._disk.execute("CREATE TEMP TABLE IF NOT EXISTS probe (i INTEGER, a INTEGER, b INTEGER)")
        self._disk.execute("DELETE FROM probe")
        rows = zip(range(len(a)), a.view(np.int64).tolist(), b.view(np.int64).tolist(), strict=True)
        self._disk.executemany("INSERT INTO probe VALUES (?, ?, ?)", rows)
        hits = [i for (i,) in self._disk.execute("SELECT i FROM probe JOIN seen USING (a, b)")]
        found[hits] = True
        return found

    def _contains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """One binary search per run; the entries after the first with the same first hash (two
        different rows whose first 64 bits agree: next to never) are compared one by one."""
        found = np.zeros(len(a), dtype=bool)
        for run_a, run_b in self._runs:
            at = np.minimum(np.searchsorted(run_a, a, side="left"), len(run_a) - 1)
            same_a = run_a[at] == a
            found |= same_a & (run_b[at] == b)
            for i in np.flatnonzero(same_a & ~found):
                k = at[i] + 1
                while k < len(run_a) and run_a[k] == a[i] and not found[i]:
                    found[i] = run_b[k] == b[i]
                    k += 1
        return found

    def _add(self, a: np.ndarray, b: np.ndarray) -> None:
        if not len(a):
            return
        self._runs.append((a, b))
        while len(self._runs) > 1 and len(self._runs[-1][0]) * 2 >= len(self._runs[-2][0]):
            (a2, b2), (a1, b1) = self._runs.pop(), self._runs.pop()
            self._runs.append(_merged(a1, b1, a2, b2))


def _merged(a1: np.ndarray, b1: np.ndarray, a2: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two runs sorted by their first hash, merged (the second's entries after the first's
    equal ones) into new arrays: where each of the second run's entries goes is a binary search,
    so the merge holds the result and one index per entry of the second run, not a sort's
    copies of everything (the largest merge of a 5M-row file sets the import's peak memory)."""
    size = len(a1) + len(a2)
    at = np.searchsorted(a1, a2, side="right") + np.arange(len(a2))
    first = np.ones(size, dtype=bool)
    first[at] = False
    merged = []
    for one, two in ((a1, a2), (b1, b2)):
        out = np.empty(size, dtype=one.dtype)
        out[at] = two
        out[first] = one
        merged.append(out)
    return merged[0], merged[1]
