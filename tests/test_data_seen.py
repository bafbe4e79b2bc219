"""SeenHashes against a plain Python set, across many calls (runs merged along the way)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from smartmkt.data.seen import SeenHashes


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3)), max_size=40), max_size=12),
    st.sampled_from([10**9, 25]),
)
def test_first_sight_matches_a_set(batches: list[list[tuple[int, int]]], memory_rows: int) -> None:
    """In memory, and spilling to disk past ``memory_rows`` (a file larger than memory)."""
    seen_set: set[tuple[int, int]] = set()
    seen = SeenHashes(memory_rows=memory_rows)
    for batch in batches:
        a = np.array([x for x, _ in batch], dtype=np.uint64)
        b = np.array([y for _, y in batch], dtype=np.uint64)
        want = []
        for pair in batch:
            want.append(pair not in seen_set)
            seen_set.add(pair)
        assert seen.first_sight(a, b).tolist() == want
    assert len(seen) == len(seen_set)
    seen.close()


def test_hashes_beyond_int64_survive_the_disk() -> None:
    seen = SeenHashes(memory_rows=1)
    big = np.array([2**64 - 1, 2**63, 5], dtype=np.uint64)
    assert seen.first_sight(big, big).tolist() == [True, True, True]
    assert seen.first_sight(big, big).tolist() == [False, False, False]
    seen.close()
