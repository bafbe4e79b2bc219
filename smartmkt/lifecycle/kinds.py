"""Every model the product trains behind one interface, ``ModelKind``: one class per kind (NLU,
recommender, purchase model, Rasa's dialogue model) and one registry of them, ``KINDS``. The loop
(smartmkt.lifecycle.training.train) and the held-out evaluation (smartmkt.lifecycle.evaluation)
talk to this interface only, so a new kind of model is one new class here, added to ``KINDS``.

A kind reads its inputs through its ``TrainingData``: one per run, each part read from the store
at most once (a cached property), then shared by the fingerprint, the fit and both evaluations
of the gate (the candidate's and the served model's), which so see the very same held-out data.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import numpy as np
from sqlalchemy import Engine

from smartmkt.lifecycle.heldout import Evaluation, NoPositives
from smartmkt.settings import Settings
from smartmkt.store.training_data import (
    catalog_titles,
    catalog_version,
    purchase_histories,
    store_fingerprint,
)

if TYPE_CHECKING:
    import polars as pl

    from smartmkt.catalog import CatalogItem
    from smartmkt.nlu.data import Example
    from smartmkt.nlu.train import TrainConfig
    from smartmkt.predict.scoring import Holdout
    from smartmkt.recommend.collaborative import CollaborativeConfig
    from smartmkt.recommend.sequential import SequenceConfig

Progress = Callable[[str, int, int], None]
C = TypeVar("C")

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # smartmkt/
PURCHASE_SEED = 7

# The modules whose code shapes a trained artifact: changing one retrains (serving code does not).
TRAINING_CODE = {
    "nlu": ("train.py", "model.py", "encoding.py", "augment.py", "data.py"),
    "recommend": ("recommender.py", "collaborative.py", "sequential.py", "text_encoder.py", "index.py"),
    "predict": ("model.py", "train.py", "history.py", "scoring.py"),
}


def code_files(package: str) -> list[Path]:
    return [PACKAGE_DIR / package / name for name in TRAINING_CODE[package]]


def hash_files(paths: list[Path], *extra: str) -> str:
    """A fingerprint of files (their path below their grandparent and their bytes) and strings."""
    digest = hashlib.sha256("|".join(extra).encode())
    for path in sorted(paths):
        digest.update(str(path.relative_to(path.parents[1])).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Fingerprint:
    artifact: str  # inputs + code + parameters: the artifact's name; the same one is reused
    data: str  # what it learns from alone (kept in its metadata.json)


class TrainingData:
    """One run's inputs. Each kind's subclass adds what it reads as cached properties, so the
    run reads each at most once, and only when a step needs it (a model that is current reads
    no more than its fingerprint needs)."""

    def __init__(self, settings: Settings, engine: Engine | None, seed: int | None = None) -> None:
        self.settings, self._engine, self.seed = settings, engine, seed

    @property
    def has_store(self) -> bool:
        return self._engine is not None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise ValueError("this model learns from the store: it needs an engine")
        return self._engine

    @cached_property
    def store_fingerprint(self) -> str:
        return store_fingerprint(self.engine)

    def seeded(self, config: Callable[..., C]) -> C:
        """``config`` with the run's seed, or its own default seed when the run has none."""
        return config() if self.seed is None else config(seed=self.seed)


D = TypeVar("D", bound=TrainingData)


