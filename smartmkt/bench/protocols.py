"""The recommender bench's protocols (how purchases are split) and its tuning budget.

Two protocols, on the same purchases for every model:

- ``temporal``: each customer's latest 20% of purchases are the test (the product's own split,
  smartmkt.recommend.evaluate); the latest 20% of what is left choose the configuration; the
  chosen one then learns from the whole training period.
- ``leave_one_out``: RecBole's standard (``eval_args: {split: {LS: valid_and_test}, order: TO,
  mode: full}``): the last purchase is the test, the one before it chooses; the model trained
  without both is kept and ranks with the validation purchase in the customer's history.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartmkt.recommend.evaluate import HOLDOUT_SHARE, temporal_split

GRID_SIZE = 4  # configurations per model, every model's the same


@dataclass(frozen=True)
class Budget:
    """What every model may spend on tuning: the first ``configs`` of its grid, each trained for
    at most ``max_epochs`` epochs (RecBole's models stop after ``patience`` epochs without a
    better validation figure)."""

    configs: int = GRID_SIZE
    max_epochs: int = 30
    patience: int = 3


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol: what the models tune on, learn from and are tested on.

    ``tune_train``/``tune_heldout``: histories to learn from while tuning and the validation
    purchases that choose; ``fit``: what the chosen configuration learns from at last (None: the
    tuned model is kept, as RecBole's leave-one-out does); ``query``: each test customer's history
    when they are ranked for (also what is excluded); ``test``: the purchases that score."""

    name: str
    description: str
    tune_train: dict[int, list[int]]
    tune_heldout: dict[int, list[int]]
    fit: dict[int, list[int]] | None
    query: dict[int, list[int]]
    test: dict[int, list[int]]


def temporal_protocol(histories: dict[int, list[int]]) -> Protocol:
    """Each customer's last 20% held out for the test; the last 20% of what is left for tuning."""
    train, test = temporal_split(histories)
    tune_train, tune_heldout = temporal_split(train)
    held = sum(len(t) for t in test.values())
    description = (
        f"temporal: each customer's last {HOLDOUT_SHARE:.0%} of purchases held out ({held} purchases of "
        f"{len(test)} customers); the last {HOLDOUT_SHARE:.0%} of the rest choose the configuration"
    )
    return Protocol("temporal", description, tune_train, tune_heldout, train, train, test)


def leave_one_out_protocol(histories: dict[int, list[int]]) -> Protocol:
    """RecBole's leave-one-out (``eval_args.split: {LS: valid_and_test}``, time order): each
    customer's last purchase is the test, the one before it the validation; the model trained
    without both is kept, and ranks for the test with the validation purchase in the history."""
    tune_train: dict[int, list[int]] = {}
    tune_heldout: dict[int, list[int]] = {}
    query: dict[int, list[int]] = {}
    test: dict[int, list[int]] = {}
    for customer, items in histories.items():
        if len(items) < 3:
            tune_train[customer] = list(items)
            continue
        tune_train[customer], tune_heldout[customer] = list(items[:-2]), [items[-2]]
        query[customer], test[customer] = list(items[:-1]), [items[-1]]
    description = (
        f"leave-one-out (RecBole's): each customer's last purchase held out ({len(test)} customers), "
        "the one before it chooses the configuration; full ranking"
    )
    return Protocol("leave_one_out", description, tune_train, tune_heldout, None, query, test)
