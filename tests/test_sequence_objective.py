"""The sequence transformer's training objective: the next purchase, or each of the next few."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smartmkt.recommend.sequential import SequenceConfig, SequenceEncoder, _batch_loss


def _by_hand(model: SequenceEncoder, history: list[int], horizon: int) -> float:
    """Mean over steps of the mean -log p of each of the next ``horizon`` purchases, with what was
    bought by then left out of the softmax: the objective written out one step at a time."""
    n = model.n_items
    hidden = model.hidden(torch.tensor([history]))[0]
    losses = []
    for step in range(len(history) - 1):
        logits = hidden[step] @ model.item_vectors().T + model.bias
        logits[history[: step + 1]] = -1e9
        log_probs = torch.log_softmax(logits, dim=-1)
        ahead = [p for p in history[step + 1 : step + 1 + horizon] if p not in history[: step + 1]]
        ahead = list(dict.fromkeys(ahead))
        assert all(p < n for p in ahead)
        losses.append(-log_probs[ahead].mean())
    return float(torch.stack(losses).mean())


@pytest.mark.parametrize("horizon", [1, 3])
def test_the_loss_is_the_objective_written_out(horizon: int) -> None:
    cfg = SequenceConfig(dim=16, layers=1, dropout=0.0, text_inputs=False, positions=100, horizon=horizon)
    torch.manual_seed(0)
    model = SequenceEncoder(12, cfg).eval()
    history = [3, 7, 1, 9, 4, 0, 11]
    with torch.no_grad():
        loss = float(_batch_loss(model, [np.array(history)], np.random.default_rng(0)))
        assert loss == pytest.approx(_by_hand(model, history, horizon), rel=1e-5)


def test_a_longer_horizon_changes_what_is_learned() -> None:
    cfg = SequenceConfig(dim=16, layers=1, dropout=0.0, text_inputs=False, positions=100)
    torch.manual_seed(0)
    model = SequenceEncoder(12, cfg).eval()
    history = np.array([3, 7, 1, 9, 4, 0, 11])
    with torch.no_grad():
        rng = np.random.default_rng(0)
        next_only = float(_batch_loss(model, [history], rng))
        model.cfg = SequenceConfig(dim=16, layers=1, dropout=0.0, text_inputs=False, positions=100, horizon=4)
        ahead = float(_batch_loss(model, [history], rng))
    assert ahead != pytest.approx(next_only)