class ModelKind(ABC, Generic[D]):
    """What the loop needs to know of one kind of model; the loop does the rest (reuse, model
    cache, staging, the gate, the manifest)."""

    name: ClassVar[str]  # its manifest entry and model-cache folder
    folder: ClassVar[str]  # where its artifacts live under models_dir
    gated: ClassVar[bool] = True  # measured on held-out data and promoted only past the gate
    needs_store: ClassVar[bool] = True  # its held-out data is in the store
    task: ClassVar[str] = "classification"  # or "ranking": which figures and plot
    primary_metric: ClassVar[str] = ""  # the figure the gate compares
    plot_title: ClassVar[str] = ""

    data_type: type[D]  # what one run reads

    def data(self, settings: Settings, engine: Engine | None, seed: int | None = None) -> D:
        """The run's inputs, read lazily."""
        return self.data_type(settings, engine, seed)

    @abstractmethod
    def fingerprint(self, data: D) -> Fingerprint:
        """Changes with anything that changes the artifact: an unchanged one is reused."""

    def artifact(self, settings: Settings, fingerprint: str) -> Path:
        return settings.models_dir / self.folder / fingerprint

    @abstractmethod
    def params(self, data: D) -> dict[str, Any]:
        """The parameters recorded in metadata.json."""

    def info(self, data: D) -> dict[str, Any]:
        """What the manifest entry notes besides the figures (sizes of what it learned from);
        read before fitting, so missing data stops the run before minutes of training."""
        return {}

    @abstractmethod
    def fit(self, data: D, fingerprint: str, staging: Path, progress: Progress) -> None:
        """Train and write the artifact at ``staging``, a path that does not exist yet (the loop
        renames it into place: an interrupted fit never leaves half an artifact there)."""

    @abstractmethod
    def load(self, settings: Settings, artifact: Path) -> Any:
        """The artifact as the product serves it."""

    def evaluate(self, data: D, artifact: Path) -> Evaluation:
        """The artifact's figures on the kind's held-out data (a gated kind has them)."""
        raise ValueError(f"no held-out evaluation for {self.name!r}")

    def difference(self, *paired: np.ndarray) -> float:
        """The candidate's primary figure minus the served model's on one resample of the
        held-out examples (``Evaluation.paired`` of both); here the mean of a per-example figure."""
        candidate, served = paired
        return float(np.mean(candidate - served))

    def finish(self, data: D, progress: Progress) -> None:
        """What follows every run, current or not, after the gate."""
        return None


# --- NLU ------------------------------------------------------------------------------------
class NLUData(TrainingData):
    @property
    def data_dir(self) -> Path:
        return self.settings.bot_dir / "data" / "nlu"

    @property
    def test_file(self) -> Path:
        """bot/tests/nlu_test.yml: never trained on."""
        return self.settings.bot_dir / "tests" / "nlu_test.yml"

    @cached_property
    def config(self) -> TrainConfig:
        from smartmkt.nlu.train import TrainConfig

        return self.seeded(TrainConfig)

    @cached_property
    def titles(self) -> list[str]:
        return catalog_titles(self.engine)

    @cached_property
    def examples(self) -> list[Example]:
        from smartmkt.nlu.data import load_nlu

        return load_nlu(self.data_dir)


class NLUKind(ModelKind[NLUData]):
    """MiniLM fine-tuned on bot/data/nlu and the catalog's titles; held out: bot/tests/nlu_test.yml."""

    name = folder = "nlu"
    data_type = NLUData
    needs_store = False
    primary_metric = "intent_macro_f1"
    plot_title = "nlu: top intent confidence vs correct (left), every intent one-vs-rest (right)"

    def fingerprint(self, data: NLUData) -> Fingerprint:
        files = [*data.data_dir.rglob("*.yml")]
        code = [*code_files("nlu"), PACKAGE_DIR / "catalog.py"]
        return Fingerprint(
            hash_files([*files, *code], repr(data.config), *data.titles), hash_files(files, *data.titles)
        )

    def params(self, data: NLUData) -> dict[str, Any]:
        return asdict(data.config)

    def info(self, data: NLUData) -> dict[str, Any]:
        return {"examples": len(data.examples)}

    def fit(self, data: NLUData, fingerprint: str, staging: Path, progress: Progress) -> None:
        from smartmkt.nlu.train import train_nlu

        train_nlu(
            data.examples,
            staging,
            titles=data.titles,
            config=data.config,
            fingerprint=fingerprint,
            progress=lambda step, total, _loss: progress("nlu", step, total),
        )

    def load(self, settings: Settings, artifact: Path) -> Any:
        from smartmkt.nlu.parser import NLUParser

        return NLUParser(artifact, settings.nlu_fallback_threshold, settings.nlu_max_chars)

    def evaluate(self, data: NLUData, artifact: Path) -> Evaluation:
        from smartmkt.nlu.data import load_nlu
        from smartmkt.nlu.evaluate import evaluate_parser, intent_confidences, score

        settings = data.settings
        examples = load_nlu(data.test_file)
        parser = self.load(settings, artifact)
        predictions = evaluate_parser(parser.parse_batch, examples)
        gold = [ex.intent for ex in examples]
        top = [float(p["intent"]["confidence"]) for p in predictions]
        correct = [p["intent"]["name"] == g for p, g in zip(predictions, gold, strict=True)]
        truth, scores = [], []
        for label in sorted(set(gold)):  # micro one-vs-rest, for the precision/recall curve
            truth += [g == label for g in gold]
            scores += intent_confidences(label, predictions)
        return Evaluation(
            "nlu",
            "classification",
            score(examples, predictions),
            f"{data.test_file.relative_to(settings.project_root)} ({len(examples)} messages)",
            curves={"calibration": (correct, top), "precision_recall": (truth, scores)},
            positives=len(examples),
            paired=(gold, [p["intent"]["name"] for p in predictions]),
            labels=frozenset(parser.intents),
        )

    def difference(self, *paired: np.ndarray) -> float:
        """Intent macro-F1 over the intents the resample holds."""
        from sklearn.metrics import f1_score

        gold, candidate, served = paired
        macro = {"labels": sorted(set(gold.tolist())), "average": "macro", "zero_division": 0}
        return float(f1_score(gold, candidate, **macro) - f1_score(gold, served, **macro))  # type: ignore[arg-type]


