"""What a held-out measurement is: the figures one model earned on its kind's held-out data,
and the error that says there was nothing to measure. Below both the kinds (which measure) and
the gate (which compares), so neither imports the other to share them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class NoPositives(RuntimeError):
    """A held-out window without a single positive example: no figure measured on it means
    anything (an AUC, a lift, a recall), so benchmarks, training and `smartmkt eval` stop."""


@dataclass
class Evaluation:
    kind: str
    task: str  # "classification" or "ranking"
    metrics: dict[str, Any]
    heldout: str
    artifact: str = ""
    plot: str | None = None
    curves: dict[str, Any] = field(default_factory=dict, repr=False)
    positives: int = 0  # held-out positives the figures rest on
    # per held-out example, what ``compare`` resamples: (truth, score) for purchase, (gold, predicted)
    # intents for nlu, (ndcg per customer,) for the recommender
    paired: tuple[Any, ...] = field(default=(), repr=False)
    labels: frozenset[str] = frozenset()  # the classes a classifier can answer (NLU: its intents)

    def warning(self, min_positives: int) -> str | None:
        """Why these figures should not be trusted, or None."""
        if self.positives >= min_positives:
            return None
        return (
            f"only {self.positives} held-out positives (fewer than {min_positives}): "
            "these figures are noise, not a measurement"
        )
