"""The import benchmark's file stays what it is: ``smartmkt bench import`` figures compare across
commits only while the generated export (its rows, and its shares of messy values) is the same.
A change to the generator that changes the file must change these hashes on purpose, and say
so in docs/benchmarks.md."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from smartmkt.bench.imports import GENERATE_ROWS, generate_orders

PINNED = {
    # rows: sha256 of the file for seed 7; 600,000 rows span two generation chunks
    30_000: "28b06c6da26c4509b081db38aa73349c693ad79824ec9c5e817d526b04b99c56",
    600_000: "ebe9b97049ca853ce5bb649f6b1a95bad9b3ee552f19a4b56f015b06d0f89535",
}


@pytest.mark.parametrize("rows", sorted(PINNED))
def test_the_generated_export_is_pinned(tmp_path: Path, rows: int) -> None:
    path = tmp_path / "orders.csv"
    assert generate_orders(path, rows, seed=7) == rows
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PINNED[rows]


def test_the_pinned_sizes_cross_a_generation_chunk() -> None:
    assert max(PINNED) > GENERATE_ROWS > min(PINNED)