# --- recommender ----------------------------------------------------------------------------
class RecommenderData(TrainingData):
    @cached_property
    def configs(self) -> tuple[CollaborativeConfig, SequenceConfig]:
        """The collaborative and the sequence model's settings, with the run's seed."""
        from smartmkt.recommend.collaborative import CollaborativeConfig
        from smartmkt.recommend.sequential import SequenceConfig

        return self.seeded(CollaborativeConfig), self.seeded(SequenceConfig)

    @property
    def config(self) -> CollaborativeConfig:
        return self.configs[0]

    @property
    def sequence_config(self) -> SequenceConfig:
        return self.configs[1]

    @cached_property
    def catalog(self) -> tuple[int, list[CatalogItem]]:
        """(the catalog's version, its products), the version read first: a product written
        meanwhile is at worst followed again by the serving model (smartmkt.recommend.live_catalog)."""
        from smartmkt.store.repository import StoreRepository

        version = catalog_version(self.engine)
        items = StoreRepository(self.engine).all_products()
        if not items:
            raise RuntimeError("the catalog is empty: load data first (`smartmkt data load-demo`)")
        return version, items

    @property
    def items(self) -> list[CatalogItem]:
        return self.catalog[1]

    @property
    def catalog_version(self) -> int:
        return self.catalog[0]

    @cached_property
    def split(self) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
        """(train, held out): each customer's purchases but their latest 20%, and those."""
        from smartmkt.recommend.evaluate import temporal_split

        return temporal_split(purchase_histories(self.engine))


class RecommenderKind(ModelKind[RecommenderData]):
    """Trained on every customer's purchases but their latest 20% (the held-out part); serving
    reads a customer's whole history, so the newest purchases still shape their recommendations."""

    name = folder = "recommender"
    data_type = RecommenderData
    task = "ranking"
    primary_metric = "ndcg@10"

    def fingerprint(self, data: RecommenderData) -> Fingerprint:
        artifact = hash_files(
            code_files("recommend"),
            data.store_fingerprint,
            repr(data.config),
            repr(data.sequence_config),
            str(data.settings.faiss_exact_max_items),
        )
        return Fingerprint(artifact, data.store_fingerprint)

    def params(self, data: RecommenderData) -> dict[str, Any]:
        return {
            "collaborative": asdict(data.config),
            "sequence": asdict(data.sequence_config),
            "exact_max_items": data.settings.faiss_exact_max_items,
        }

    def info(self, data: RecommenderData) -> dict[str, Any]:
        return {"items": len(data.items), "customers": len(data.split[0])}

    def fit(self, data: RecommenderData, fingerprint: str, staging: Path, progress: Progress) -> None:
        from smartmkt.recommend.recommender import Recommender

        model = Recommender.fit(
            data.items,
            list(data.split[0].values()),
            data.config,
            exact_max_items=data.settings.faiss_exact_max_items,
            progress=progress,
            fingerprint=fingerprint,
            sequence_config=data.sequence_config,
            catalog_version=data.catalog_version,
        )
        model.save(staging)

    def load(self, settings: Settings, artifact: Path) -> Any:
        from smartmkt.recommend.recommender import Recommender

        return Recommender.load(artifact)

    def evaluate(self, data: RecommenderData, artifact: Path) -> Evaluation:
        from smartmkt.recommend.evaluate import evaluate_ranker

        model = self.load(data.settings, artifact)
        train, test = data.split

        def recommend(history: list[int], k: int) -> list[int]:
            return [r.product_id for r in model.recommend(history, k=k)]

        positives = sum(len(items) for items in test.values())
        if not positives:
            raise NoPositives(
                "the recommender's held-out set is empty: no customer has two purchases, so none has a "
                "latest 20% to hold out"
            )
        figures = evaluate_ranker(recommend, train, test, len(model.items))
        curve = figures.pop("recall_curve")
        by_customer = figures.pop("ndcg_by_customer")
        return Evaluation(
            "recommender",
            "ranking",
            {**figures, "heldout_positives": positives},
            f"each customer's latest 20% of purchases ({figures['customers']} customers)",
            curves={"recall_at_k": curve},
            positives=positives,
            paired=(by_customer,),
        )


