"""The item-to-item term (EASE on the training purchases) that re-ranks the index's candidates."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from smartmkt.recommend.item_item import DECAY, ItemItem, ease_weights


def _pairs(rng: np.random.Generator) -> list[list[int]]:
    """Customers buy 0 with 1, 2 with 3, 4 with 5 (in either order), plus a random item 6-19."""
    histories = []
    for n in range(300):
        a = 2 * (n % 3)
        pair = [a, a + 1] if n % 2 else [a + 1, a]
        histories.append([*pair, int(rng.integers(6, 20))])
    return histories


def test_ease_weights_are_the_closed_form() -> None:
    """B = I - P diag(1/diag P), P = (X'X + l2 I)^-1: checked against the formula written out."""
    x = sp.csr_matrix(np.random.default_rng(1).random((30, 6)) > 0.6, dtype=np.float32)
    p = np.linalg.inv(x.T.toarray() @ x.toarray() + 10.0 * np.eye(6))
    expected = np.eye(6) - p / np.diag(p)
    assert np.allclose(ease_weights(x, 10.0), expected, atol=1e-5)
    assert np.all(np.diag(ease_weights(x, 10.0)) == 0)


def test_a_history_lifts_what_is_bought_with_it() -> None:
    model = ItemItem.fit(_pairs(np.random.default_rng(0)), 20)
    every = np.arange(20)
    assert int(np.argmax(model.scores([2], every))) == 3
    assert int(np.argmax(model.scores([5], every))) == 4
    # the latest purchase weighs most: after 0 then 2, 3 is lifted more than 1
    both = model.scores([0, 2], every)
    assert both[3] > both[1] > 0
    assert np.allclose(both, DECAY * model.scores([0], every) + model.scores([2], every), atol=1e-6)
    assert np.allclose(model.scores([0, 2, 0], every), model.scores([2, 0], every))  # latest counts
    assert not model.scores([], every).any()


def test_it_covers_the_most_bought_items_and_keeps_the_strongest_weights() -> None:
    histories = _pairs(np.random.default_rng(0))
    model = ItemItem.fit(histories, 20, max_items=6, keep=2)
    counts = np.bincount([p for h in histories for p in h], minlength=20)
    covered = set(np.argsort(-counts, kind="stable")[:6].tolist())
    rows, cols = model.weights.nonzero()
    assert set(rows.tolist()) <= covered and set(cols.tolist()) <= covered
    assert max(np.diff(model.weights.indptr)) <= 2
    assert ItemItem.fit([[3]], 20).weights.nnz == 0  # one item: nothing to learn
