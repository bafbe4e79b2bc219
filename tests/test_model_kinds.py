"""One loop for every model kind (issue 16): a new kind is one ModelKind class, and the loop gives
it reuse on an unchanged fingerprint, the model cache, the promotion gate (a refused candidate
leaves the served model serving) and one read of its data per run."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from smartmkt.lifecycle import evaluation
from smartmkt.lifecycle.heldout import Evaluation
from smartmkt.lifecycle.kinds import KINDS, Fingerprint, ModelKind, TrainingData
from smartmkt.lifecycle.training import train
from smartmkt.settings import Settings
from smartmkt.store import model_registry

QUALITY = {1: 0.8, 2: 0.5}  # seed -> how good the toy model is on every held-out example


class ToyData(TrainingData):
    reads = 0  # class-wide: every read of every run

    @cached_property
    def heldout(self) -> np.ndarray:
        """What a real kind reads from the store: counted."""
        ToyData.reads += 1
        return np.random.default_rng(0).normal(0, 0.05, 200)


class ToyKind(ModelKind[ToyData]):
    """The least a kind is: its data, a fingerprint, a fit, a load and an evaluation."""

    name = folder = "toy"
    data_type, task, primary_metric = ToyData, "ranking", "score"
    needs_store = False  # its data is made up

    def __init__(self) -> None:
        self.fits = 0

    def fingerprint(self, data: ToyData) -> Fingerprint:
        return Fingerprint(f"toy-seed{data.seed}", "toy-data")

    def params(self, data: ToyData) -> dict[str, Any]:
        return {"seed": data.seed}

    def fit(self, data: ToyData, fingerprint: str, staging: Path, progress: Any) -> None:
        self.fits += 1
        assert len(data.heldout)  # trained on the run's data
        staging.mkdir()
        (staging / "model.json").write_text(json.dumps({"quality": QUALITY[data.seed or 1]}))

    def load(self, settings: Settings, artifact: Path) -> Any:
        return json.loads((artifact / "model.json").read_text())

    def evaluate(self, data: ToyData, artifact: Path) -> Evaluation:
        per_example = self.load(data.settings, artifact)["quality"] + data.heldout
        return Evaluation(
            self.name,
            self.task,
            {"score": round(float(per_example.mean()), 4)},
            "toy held-out examples",
            positives=len(per_example),
            paired=(per_example,),
        )


@pytest.fixture
def toy_settings(tmp_path: Path, base_settings: Settings) -> Settings:
    return base_settings.model_copy(
        update={"models_dir": tmp_path / "models", "model_cache": str(tmp_path / "cache")}
    )


def test_a_new_kind_goes_through_the_loop(toy_settings: Settings, tmp_path: Path) -> None:
    kind, reads = ToyKind(), ToyData.reads
    first = train(kind, toy_settings, None, seed=1)
    assert not first.skipped and first.promoted and kind.fits == 1
    assert model_registry.served_path(toy_settings.models_dir, "toy") == first.path
    meta = model_registry.read_metadata(first.path)
    assert meta is not None and meta.primary_metric == "score" and meta.params == {"seed": 1}
    assert meta.metrics == first.metrics and first.metrics["score"] == pytest.approx(0.8, abs=0.01)
    assert ToyData.reads == reads + 1  # fit and the gate share one read

    again = train(kind, toy_settings, None, seed=1)  # same fingerprint: served already
    assert again.skipped and kind.fits == 1 and ToyData.reads == reads + 1  # nothing read

    worse = train(kind, toy_settings, None, seed=2)
    assert not worse.skipped and kind.fits == 2 and worse.promotion is not None
    assert not worse.promoted and worse.promotion.decided and "beyond noise" in worse.promotion.reason
    assert model_registry.served_path(toy_settings.models_dir, "toy") == first.path  # still served
    assert worse.path.exists() and model_registry.read_metadata(worse.path) is not None
    assert ToyData.reads == reads + 2  # candidate and served measured on one read of the data

    retried = train(kind, toy_settings, None, seed=2)  # refused before: gated again, not refitted
    assert retried.reused and not retried.promoted and kind.fits == 2
    forced = train(kind, toy_settings, None, seed=2, force=True)
    assert forced.promoted and kind.fits == 3
    assert model_registry.served_path(toy_settings.models_dir, "toy") == worse.path

    elsewhere = toy_settings.model_copy(update={"models_dir": tmp_path / "fresh"})
    restored = train(kind, elsewhere, None, seed=1)  # the model cache: copied, not fitted
    assert restored.reused and restored.promoted and kind.fits == 3


def test_every_kind_is_in_one_registry(base_settings: Settings) -> None:
    assert set(KINDS) == {"nlu", "recommender", "purchase", "rasa_core"}
    assert all(kind.name == name for name, kind in KINDS.items())
    assert evaluation.EVALUATED_KINDS == ("nlu", "purchase", "recommender")  # `smartmkt eval`'s order
    primary = {"nlu": "intent_macro_f1", "purchase": "auc", "recommender": "ndcg@10"}
    assert primary == evaluation.PRIMARY_METRIC
    with pytest.raises(ValueError, match="no held-out evaluation for 'rasa_core'"):
        evaluation.evaluate_artifact(base_settings, None, "rasa_core", base_settings.models_dir)
    with pytest.raises(ValueError, match="evaluating the purchase model needs the store"):
        evaluation.evaluate_artifact(base_settings, None, "purchase", base_settings.models_dir)