# --- purchase prediction ------------------------------------------------------------------
class PurchaseData(TrainingData):
    @property
    def horizon(self) -> int:
        return self.settings.purchase_horizon_days

    @property
    def model_seed(self) -> int:
        return PURCHASE_SEED if self.seed is None else self.seed

    @cached_property
    def days(self) -> pl.DataFrame:
        from smartmkt.predict.history import purchase_days

        return purchase_days(self.engine)

    @cached_property
    def split(self) -> Holdout:
        """Trained before the store's latest H days, measured on them."""
        from smartmkt.predict import scoring

        return scoring.holdout_split(self.days, self.horizon)


class PurchaseKind(ModelKind[PurchaseData]):
    """The purchase model on the store's history before its latest H days (the held-out part);
    every customer's scores are then rewritten by the served model, whichever it is (a reused
    model still scores the store as it is now)."""

    name = folder = "purchase"
    data_type = PurchaseData
    primary_metric = "auc"
    plot_title = "purchase: buys within the horizon"

    def fingerprint(self, data: PurchaseData) -> Fingerprint:
        horizon, seed = f"horizon={data.horizon}", f"seed={data.model_seed}"
        artifact = hash_files(code_files("predict"), data.store_fingerprint, horizon, seed)
        return Fingerprint(artifact, data.store_fingerprint)

    def params(self, data: PurchaseData) -> dict[str, Any]:
        from smartmkt.predict import scoring

        return {
            "epochs": scoring.EPOCHS,
            "seed": data.model_seed,
            "horizon_days": data.horizon,
            "train_until": f"{data.split.train_until:%Y-%m-%d}",
        }

    def info(self, data: PurchaseData) -> dict[str, Any]:
        return {"horizon_days": data.horizon}

    def fit(self, data: PurchaseData, fingerprint: str, staging: Path, progress: Progress) -> None:
        from smartmkt.predict import scoring

        progress("purchase model", 0, 3)
        scoring.save(scoring.fit_until(data.days, data.split.train_until, seed=data.model_seed), staging)
        progress("purchase model", 1, 3)

    def load(self, settings: Settings, artifact: Path) -> Any:
        from smartmkt.predict import scoring

        return scoring.load(artifact)

    def evaluate(self, data: PurchaseData, artifact: Path) -> Evaluation:
        from smartmkt.predict import scoring

        split = data.split
        window = (
            f"purchases {split.holdout.cutoff:%Y-%m-%d}..{split.holdout.end - timedelta(days=1):%Y-%m-%d} "
            f"({data.horizon} days)"
        )
        held = scoring.predict_holdout(self.load(data.settings, artifact), data.days, data.horizon)
        positives = int((held.actual > 0).sum())
        if not positives:
            raise NoPositives(
                f"the purchase model's held-out window ({window}) has no positive example: none of the "
                f"{len(held.actual)} customers with earlier purchases bought in it, so there is nothing "
                "to measure the model on"
            )
        return Evaluation(
            "purchase",
            "classification",
            {**scoring.holdout_figures(held), "heldout_positives": positives},
            window,
            curves={
                "calibration": (held.actual > 0, held.score),
                "precision_recall": (held.actual > 0, held.score),
            },
            positives=positives,
            paired=(held.actual > 0, held.score),
        )

    def difference(self, *paired: np.ndarray) -> float:
        """AUC; a resample of one class only has none, so it is no evidence either way."""
        from sklearn.metrics import roc_auc_score

        truth, candidate, served = paired
        if truth.all() or not truth.any():
            return 0.0
        return float(roc_auc_score(truth, candidate) - roc_auc_score(truth, served))

    def finish(self, data: PurchaseData, progress: Progress) -> None:
        """Rescore every customer with the served model on the store as it is now."""
        from smartmkt.predict import scoring
        from smartmkt.store import model_registry

        settings = data.settings
        progress("purchase model", 2, 3)
        served = model_registry.served(settings.models_dir, self.name)
        if served is None:
            raise FileNotFoundError(f"no purchase model is served in {settings.models_dir}")
        model = self.load(settings, settings.models_dir / served["path"])
        scoring.write_scores(data.engine, model, data.days, data.horizon, served["fingerprint"])
        progress("purchase model", 3, 3)


