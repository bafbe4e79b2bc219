"""SeenHashes against a plain Python set, across many calls (runs merged along the way)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from smartmkt.data.seen import SeenHashes


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3)), max_size=40), max_size=12))
def test_first_sight_matches_a_set(batches: list[list[tuple[int, int]]]) -> None:
    seen_set: set[tuple[int, int]] = set()
    seen = SeenHashes()
    for batch in batches:
        a = np.array([x for x, _ in batch], dtype=np.uint64)
        b = np.array([y for _, y in batch], dtype=np.uint64)
        want = []
        for pair in batch:
            want.append(pair not in seen_set)
            seen_set.add(pair)
        assert seen.first_sight(a, b).tolist() == want
    assert len(seen) == len(seen_set)
