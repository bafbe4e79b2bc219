"""Collaborative item embeddings learned from purchase sequences in PyTorch.

A customer is the mean of the embeddings of what they bought; the score of an item is
``customer . item + bias(item)``. Training cuts each customer's history in time and teaches the
earlier part to rank the later part above everything else (multinomial likelihood over the whole
catalog), so the model learns "what comes next" and the serving-time customer vector (the same
mean) needs no per-customer parameters: a purchase made a second ago counts at once, and an
erased customer leaves nothing behind in the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class CollaborativeConfig:
    dim: int = 64
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-5
    dropout: float = 0.3
    seed: int = 13


def train_item_embeddings(
    histories: Sequence[Sequence[int]],
    n_items: int,
    config: CollaborativeConfig | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings (n_items, dim), biases (n_items,)) from time-ordered item-position histories."""
    import torch

    cfg = config or CollaborativeConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    usable = [np.asarray(h, dtype=np.int64) for h in histories if len(h) >= 2]
    if not usable:
        return np.zeros((n_items, cfg.dim), np.float32), np.zeros(n_items, np.float32)

    emb = torch.nn.Embedding(n_items, cfg.dim)
    torch.nn.init.normal_(emb.weight, std=0.05)
    bias = torch.nn.Parameter(torch.zeros(n_items))
    optimizer = torch.optim.Adam([emb.weight, bias], lr=cfg.lr, weight_decay=cfg.weight_decay)

    for epoch in range(cfg.epochs):
        order = rng.permutation(len(usable))
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            batch = [usable[i] for i in order[start : start + cfg.batch_size]]
            context, target = _split_batch(batch, n_items, cfg.dropout, rng)
            ctx = torch.from_numpy(context)
            tgt = torch.from_numpy(target)
            counts = ctx.sum(1, keepdim=True).clamp(min=1.0)
            user = (ctx @ emb.weight) / counts
            logits = user @ emb.weight.T + bias
            logits = logits.masked_fill(ctx > 0, -1e9)  # never "predict" what is already known
            log_probs = torch.log_softmax(logits, dim=1)
            loss = -((log_probs * tgt).sum(1) / tgt.sum(1).clamp(min=1.0)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if progress:
            progress(epoch + 1, total / len(usable))
    return (emb.weight.detach().numpy().astype(np.float32), bias.detach().numpy().astype(np.float32))


def _split_batch(
    batch: list[np.ndarray], n_items: int, dropout: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Dense (context, target) rows: a random time cut, with some context items dropped."""
    context = np.zeros((len(batch), n_items), dtype=np.float32)
    target = np.zeros((len(batch), n_items), dtype=np.float32)
    for row, history in enumerate(batch):
        cut = int(rng.integers(1, len(history)))
        before, after = history[:cut], history[cut:]
        keep = before[rng.random(len(before)) >= dropout]
        if keep.size == 0:
            keep = before[-1:]
        context[row, keep] = 1.0
        target[row, after] = 1.0
        target[row, keep] = 0.0
    return context, target