# --- Rasa dialogue model ------------------------------------------------------------------
def bot_python(settings: Settings) -> Path:
    path = settings.project_root / ".venv-bot" / "bin" / "python"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make setup`")
    return path


def core_inputs(settings: Settings) -> list[Path]:
    bot = settings.bot_dir
    return [
        bot / "domain.yml",
        bot / "config.yml",
        *sorted((bot / "data" / "rules").glob("*.yml")),
        *sorted((bot / "data" / "stories").glob("*.yml")),
    ]


class CoreData(TrainingData):
    @cached_property
    def lock_lines(self) -> list[str]:
        """The bot environment's pinned versions: a Rasa upgrade retrains the dialogue model."""
        lock = self.settings.bot_dir / "requirements.lock"
        return lock.read_text().splitlines() if lock.exists() else []


class RasaCoreKind(ModelKind[CoreData]):
    """``rasa train core`` in the bot environment; NLU is served by smartmkt, not trained here.
    No held-out figure decides: the story tests (`smartmkt bot test-stories`) judge dialogue, so
    a new one is served at once."""

    name, folder = "rasa_core", "rasa"
    data_type = CoreData
    gated = False
    needs_store = False

    def fingerprint(self, data: CoreData) -> Fingerprint:
        artifact = hash_files(core_inputs(data.settings), *data.lock_lines)
        return Fingerprint(artifact, artifact)

    def artifact(self, settings: Settings, fingerprint: str) -> Path:
        return settings.models_dir / self.folder / f"{fingerprint}.tar.gz"

    def params(self, data: CoreData) -> dict[str, Any]:
        return {"rasa": "train core"}

    def fit(self, data: CoreData, fingerprint: str, staging: Path, progress: Progress) -> None:
        """Rasa writes ``<fingerprint>.tar.gz`` into a folder of its own, moved to ``staging``."""
        progress("core", 0, 1)
        out_dir = staging.with_name(f"{staging.name}.out")
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        subprocess.run(
            [
                str(bot_python(data.settings)),
                "-m",
                "rasa",
                "train",
                "core",
                "--domain",
                "domain.yml",
                "--config",
                "config.yml",
                "--stories",
                "data",
                "--out",
                str(out_dir),
                "--fixed-model-name",
                fingerprint,
            ],
            check=True,
            cwd=data.settings.bot_dir,
        )
        os.replace(out_dir / f"{fingerprint}.tar.gz", staging)
        shutil.rmtree(out_dir, ignore_errors=True)
        progress("core", 1, 1)

    def load(self, settings: Settings, artifact: Path) -> Any:
        """The archive itself: Rasa loads it in its own environment."""
        return artifact


NLU = NLUKind()
PURCHASE = PurchaseKind()
RECOMMENDER = RecommenderKind()
RASA_CORE = RasaCoreKind()
# Every kind by its manifest name, in the order `smartmkt eval` reports them.
KINDS: dict[str, ModelKind[Any]] = {kind.name: kind for kind in (NLU, PURCHASE, RECOMMENDER, RASA_CORE)}
